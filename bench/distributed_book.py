#!/usr/bin/env python3
"""Benchmark and acceptance run: a whole book through the distributed mode.

    .venv/bin/python bench/distributed_book.py [--input BOOK] [--workers 3] [--kills 0]

On the local PostgreSQL and Redis (NARRATE_TEST_POSTGRES_URL, NARRATE_TEST_REDIS_URL or
their defaults), in one invocation:

* distributed: a fresh database and storage, ``--workers`` ``narrate worker -c 1``
  processes and one ``narrate beat``; ``narrate submit BOOK`` -> ``narrate watch`` ->
  ``narrate fetch``. With ``--kills N`` a worker is killed with SIGKILL (its whole process
  group) N times during the job and replaced.
* reference: ``narrate render BOOK`` (the embedded mode) into another folder.

Prints both wall times, their ratio (distributed / embedded), and compares the outputs:
same files, chapters, titles and caption words in order, durations within 1 % (espeak-ng
carries its pitch-flutter phase from one utterance to the next in a process, so its
samples differ a little between any two renders). Exits 1 when the outputs differ.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_INPUT = REPO.parent / "shared" / "corpus" / "h-g-wells_the-time-machine.epub"
NARRATE = [sys.executable, "-m", "narrate"]
POSTGRES = os.environ.get(
    "NARRATE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REDIS = os.environ.get("NARRATE_TEST_REDIS_URL", "redis://127.0.0.1:6379") + "/15"


def run(env: dict[str, str], *args: object) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [*NARRATE, *map(str, args)], env=env, cwd=REPO, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise SystemExit(f"narrate {' '.join(map(str, args))} failed:\n{result.stderr}")
    return result


def spawn(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [*NARRATE, *args], env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip


def content(out: Path) -> tuple[list[dict[str, object]], list[list[str]]]:
    manifest = json.loads((out / "manifest.json").read_text())
    cues = [
        [
            line
            for line in (out / c["captions"]["vtt"]).read_text().splitlines()
            if line and "-->" not in line and line != "WEBVTT" and not line.isdigit()
        ]
        for c in manifest["chapters"]
    ]
    return manifest["chapters"], cues


def compare(ours: Path, theirs: Path) -> list[str]:
    problems = []
    if sorted(p.name for p in ours.iterdir()) != sorted(p.name for p in theirs.iterdir()):
        problems.append("different file names")
    (a, cues_a), (b, cues_b) = content(ours), content(theirs)
    for x, y in zip(a, b, strict=True):
        same = {k: v for k, v in x.items() if k != "duration_ms"} == {
            k: v for k, v in y.items() if k != "duration_ms"
        }
        if not same:
            problems.append(f"chapter {x['index']}: {x} != {y}")
        elif abs(int(x["duration_ms"]) - int(y["duration_ms"])) > int(y["duration_ms"]) / 100:  # type: ignore[call-overload]
            problems.append(f"chapter {x['index']}: {x['duration_ms']} ms vs {y['duration_ms']} ms")
    if cues_a != cues_b:
        problems.append("caption texts differ")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--input", type=Path, default=DEFAULT_INPUT)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--kills", type=int, default=0)
    args = parser.parse_args()

    import redis
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    database = f"narrate_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{database}"'))
    broker = redis.Redis.from_url(REDIS)
    broker.flushdb()
    processes: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="narrate-bench-") as tmp_name:
        tmp = Path(tmp_name)
        env = {
            **os.environ,
            "NARRATE_DATABASE_URL": make_url(POSTGRES)
            .set(database=database)
            .render_as_string(hide_password=False),
            "NARRATE_BROKER_URL": REDIS,
            "NARRATE_STORAGE_DIR": str(tmp / "storage"),
            "NARRATE_LEASE_S": "10",
            "NARRATE_REAP_INTERVAL_S": "2",
        }
        try:
            run(env, "db", "upgrade")
            processes = [
                spawn(env, tmp / f"w{n}.log", "worker", "-c", "1", "-n", f"w{n}@bench")
                for n in range(args.workers)
            ]
            processes.append(spawn(env, tmp / "beat.log", "beat", "--loglevel", "warning"))
            time.sleep(4)  # workers up
            started = time.monotonic()
            job = run(env, "submit", args.input).stdout.strip().splitlines()[-1]
            for kill in range(args.kills):
                time.sleep(8)
                victim = processes.pop(0)
                os.killpg(victim.pid, signal.SIGKILL)
                victim.wait()
                name = f"r{kill}"
                processes.insert(
                    0, spawn(env, tmp / f"{name}.log", "worker", "-c", "1", "-n", f"{name}@bench")
                )
            run(env, "watch", job, "--quiet")
            run(env, "fetch", job, "--out", tmp / "distributed")
            distributed_s = time.monotonic() - started
            status = json.loads(run(env, "status", job, "--json").stdout)
        finally:
            for process in processes:
                os.killpg(process.pid, signal.SIGTERM)
            for process in processes:
                process.wait(60)
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
            broker.flushdb()
        local = {**os.environ, "NARRATE_HOME": str(tmp / "home")}
        local.pop("NARRATE_DATABASE_URL", None)
        local.pop("NARRATE_STORAGE_DIR", None)
        started = time.monotonic()
        run(local, "render", args.input, "--out", tmp / "embedded", "--quiet")
        embedded_s = time.monotonic() - started
        problems = compare(tmp / "distributed", tmp / "embedded")
    segments = status["segments"]
    print(f"input: {args.input.name}: {len(status['chapters'])} chapters, "
          f"{segments['total']} segments")  # fmt: skip
    print(f"distributed ({args.workers} workers x 1 slot, {args.kills} kill -9): "
          f"submit -> fetch {distributed_s:.1f} s")  # fmt: skip
    print(f"embedded render (reference, {os.cpu_count()} processes): {embedded_s:.1f} s")
    print(f"ratio distributed / embedded: {distributed_s / embedded_s:.2f}")
    print("outputs: " + ("same content" if not problems else "DIFFER: " + "; ".join(problems)))
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
