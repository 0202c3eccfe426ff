from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

from jobs.throttle import FileThrottle, RateLimit, decide

LIMIT = RateLimit(requests=3, window_ms=1000, margin_ms=200)


def test_decide_grants_up_to_the_limit_then_waits_for_the_oldest() -> None:
    grants: list[float] = []
    for now in (0.0, 0.1, 0.2):
        grants, wait = decide(grants, now, 0.0, LIMIT)
        assert wait == 0
    grants, wait = decide(grants, 0.3, 0.0, LIMIT)
    assert abs(wait - 0.9) < 1e-9  # the grant at 0.0 leaves the 1.2 s span at 1.2
    grants, wait = decide(grants, 1.25, 0.0, LIMIT)
    assert wait == 0 and len(grants) == 3


def test_decide_honours_a_provider_pause() -> None:
    _, wait = decide([], 10.0, 12.5, LIMIT)
    assert wait == 2.5


def _worker(directory: str, count: int, stamps: list[float]) -> None:
    throttle = FileThrottle(Path(directory), {"cosyvoice": LIMIT})
    for _ in range(count):
        with throttle.permit("cosyvoice/acct"):
            stamps.append(time.monotonic())


def test_processes_sharing_the_throttle_stay_under_the_limit(tmp_path: Path) -> None:
    with multiprocessing.Manager() as manager:
        stamps = manager.list()
        processes = [
            multiprocessing.Process(target=_worker, args=(str(tmp_path), 3, stamps))
            for _ in range(4)
        ]
        started = time.monotonic()
        for process in processes:
            process.start()
        for process in processes:
            process.join(30)
        elapsed = time.monotonic() - started
        granted = sorted(stamps)
    assert len(granted) == 12
    for index in range(3, len(granted)):  # never a 4th grant within one window
        assert granted[index] - granted[index - 3] >= 1.0
    assert elapsed < 6  # 12 grants at 3 per 1.2 s need ~3.6 s


def test_engines_without_a_limit_pass_at_once(tmp_path: Path) -> None:
    throttle = FileThrottle(tmp_path)
    started = time.monotonic()
    for _ in range(50):
        with throttle.permit("espeak/local"):
            pass
    assert time.monotonic() - started < 0.5


def test_stamps_from_before_a_reboot_are_ignored() -> None:
    # the monotonic clock restarts at boot: old stamps look like the future
    grants, wait = decide([400_000.0] * 3, 5_000.0, 0.0, LIMIT)
    assert wait == 0 and grants == [5_000.0]
    _, wait = decide([], 5_000.0, 400_000.0, LIMIT)
    assert wait == 0
