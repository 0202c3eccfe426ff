"""The embedded throttle: the shared model on a locked file, for the processes of one machine."""

from __future__ import annotations

import json
import multiprocessing
import random
import time
from pathlib import Path

import pytest

from jobs.throttle import FileThrottle, RateLimit, monotonic_ms

LIMIT = RateLimit(requests=3, window_ms=1000, margin_ms=200)
ACCOUNT = "cosyvoice/acct"


def violations(blocks: list[tuple[float, float]], requests: int, window_s: float) -> int:
    """How many requests could see more than ``requests`` arrivals in a ``window_s``.

    ``blocks`` are (permit granted, block left) per request: the provider may count each
    anywhere in between. Request j is at risk when ``requests`` earlier-granted requests
    left their blocks less than a window before j was granted.
    """
    found = 0
    for index, (granted, _) in enumerate(blocks):
        earlier = sorted(
            (left for other, (at, left) in enumerate(blocks) if other != index and at <= granted),
            reverse=True,
        )
        if len(earlier) >= requests and granted - earlier[requests - 1] < window_s:
            found += 1
    return found


def test_violations_sees_an_arrival_that_may_come_late() -> None:
    # three requests settled at 0.0-0.1 s; a fourth granted 1.05 s after the first settle
    on_time = [(0.0, 0.0), (0.0, 0.0), (0.1, 0.1), (1.05, 1.06)]
    assert violations(on_time, 3, 1.0) == 0
    late = [(0.0, 0.2), (0.0, 0.1), (0.1, 0.1), (1.05, 1.06)]  # two answered late
    assert violations(late, 3, 1.0) == 1


def _worker(directory: str, count: int, blocks: list[tuple[float, float]]) -> None:
    throttle = FileThrottle(Path(directory), {"cosyvoice": LIMIT})
    rng = random.Random()
    for _ in range(count):
        with throttle.permit(ACCOUNT):
            granted = time.monotonic()
            time.sleep(rng.uniform(0, 0.1))  # the round trip to the provider's answer
            blocks.append((granted, time.monotonic()))


def test_processes_sharing_the_throttle_stay_under_the_limit(tmp_path: Path) -> None:
    with multiprocessing.Manager() as manager:
        shared = manager.list()
        processes = [
            multiprocessing.Process(target=_worker, args=(str(tmp_path), 3, shared))
            for _ in range(4)
        ]
        started = time.monotonic()
        for process in processes:
            process.start()
        for process in processes:
            process.join(30)
        elapsed = time.monotonic() - started
        blocks = sorted(shared)
    assert len(blocks) == 12
    # wherever in its block the provider counted each request, never 4 within a window
    assert violations(blocks, 3, 1.0) == 0
    assert elapsed < 8  # 12 requests at 3 per (1.2 s + up to 0.1 s in flight) need ~4 s


def test_a_request_in_flight_holds_its_place_until_it_is_settled(tmp_path: Path) -> None:
    throttle = FileThrottle(tmp_path, {"cosyvoice": RateLimit(1, window_ms=200, margin_ms=50)})
    with throttle.permit(ACCOUNT):
        time.sleep(0.3)  # a slow answer: longer than the whole span
        settled = time.monotonic()
    with throttle.permit(ACCOUNT):
        granted = time.monotonic()
    assert granted - settled >= 0.25 - 0.01  # window + margin after the settle, not the grant


def test_a_request_whose_process_died_in_flight_lands_when_its_flight_runs_out(
    tmp_path: Path,
) -> None:
    limit = RateLimit(1, window_ms=100, margin_ms=0)
    throttle = FileThrottle(tmp_path, {"cosyvoice": limit}, flight_ms=600)
    dead = throttle.permit(ACCOUNT)
    dead.__enter__()  # granted, never settled: the process was killed in the block
    granted_at = time.monotonic()
    with throttle.permit(ACCOUNT):
        waited = time.monotonic() - granted_at
    assert 0.6 + 0.1 - 0.02 <= waited < 3  # flight, then a window after it


def test_a_throttled_answer_pauses_and_widens_and_a_clean_run_narrows(tmp_path: Path) -> None:
    limit = RateLimit(10, window_ms=100, margin_ms=20, widen_ms=50, narrow_ms=30, clean_run=3)
    throttle = FileThrottle(tmp_path, {"cosyvoice": limit})
    assert throttle.margin_ms(ACCOUNT) == 20
    throttle.pause(ACCOUNT, 0.3)
    throttle.pause(ACCOUNT, 0.3)  # the same episode: widened once
    assert throttle.margin_ms(ACCOUNT) == 70
    began = time.monotonic()
    with throttle.permit(ACCOUNT):
        assert time.monotonic() - began >= 0.3 - 0.01
    for _ in range(2):
        with throttle.permit(ACCOUNT):
            pass
    assert throttle.margin_ms(ACCOUNT) == 40  # three clean settles: one step narrower
    for _ in range(6):
        with throttle.permit(ACCOUNT):
            pass
    assert throttle.margin_ms(ACCOUNT) == 20  # never below the floor


def test_a_failed_request_is_settled_and_an_interrupted_waiter_leaves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    throttle = FileThrottle(tmp_path, {"cosyvoice": RateLimit(1, window_ms=5000, margin_ms=0)})
    with pytest.raises(RuntimeError), throttle.permit(ACCOUNT):
        raise RuntimeError("the provider request failed")
    room = json.loads((tmp_path / "cosyvoice_acct.json").read_text())["room"]
    assert len(room["grants"]) == 1 and room["in_flight"] == {}
    poll = FileThrottle._poll

    def interrupted(self: FileThrottle, *args: object) -> int:
        poll(self, *args)  # type: ignore[arg-type]  # in the waiting room now
        raise KeyboardInterrupt

    monkeypatch.setattr(FileThrottle, "_poll", interrupted)
    with pytest.raises(KeyboardInterrupt), throttle.permit(ACCOUNT):
        pass
    room = json.loads((tmp_path / "cosyvoice_acct.json").read_text())["room"]
    assert room["waiting"] == {} and room["leases"] == {}


def test_engines_without_a_limit_pass_at_once(tmp_path: Path) -> None:
    throttle = FileThrottle(tmp_path)
    started = time.monotonic()
    for _ in range(50):
        with throttle.permit("espeak/local"):
            pass
        throttle.pause("stub/local", 5)
    assert time.monotonic() - started < 0.5
    assert throttle.margin_ms("espeak/local") is None


@pytest.mark.parametrize("saved", ["before a reboot", "an older format", "garbage"])
def test_a_file_saved_before_a_reboot_or_unreadable_is_ignored(tmp_path: Path, saved: str) -> None:
    path = tmp_path / "cosyvoice_acct.json"
    future_ms = monotonic_ms() + 400_000_000  # the monotonic clock restarts at boot
    content = {
        "before a reboot": json.dumps(
            {
                "saved_ms": future_ms,
                "room": {"grants": {"a": future_ms, "b": future_ms, "c": future_ms}},
            }
        ),
        "an older format": json.dumps({"grants": [4e5] * 3, "blocked_until": 4e5}),
        "garbage": "{not json",
    }[saved]
    path.write_text(content)
    throttle = FileThrottle(tmp_path, {"cosyvoice": LIMIT})
    started = time.monotonic()
    with throttle.permit(ACCOUNT):
        pass
    assert time.monotonic() - started < 0.5  # granted at once, no wait for stale stamps
