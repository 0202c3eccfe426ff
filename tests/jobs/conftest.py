"""A distributed narrate on the real services: PostgreSQL, Redis and Celery workers run as
subprocesses (``narrate worker``, ``narrate beat``), driven through the ``narrate`` command.

Each test gets its own PostgreSQL database, Redis database number (per xdist worker) and
storage folder. Leases and reaper periods are short, so recovery after a ``kill -9``
takes seconds rather than minutes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from jobs.db import Factory, make_engine, session_factory
from jobs.models import Base
from jobs.storage import Storage
from tests.conftest import need

REPO = Path(__file__).resolve().parents[2]
NARRATE = [sys.executable, "-m", "narrate"]
REDIS_URL = os.environ.get("NARRATE_TEST_REDIS_URL", "redis://127.0.0.1:6379")


def redis_db() -> int:
    """A Redis database number of this xdist worker's own (10, 11, ...)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw9")
    return 10 + int(worker.removeprefix("gw") or 0) % 6


def redis_reachable(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_timeout=2).ping())
    except redis.RedisError:
        return False


@dataclass
class Cluster:
    """Workers, beat and the CLI sharing one database, broker and storage."""

    env: dict[str, str]
    tmp: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def narrate(self, *args: object, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*NARRATE, *map(str, args)],
            env=self.env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def start_worker(self, name: str, concurrency: int = 2, *extra: str) -> None:
        self._spawn(name, "worker", "-c", str(concurrency), "-n", f"{name}@test", *extra)

    def start_beat(self) -> None:
        self._spawn("beat", "beat", "--loglevel", "warning")

    def _spawn(self, name: str, *args: str) -> None:
        log = open(self.tmp / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        self.processes[name] = subprocess.Popen(
            [*NARRATE, *args],
            env=self.env,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: kill -9 reaches its children
        )
        log.close()

    def kill(self, name: str) -> None:
        """``kill -9`` the process and its pool children, as a machine crash would."""
        process = self.processes.pop(name)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)

    def stop_all(self) -> None:
        for name, process in list(self.processes.items()):
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(30)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
            del self.processes[name]

    def submit(self, source: Path, *args: object) -> str:
        result = self.narrate("submit", source, *args)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip().splitlines()[-1]

    def status(self, job_id: str) -> dict[str, Any]:
        result = self.narrate("status", job_id, "--json")
        assert result.returncode == 0, result.stderr
        data: dict[str, Any] = json.loads(result.stdout)
        return data

    def wait(self, job_id: str, timeout_s: float = 180) -> dict[str, Any]:
        """Poll until the job is final; fails with the status and worker logs if not."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            view = self.status(job_id)
            if view["status"] in ("done", "failed", "partial", "cancelled"):
                return view
            time.sleep(0.5)
        raise AssertionError(f"job {job_id} not final after {timeout_s} s: {view}\n{self.logs()}")

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
            for p in sorted(self.tmp.glob("*.log"))
        )


@pytest.fixture
def cluster(postgres_url: str, tmp_path: Path) -> Iterator[Cluster]:
    """A fresh distributed setup; workers are started by the test."""
    import redis

    broker = f"{REDIS_URL}/{redis_db()}"
    need(redis_reachable(broker), f"Redis is not reachable at {REDIS_URL}")
    redis.Redis.from_url(broker).flushdb()
    env = {
        **os.environ,
        "NARRATE_DATABASE_URL": postgres_url,
        "NARRATE_BROKER_URL": broker,
        "NARRATE_STORAGE_DIR": str(tmp_path / "storage"),
        "NARRATE_HOME": str(tmp_path / "home"),
        "NARRATE_LEASE_S": "3",
        "NARRATE_REQUEUE_AFTER_S": "6",
        "NARRATE_FEED_INTERVAL_S": "1",
        "NARRATE_REAP_INTERVAL_S": "1",
        "PYTHONUNBUFFERED": "1",
    }
    setup = subprocess.run(
        [*NARRATE, "db", "upgrade"], env=env, cwd=REPO, capture_output=True, text=True
    )
    assert setup.returncode == 0, setup.stderr
    running = Cluster(env, tmp_path)
    try:
        yield running
    finally:
        running.stop_all()
        redis.Redis.from_url(broker).flushdb()


@pytest.fixture
def factory(database_url: str) -> Iterator[Factory]:
    """Sessions on a fresh schema (made from the models: tests/jobs/test_pipeline.py checks
    that the migrations make the same), on SQLite and on PostgreSQL."""
    engine = make_engine(database_url)
    Base.metadata.create_all(engine)
    yield session_factory(engine)
    engine.dispose()


@pytest.fixture
def storage(tmp_path: Path) -> Storage:
    return Storage(tmp_path / "storage")
