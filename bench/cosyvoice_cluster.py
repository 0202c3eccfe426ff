#!/usr/bin/env python3
"""Benchmark: a whole book through a cluster of workers against the CosyVoice simulator.

    .venv/bin/python bench/cosyvoice_cluster.py [--input BOOK] [--workers 4] [--concurrency 2]
        [--margin-ms M] [--runs 1]

On the local PostgreSQL (``NARRATE_TEST_POSTGRES_URL``, default
``postgresql+psycopg://postgres@127.0.0.1:5432/postgres``) and Redis
(``NARRATE_TEST_REDIS_URL``, default ``redis://127.0.0.1:6379``; database 4, flushed), in
one invocation and per run:

* ``narrate simulate cosyvoice`` on a free port (3 tasks/s per key, counted at arrival);
* a fresh database (``narrate db upgrade``) and storage folder, ``--workers`` x ``narrate
  worker --concurrency N`` and one ``narrate beat``, all started before the clock runs;
* the clock: ``narrate submit BOOK --engine cosyvoice`` (planning: ingest, segmenting,
  storing the job), then ``narrate watch`` until the job ends (synthesis and stitching).

Prints, per run: segments, seconds over the whole job, tasks the simulator started, its
requests/s over the whole job and that rate against the provider's 3/s, the requests the
simulator rejected for its rate limit (the target is 0), the most tasks started in any
sliding second, the simulator's worst event-loop lag (what its own arrival stamps jitter
by), and the load averages before and after. Exits 1 when a run misses the target
(``--target-rps``, 0 rejected) or the job does not end ``done``. Cleans up (processes,
database, Redis database, temp folder) on every way out, Ctrl-C included.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_INPUT = REPO.parent / "shared" / "corpus" / "h-g-wells_the-time-machine.epub"
NARRATE = [sys.executable, "-m", "narrate"]
POSTGRES = os.environ.get(
    "NARRATE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REDIS = os.environ.get("NARRATE_TEST_REDIS_URL", "redis://127.0.0.1:6379") + "/4"
PROVIDER_LIMIT = 3

sys.path.insert(0, str(REPO))
from bench.processes import stop  # noqa: E402


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def spawn(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [*NARRATE, *args], env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip


def stats(http_base: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{http_base}/stats", timeout=10) as response:
        return dict(json.loads(response.read()))


def start_simulator(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], int]:
    process = spawn(env, log, "simulate", "cosyvoice", "--port", "0")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = re.search(r"ws://127\.0\.0\.1:(\d+)/", log.read_text(errors="replace"))
        if found:
            return process, int(found.group(1))
        if process.poll() is not None:
            break
        time.sleep(0.05)
    stop([process], grace_s=10)
    raise SystemExit("the simulator did not start:\n" + log.read_text(errors="replace"))


def wait_ready(logs: list[Path], processes: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + 120
    while not all(" ready." in log.read_text(errors="replace") for log in logs):
        if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
            tails = "\n".join(
                f"--- {log.name}\n{log.read_text(errors='replace')[-1500:]}" for log in logs
            )
            raise SystemExit("the workers did not start:\n" + tails)
        time.sleep(0.1)


@contextlib.contextmanager
def database() -> Iterator[str]:
    """A fresh PostgreSQL database (its URL), dropped afterwards."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"narrate_bench_cv_{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@dataclass
class Result:
    status: str
    segments: int
    seconds: float
    planning_s: float
    stats: dict[str, Any]
    load_before: str
    load_after: str

    @property
    def requests(self) -> int:
        return int(self.stats["tasks_started"])

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


def segments_of(env: dict[str, str], job: str) -> int:
    shown = subprocess.run(
        [*NARRATE, "status", job, "--json"], env=env, cwd=REPO, capture_output=True, text=True
    )
    try:
        view = json.loads(shown.stdout)
    except json.JSONDecodeError:
        return 0
    total = view.get("segments", {})
    if isinstance(total, dict):
        return int(total.get("total", 0))
    return int(total or 0)


def one_run(args: argparse.Namespace, tmp: Path) -> Result:
    import redis

    broker = redis.Redis.from_url(REDIS)
    broker.flushdb()
    processes: list[subprocess.Popen[bytes]] = []
    env = {**os.environ}
    env.pop("NARRATE_THROTTLE_MARGIN_MS", None)
    if args.margin_ms is not None:
        env["NARRATE_THROTTLE_MARGIN_MS"] = str(args.margin_ms)
    try:
        simulator, port = start_simulator(env, tmp / "simulator.log")
        processes.append(simulator)
        http_base = f"http://127.0.0.1:{port}"
        with database() as url:
            env.update(
                NARRATE_DATABASE_URL=url,
                NARRATE_BROKER_URL=REDIS,
                NARRATE_STORAGE_DIR=str(tmp / "storage"),
                NARRATE_COSYVOICE_URL=f"ws://127.0.0.1:{port}/api-ws/v1/inference",
                DASHSCOPE_API_KEY="bench-key",
            )
            upgraded = subprocess.run(
                [*NARRATE, "db", "upgrade"], env=env, cwd=REPO, capture_output=True, text=True
            )
            if upgraded.returncode != 0:
                raise SystemExit(f"narrate db upgrade failed:\n{upgraded.stderr}")
            logs = [tmp / f"worker{index}.log" for index in range(args.workers)]
            for index, log in enumerate(logs):
                processes.append(
                    spawn(env, log, "worker", "--concurrency", str(args.concurrency),
                          "-n", f"bench{index}@%h")
                )  # fmt: skip
            wait_ready(logs, processes)
            processes.append(spawn(env, tmp / "beat.log", "beat"))
            load_before = loadavg()
            started = time.monotonic()
            submitted = subprocess.run(
                [*NARRATE, "submit", str(args.input), "--engine", "cosyvoice"],
                env=env, cwd=REPO, capture_output=True, text=True,
            )  # fmt: skip
            if submitted.returncode != 0:
                raise SystemExit(f"narrate submit failed:\n{submitted.stderr}")
            planning_s = time.monotonic() - started
            job = submitted.stdout.strip().splitlines()[-1]
            watched = subprocess.run(
                [*NARRATE, "watch", job, "--quiet"], env=env, cwd=REPO, timeout=args.timeout_s
            )
            seconds = time.monotonic() - started
            load_after = loadavg()
            status = "done" if watched.returncode == 0 else f"watch exited {watched.returncode}"
            return Result(
                status,
                segments_of(env, job),
                seconds,
                planning_s,
                stats(http_base),
                load_before,
                load_after,
            )
    finally:
        stop(processes, grace_s=10)
        broker.flushdb()


def report(index: int, result: Result, target_rps: float) -> bool:
    s = result.stats
    lag_max = s["loop_lag_ms_max"]
    met = result.status == "done" and s["rejected_by_rate_limit"] == 0 and result.rps >= target_rps
    print(f"run {index}: job {result.status}, {'met' if met else 'NOT met'}")
    rows = [
        ("segments", result.segments),
        ("seconds over the whole job", f"{result.seconds:.1f}"),
        ("  of which planning (submit)", f"{result.planning_s:.1f}"),
        ("tasks started by the simulator", result.requests),
        ("requests/s over the whole job", f"{result.rps:.2f}"),
        (f"  / provider limit ({PROVIDER_LIMIT}/s)", f"{result.rps / PROVIDER_LIMIT:.2f}"),
        ("rejected by the rate limit", s["rejected_by_rate_limit"]),
        ("max tasks started in any sliding 1 s", s["max_tasks_started_in_one_second"]),
        ("simulator event-loop lag, p99 / max", f"{s['loop_lag_ms_p99']} / {lag_max} ms"),
        ("load average before / after", f"{result.load_before} / {result.load_after}"),
    ]
    for name, value in rows:
        print(f"  {name:<40}{value!s:>24}")
    return met


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--input", type=Path, default=DEFAULT_INPUT)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument(
        "--margin-ms", type=int, default=None, help="NARRATE_THROTTLE_MARGIN_MS (default: unset)"
    )
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--target-rps", type=float, default=2.5)
    parser.add_argument("--timeout-s", type=float, default=900.0)
    args = parser.parse_args()
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    print(
        f"{args.workers} x narrate worker --concurrency {args.concurrency} + beat; "
        f"{args.input.name}; simulator at {PROVIDER_LIMIT} tasks/s; margin "
        f"{args.margin_ms if args.margin_ms is not None else 'default'}; "
        f"{os.cpu_count()} cores; load {loadavg()}",
        flush=True,
    )
    ok = True
    try:
        for index in range(1, args.runs + 1):
            with tempfile.TemporaryDirectory(prefix="narrate-bench-cv-") as tmp:
                ok = report(index, one_run(args, Path(tmp)), args.target_rps) and ok
    except KeyboardInterrupt:
        print("interrupted: stopped the processes, dropped the database", flush=True)
        raise SystemExit(130) from None
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    socket.setdefaulttimeout(30)
    main()
