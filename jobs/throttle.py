"""Request throttles: how many new provider requests may start per window, per account.

Engines ask a :class:`~renderer.engine.RequestGate` right before each request. This
module holds the embedded implementation, :class:`FileThrottle`, shared by every process
on one machine through a locked file per account (a sliding log of grant times on the
system-wide monotonic clock, so it is valid on one machine only; stamps left from before a
reboot are ignored). Workers on several machines share :class:`jobs.throttle_redis.RedisThrottle`;
this module also holds the pure model of its decision (:func:`admit`).

Grants obey "at most ``requests`` per ``window_ms + margin_ms``": the margin absorbs the
jitter between the grant and the request's arrival at the provider, so arrivals obey
"at most ``requests`` per ``window_ms``" at the provider.

The margin is a trade, and arithmetic fixes it: 3 requests per ``1 s + margin`` is at most
``3 / (1 + margin)`` requests per second, and no scheme does better, since three arrivals
a jitter ``J`` apart must be granted ``1 s + J`` apart. 100 ms (the default) gives
2.73 requests/s and tolerates 100 ms of grant-to-arrival jitter (measured on loopback with
50 ms of injected jitter: at most 58 ms, ``bench/throttle.py``); 200 ms gives 2.5/s. Set
``NARRATE_THROTTLE_MARGIN_MS`` from the jitter measured towards the real provider; a
"throttled" answer still pauses every worker and retries, so a too-small margin costs
time, not segments.
"""

from __future__ import annotations

import fcntl
import json
import os
import random
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from enum import IntEnum
from pathlib import Path
from typing import Any

POLL_S = 0.05
#: the longest a provider pause can hold requests; a later stamp predates a reboot
MAX_PAUSE_S = 600.0


#: the default margin over a provider's window (see the module docstring)
DEFAULT_MARGIN_MS = 100


@dataclass(frozen=True)
class RateLimit:
    requests: int
    window_ms: int = 1000
    margin_ms: int = DEFAULT_MARGIN_MS

    @property
    def span_s(self) -> float:
        return (self.window_ms + self.margin_ms) / 1000


#: provider limits by engine name (the part of an account id before "/")
DEFAULT_LIMITS: Mapping[str, RateLimit] = {"cosyvoice": RateLimit(requests=3)}


def limits_with_margin(margin_ms: int) -> dict[str, RateLimit]:
    """The provider limits with another margin (``NARRATE_THROTTLE_MARGIN_MS``)."""
    return {name: replace(limit, margin_ms=margin_ms) for name, limit in DEFAULT_LIMITS.items()}


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


# --- the shared throttle's decision ----------------------------------------------------
# A pure reference model of the Lua script in jobs/throttle_redis.py, step for step, in
# integer milliseconds of the Redis server's clock. The tests replay the script's own
# calls through it and demand identical answers, and check its properties with Hypothesis.

#: a priority class outweighs any enqueue time (ms since 1970 stay below 1e13 until 2286),
#: so ``class * weight + enqueue ms`` orders by class, then first come first served (and
#: stays an exact integer in the doubles of Lua and of ZSET scores)
PRIORITY_WEIGHT_MS = 10**13
MAX_PAUSE_MS = int(MAX_PAUSE_S * 1000)
#: the marker outlives the last poll by this many times ``span + lease``. Any TTL of a span
#: or more is safe (every grant is a poll, so a marker that expired means no grant in the
#: last span); a longer one spares the wait after more idle periods. Three times is well
#: past a lease, so the marker never expires while a live waiter polls
MARKER_TTL_SPANS = 3


class Verdict(IntEnum):
    """Why a ticket got (or did not get) a permit."""

    GRANTED = 0
    #: the provider answered "throttled": everyone waits until ``blocked_until``
    PAUSED = 1
    #: ``requests`` grants already lie in the last ``window + margin``
    FULL = 2
    #: a permit is free, but tickets ranked ahead take it first
    QUEUED = 3


@dataclass(frozen=True)
class Room:
    """One account's shared state: the grant log and the waiting room (server ms)."""

    #: ticket -> grant time
    grants: Mapping[str, int] = field(default_factory=dict)
    #: ticket -> :func:`wait_score`
    waiting: Mapping[str, int] = field(default_factory=dict)
    #: ticket -> lease expiry; a ticket whose lease ran out is dropped from the room
    leases: Mapping[str, int] = field(default_factory=dict)
    blocked_until_ms: int = 0
    #: the last ms the marker exists (Redis expires a key once its TTL has passed); None or
    #: earlier than now: missing, so the grant log may lack grants of the last span. A fresh
    #: ``Room()`` is an account whose keys were just lost, or never used
    marker_until_ms: int | None = None


