"""Request throttles: how many new provider requests may start per window, per account.

Engines ask a :class:`~renderer.engine.RequestGate` right before each request. This
module holds the embedded implementation, :class:`FileThrottle`, shared by every process
on one machine through a locked file per account (a sliding log of grant times on the
system-wide monotonic clock, so it is valid on one machine only; stamps left from before a
reboot are ignored). Workers on several machines need a shared throttle: a Redis one is
planned with the distributed mode.

Grants obey "at most ``requests`` per ``window_ms + margin_ms``": the margin absorbs the
jitter between the grant and the request's arrival at the provider, so arrivals obey
"at most ``requests`` per ``window_ms``" at the provider.
"""

from __future__ import annotations

import fcntl
import json
import os
import random
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

POLL_S = 0.05
#: the longest a provider pause can hold requests; a later stamp predates a reboot
MAX_PAUSE_S = 600.0


@dataclass(frozen=True)
class RateLimit:
    requests: int
    window_ms: int = 1000
    margin_ms: int = 200

    @property
    def span_s(self) -> float:
        return (self.window_ms + self.margin_ms) / 1000


#: provider limits by engine name (the part of an account id before "/")
DEFAULT_LIMITS: Mapping[str, RateLimit] = {"cosyvoice": RateLimit(requests=3)}


def decide(
    grants: list[float], now: float, blocked_until: float, limit: RateLimit
) -> tuple[list[float], float]:
    """Pure decision: ``(grants kept, seconds to wait)``; a wait of 0 means granted now.

    ``grants`` are earlier grant times; the result's grants include ``now`` when granted.
    """
    # the monotonic clock restarts at boot: stamps "from the future" are from before it
    kept = [t for t in grants if now - limit.span_s < t <= now]
    if now < blocked_until <= now + MAX_PAUSE_S:
        return kept, blocked_until - now
    if len(kept) < limit.requests:
        return [*kept, now], 0.0
    return kept, max(sorted(kept)[-limit.requests] + limit.span_s - now, 0.001)


class FileThrottle:
    """A :class:`~renderer.engine.RequestGate` for the processes of one machine."""

    def __init__(self, directory: Path, limits: Mapping[str, RateLimit] = DEFAULT_LIMITS):
        self.directory = directory
        self.limits = dict(limits)

    def limit_for(self, account: str) -> RateLimit | None:
        return self.limits.get(account.split("/", 1)[0])

    @contextmanager
    def permit(self, account: str) -> Iterator[None]:
        limit = self.limit_for(account)
        if limit is not None:
            while (wait := self._try(account, limit)) > 0:
                time.sleep(min(wait, POLL_S) + random.uniform(0, 0.005))
        yield

    def pause(self, account: str, seconds: float) -> None:
        with self._state(account) as state:
            now = time.monotonic()
            blocked = float(state.get("blocked_until", 0.0))
            if blocked > now + MAX_PAUSE_S:  # from before a reboot
                blocked = 0.0
            state["blocked_until"] = max(blocked, now + min(seconds, MAX_PAUSE_S))

    def _try(self, account: str, limit: RateLimit) -> float:
        with self._state(account) as state:
            grants, wait = decide(
                [float(t) for t in state.get("grants", [])],
                time.monotonic(),
                float(state.get("blocked_until", 0.0)),
                limit,
            )
            state["grants"] = grants
            return wait

    @contextmanager
    def _state(self, account: str) -> Iterator[dict[str, Any]]:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / (account.replace("/", "_") + ".json")
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            raw = os.read(fd, 1 << 20)
            state: dict[str, Any] = json.loads(raw) if raw else {}
            yield state
            data = json.dumps(state).encode()
            os.lseek(fd, 0, os.SEEK_SET)
            os.ftruncate(fd, 0)
            os.write(fd, data)
        finally:
            os.close(fd)
