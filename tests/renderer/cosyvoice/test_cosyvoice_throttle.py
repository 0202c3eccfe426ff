"""The engine under the shared throttles against a service that counts arrivals late.

The simulator's ``arrival_jitter_s`` stamps each run-task up to that late (as it does
itself on a busy machine, and as a provider's front door may): far more than the margin.
The permit is held until the service answers, so no arrival is ever over the limit.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis

from jobs.keys import throttle_pattern
from jobs.throttle import DEFAULT_MARGIN_MS, WIDEN_MS, FileThrottle, RateLimit
from jobs.throttle_redis import RedisThrottle
from renderer.cosyvoice.config import ServiceConfig
from renderer.cosyvoice.engine import CosyVoiceEngine
from renderer.cosyvoice.errors import CosyVoiceThrottledError
from renderer.cosyvoice.simulator import SimulatorThread
from renderer.engine import RequestGate, SynthesisRequest
from ssml.build import build_ssml
from tests.conftest import need

REDIS_URL = os.environ.get("NARRATE_TEST_REDIS_URL", "redis://127.0.0.1:6379") + "/8"
#: the simulator stamps run-tasks up to this late: ten times the default margin
LATE_S = 0.25
Start = Callable[..., SimulatorThread]
Config = Callable[..., ServiceConfig]
Stats = Callable[[SimulatorThread], dict[str, Any]]


def request(text: str) -> SynthesisRequest:
    return SynthesisRequest(
        ssml=build_ssml([text], pause_ms=0, dialect="cosyvoice"), voice="longanyang"
    )


@pytest.fixture
def redis_gate() -> Iterator[Callable[[RateLimit], RedisThrottle]]:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        need(False, f"Redis is not reachable at {REDIS_URL}: {exc}")
    made: list[RedisThrottle] = []

    def make(limit: RateLimit) -> RedisThrottle:
        made.append(RedisThrottle(client, {"cosyvoice": limit}, poll_s=0.05))
        return made[-1]

    yield make
    for key in client.scan_iter(match=throttle_pattern("cosyvoice/*")):
        client.delete(key)
    client.close()


def gates(tmp_path: Path, redis_gate: Callable[[RateLimit], RedisThrottle]) -> dict[str, Any]:
    limit = RateLimit(requests=3)  # the default margin
    return {
        "file": lambda: FileThrottle(tmp_path / "throttle", {"cosyvoice": limit}),
        "redis": lambda: redis_gate(limit),
    }


def run_workers(gate: RequestGate, config: ServiceConfig, workers: int, each: int) -> None:
    errors: list[BaseException] = []

    def work() -> None:
        engine = CosyVoiceEngine(gate, config)  # one engine per worker, one shared gate
        try:
            for _ in range(each):
                engine.synthesize(request("Tick."))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors


@pytest.mark.parametrize("kind", ["file", "redis"])
def test_no_rejection_when_the_service_counts_arrivals_late(
    start_simulator: Start,
    service_config: Config,
    http_stats: Stats,
    tmp_path: Path,
    redis_gate: Callable[[RateLimit], RedisThrottle],
    kind: str,
) -> None:
    sim = start_simulator(rate_limit=3, arrival_jitter_s=LATE_S, seed=7)
    config = service_config(sim, DASHSCOPE_API_KEY=f"key-{uuid.uuid4().hex}")  # a fresh account
    gate = gates(tmp_path, redis_gate)[kind]()
    run_workers(gate, config, workers=4, each=4)
    stats = http_stats(sim)
    assert stats["tasks_started"] == 16
    assert stats["rejected_by_rate_limit"] == 0
    assert stats["max_tasks_started_in_one_second"] <= 3
    assert gate.margin_ms(config.account) == DEFAULT_MARGIN_MS  # nothing to widen it


class Recording:
    """A gate that notes when each permit's block ends (the engine's settle)."""

    def __init__(self, inner: FileThrottle) -> None:
        self.inner = inner
        self.settled: list[float] = []

    @contextmanager
    def permit(self, account: str) -> Iterator[None]:
        with self.inner.permit(account):
            yield
            self.settled.append(time.monotonic())

    def pause(self, account: str, seconds: float) -> None:
        self.inner.pause(account, seconds)


def test_the_permit_is_held_until_the_service_counted_the_task(
    start_simulator: Start, service_config: Config, tmp_path: Path
) -> None:
    sim = start_simulator(rate_limit=3, arrival_jitter_s=LATE_S, seed=3)
    gate = Recording(FileThrottle(tmp_path / "throttle"))
    engine = CosyVoiceEngine(gate, service_config(sim))
    for _ in range(4):
        engine.synthesize(request("Tock."))
    counted = sim.simulator.stats.start_times  # the simulator's clock is this process's
    assert len(counted) == len(gate.settled) == 4
    assert all(settled >= at for settled, at in zip(gate.settled, counted, strict=True))


def test_a_throttling_answer_widens_the_shared_margin(
    start_simulator: Start,
    service_config: Config,
    tmp_path: Path,
    redis_gate: Callable[[RateLimit], RedisThrottle],
) -> None:
    sim = start_simulator(faults=("throttle",), fail_rate=1.0)
    config = service_config(sim, DASHSCOPE_API_KEY=f"key-{uuid.uuid4().hex}")
    for make in gates(tmp_path, redis_gate).values():
        gate = make()
        with pytest.raises(CosyVoiceThrottledError):
            CosyVoiceEngine(gate, config).synthesize(request("Hello."))
        assert gate.margin_ms(config.account) == DEFAULT_MARGIN_MS + WIDEN_MS