def marker_ttl_ms(span_ms: int, lease_ms: int) -> int:
    """The TTL the marker gets on every poll (see :data:`MARKER_TTL_SPANS`)."""
    return MARKER_TTL_SPANS * (span_ms + lease_ms)


def wait_score(priority: int, enqueued_ms: int) -> int:
    """A ticket's place in the waiting room: class first, then first-enqueue time."""
    return priority * PRIORITY_WEIGHT_MS + enqueued_ms


def rank_in(waiting: Mapping[str, int], ticket: str) -> int:
    """0-based rank of ``ticket`` by (score, ticket id), the order of a Redis ZSET."""
    mine = (waiting[ticket], ticket)
    return sum(1 for other, score in waiting.items() if (score, other) < mine)


def enter(room: Room, ticket: str, priority: int, now_ms: int, lease_ms: int) -> Room:
    """Drop expired leases, then add or refresh ``ticket`` keeping its first-enqueue time."""
    expired = {t for t, expiry in room.leases.items() if expiry <= now_ms}
    leases = {t: expiry for t, expiry in room.leases.items() if t not in expired}
    waiting = {t: score for t, score in room.waiting.items() if t not in expired}
    waiting.setdefault(ticket, wait_score(priority, now_ms))
    leases[ticket] = now_ms + lease_ms
    return replace(room, waiting=waiting, leases=leases)


def next_turn_ms(
    grants: Mapping[str, int], rank: int, now_ms: int, limit: RateLimit, poll_ms: int
) -> int:
    """A lower bound on the ms until the ticket at ``rank`` can have a permit.

    The tickets ranked ahead take permits first, so ``count + rank - requests + 1`` of the
    logged grants must leave the span; when even all of them leaving is not enough, a
    short poll. Why exact: the head of the line wakes right when its permit frees, so
    polling costs no throughput.
    """
    stamps = sorted(grants.values())
    index = len(stamps) - limit.requests + rank
    if index >= len(stamps):
        return poll_ms
    return max(stamps[index] + limit.window_ms + limit.margin_ms - now_ms, 1)


def admit(
    room: Room,
    ticket: str,
    priority: int,
    now_ms: int,
    limit: RateLimit,
    *,
    lease_ms: int,
    poll_ms: int,
) -> tuple[Room, Verdict, int]:
    """One poll of ``ticket``: ``(new room, verdict, ms to wait)``; the wait is 0 iff granted.

    Grants obey "at most ``requests`` per ``window + margin``". Only the tickets ranked
    first may take the free permits, so a later or lower-class ticket never takes a
    permit that an earlier or more urgent one still waits for. A poll that finds the
    marker missing holds everyone for a span (:func:`recover`).
    """
    room = enter(room, ticket, priority, now_ms, lease_ms)
    span_ms = limit.window_ms + limit.margin_ms
    grants = {t: at for t, at in room.grants.items() if at > now_ms - span_ms}
    room = recover(replace(room, grants=grants), now_ms, span_ms, lease_ms)
    if room.blocked_until_ms > now_ms:
        return room, Verdict.PAUSED, min(room.blocked_until_ms - now_ms, MAX_PAUSE_MS)
    free = limit.requests - len(grants)
    rank = rank_in(room.waiting, ticket)
    if rank < free:
        return forget(replace(room, grants={**grants, ticket: now_ms}), ticket), Verdict.GRANTED, 0
    verdict = Verdict.FULL if free <= 0 else Verdict.QUEUED
    return room, verdict, next_turn_ms(grants, rank, now_ms, limit, poll_ms)


def recover(room: Room, now_ms: int, span_ms: int, lease_ms: int) -> Room:
    """Refresh the marker; if it was missing, hold every request until ``now + span``.

    Why: without the marker the log may have lost grants of the last span (Redis restarted
    without persistence), and granting ``requests`` at once on top of them would send the
    provider up to twice its limit. A later pause is kept (never moved backward).
    """
    if room.marker_until_ms is None or room.marker_until_ms < now_ms:
        room = replace(room, blocked_until_ms=max(room.blocked_until_ms, now_ms + span_ms))
    return replace(room, marker_until_ms=now_ms + marker_ttl_ms(span_ms, lease_ms))


def forget(room: Room, ticket: str) -> Room:
    """Take ``ticket`` out of the waiting room (never out of the grant log)."""
    waiting = {t: s for t, s in room.waiting.items() if t != ticket}
    leases = {t: e for t, e in room.leases.items() if t != ticket}
    return replace(room, waiting=waiting, leases=leases)


def penalize(room: Room, pause_ms: int, now_ms: int) -> Room:
    """Hold every request until ``now + pause`` (capped); a pause is never shortened."""
    until_ms = now_ms + min(pause_ms, MAX_PAUSE_MS)
    if until_ms <= max(room.blocked_until_ms, now_ms):
        return room
    return replace(room, blocked_until_ms=until_ms)


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
