"""Request throttles: how many new provider requests may start per window, per account.

Engines hold a permit of a :class:`~renderer.engine.RequestGate` from right before each
request until the provider has answered it. This module holds the pure model of the
decision (:func:`admit`, :func:`settle`, :func:`penalize`) and the embedded
implementation, :class:`FileThrottle`, which runs that model on a locked file per account
(shared by every process of one machine, on the system-wide monotonic clock; a file left
from before a reboot is ignored). Workers on several machines share
:class:`jobs.throttle_redis.RedisThrottle`, whose Lua script is the same model.

**What the log records.** A permit is not stamped when it is granted but when the request
is *settled*: when the engine leaves the permit's block, after the provider answered
(accepted or refused) or the request failed. The provider counted the request before it
answered, so the settle time is an upper bound on the moment the provider counted it,
whatever happened in between: a descheduled process, a slow network, or a provider (or
simulator) that stamps arrivals late because its own machine is busy. While a request is
*in flight* (granted, not settled) it counts as arriving at every moment, so nobody takes
its place. The next request in its place is granted ``window + margin`` after the settle,
so at the provider two requests ``requests`` apart always lie more than a window apart:
**grant-to-arrival jitter costs time, never a rejection**.

The price is the time a request spends in flight (the round trip to the provider's first
answer, and on a busy machine the wake-ups on the way back), on top of the margin:
``requests`` per ``window + margin + time in flight`` is the ceiling, so 3 / (1 s + 25 ms
+ 27 ms) = 2.85 requests/s with a flight of 27 ms (``bench/throttle.py``). Unlike a margin
sized for the worst jitter, it is the mean flight that costs. A request whose engine dies
in flight (``kill -9``) holds its place until ``flight_ms`` after its grant (longer than
any engine waits for a first answer), and counts as settled at that moment.

**The margin** only covers what the settle stamp cannot see: the provider's window
rounding and clock rate, an NTP step of the Redis clock, and, once widened, whatever else
makes the provider answer "throttled" (another client on the same key, a provider that
counts differently from its documentation). It starts at the limit's floor (``margin_ms``,
``NARRATE_THROTTLE_MARGIN_MS``, default :data:`DEFAULT_MARGIN_MS`) and adapts per account:
a "throttled" answer (:func:`penalize`; only the first of a pause, as the answers to
requests sent before it are the same episode) widens it by ``widen_ms`` up to
``max_margin_ms``, and every ``clean_run`` settled requests without one narrow it by
``narrow_ms``, never below the floor. With the defaults one episode lowers the ceiling
from 3 per 1.025 s to 3 per 1.075 s (plus flights), and 500 clean requests (about three
minutes at full speed) bring it back.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import random
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from enum import IntEnum
from pathlib import Path
from typing import Any

from jobs.priority import current_priority

POLL_S = 0.05
#: the longest a provider pause can hold requests
MAX_PAUSE_S = 600.0
MAX_PAUSE_MS = int(MAX_PAUSE_S * 1000)

#: the margin's floor over a provider's window (see the module docstring)
DEFAULT_MARGIN_MS = 25
#: the most a run of "throttled" answers can widen the margin to
DEFAULT_MAX_MARGIN_MS = 400
#: one "throttled" episode widens the margin by this much
WIDEN_MS = 50
#: ... and this many settled requests without one narrow it by NARROW_MS
CLEAN_RUN = 100
NARROW_MS = 10
#: an in-flight request whose engine never settles it counts as settled this long after
#: its grant: longer than any engine waits for its provider's first answer (CosyVoice 30 s)
DEFAULT_FLIGHT_MS = 60_000
#: an account's adapted margin is forgotten (back to the floor) after this long unused
MARGIN_TTL_MS = 3_600_000


@dataclass(frozen=True)
class RateLimit:
    """At most ``requests`` per ``window_ms`` at the provider, with an adaptive margin."""

    requests: int
    window_ms: int = 1000
    #: the margin's floor (``NARRATE_THROTTLE_MARGIN_MS``)
    margin_ms: int = DEFAULT_MARGIN_MS
    max_margin_ms: int = DEFAULT_MAX_MARGIN_MS
    widen_ms: int = WIDEN_MS
    narrow_ms: int = NARROW_MS
    clean_run: int = CLEAN_RUN

    @property
    def ceiling_ms(self) -> int:
        """The widest margin (never below the floor)."""
        return max(self.margin_ms, self.max_margin_ms)

    @property
    def span_s(self) -> float:
        """Window plus the margin's floor, in seconds."""
        return (self.window_ms + self.margin_ms) / 1000


#: provider limits by engine name (the part of an account id before "/")
DEFAULT_LIMITS: Mapping[str, RateLimit] = {"cosyvoice": RateLimit(requests=3)}


def limits_with_margin(margin_ms: int) -> dict[str, RateLimit]:
    """The provider limits with another margin floor (``NARRATE_THROTTLE_MARGIN_MS``)."""
    return {name: replace(limit, margin_ms=margin_ms) for name, limit in DEFAULT_LIMITS.items()}


def pause_ms_for(seconds: float) -> int:
    """A provider's "retry after" in whole ms, at most ``MAX_PAUSE_MS`` (nonsense -> 0)."""
    if math.isnan(seconds) or seconds <= 0:
        return 0
    if math.isinf(seconds):
        return MAX_PAUSE_MS
    return min(math.ceil(seconds * 1000), MAX_PAUSE_MS)


# --- the decision ----------------------------------------------------------------------
# A pure reference model of the Lua scripts in jobs/throttle_redis.py, step for step, in
# integer milliseconds of one clock (the Redis server's; FileThrottle's monotonic clock).
# The tests replay the scripts' own calls through it and demand identical answers, and
# check its properties with Hypothesis.

#: a priority class outweighs any enqueue time (ms since 1970 stay below 1e13 until 2286),
#: so ``class * weight + enqueue ms`` orders by class, then first come first served (and
#: stays an exact integer in the doubles of Lua and of ZSET scores)
PRIORITY_WEIGHT_MS = 10**13
#: the marker outlives the last poll by this many times ``longest span + lease``. Any TTL
#: of a span or more is safe (every grant is a poll, so a marker that expired means no
#: grant in the last span); a longer one spares the wait after more idle periods. Three
#: times is well past a lease, so the marker never expires while a live waiter polls
MARKER_TTL_SPANS = 3


class Verdict(IntEnum):
    """Why a ticket got (or did not get) a permit."""

    GRANTED = 0
    #: the provider answered "throttled": everyone waits until ``blocked_until``
    PAUSED = 1
    #: ``requests`` requests are in flight or settled within the last ``window + margin``
    FULL = 2
    #: a permit is free, but tickets ranked ahead take it first
    QUEUED = 3


@dataclass(frozen=True)
class Room:
    """One account's shared state: the request log and the waiting room (ms)."""

    #: ticket -> when its request was settled (or its flight ran out): the sliding log
    grants: Mapping[str, int] = field(default_factory=dict)
    #: ticket -> the ms its flight runs out: granted, not yet settled; counts as "now"
    in_flight: Mapping[str, int] = field(default_factory=dict)
    #: ticket -> :func:`wait_score`
    waiting: Mapping[str, int] = field(default_factory=dict)
    #: ticket -> lease expiry; a ticket whose lease ran out is dropped from the room
    leases: Mapping[str, int] = field(default_factory=dict)
    blocked_until_ms: int = 0
    #: the last ms the marker exists (Redis expires a key once its TTL has passed); None or
    #: earlier than now: missing, so the log may lack requests of the last span. A fresh
    #: ``Room()`` is an account whose keys were just lost, or never used
    marker_until_ms: int | None = None
    #: the account's adapted margin; None: the floor (never widened, or forgotten)
    margin_ms: int | None = None
    #: requests settled since the margin last widened or narrowed
    clean: int = 0


def marker_ttl_ms(limit: RateLimit, lease_ms: int) -> int:
    """The TTL the marker gets on every poll (see :data:`MARKER_TTL_SPANS`)."""
    return MARKER_TTL_SPANS * (limit.window_ms + limit.ceiling_ms + lease_ms)


def margin_of(room: Room, limit: RateLimit) -> int:
    """The account's margin now, within the limit's floor and ceiling."""
    stored = limit.margin_ms if room.margin_ms is None else room.margin_ms
    return min(max(stored, limit.margin_ms), limit.ceiling_ms)


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


def land(room: Room, now_ms: int) -> Room:
    """In-flight requests whose flight ran out count as settled when it ran out.

    Why that moment: an engine waits less than a flight for the provider's first answer,
    so a request never settled (its process was killed) reached the provider before it.
    """
    landed = {t: until for t, until in room.in_flight.items() if until <= now_ms}
    if not landed:
        return room
    flying = {t: until for t, until in room.in_flight.items() if until > now_ms}
    return replace(room, grants={**room.grants, **landed}, in_flight=flying)


def next_turn_ms(
    counted: list[int], rank: int, now_ms: int, span_ms: int, requests: int, poll_ms: int
) -> int:
    """A lower bound on the ms until the ticket at ``rank`` can have a permit.

    ``counted`` holds the stamps in the span, in-flight requests as ``now``. The tickets
    ranked ahead take permits first, so ``count + rank - requests + 1`` of them must leave
    the span; when even all of them leaving is not enough, a short poll. Why exact: the
    head of the line wakes right when its permit frees, so polling costs no throughput.
    """
    stamps = sorted(counted)
    index = len(stamps) - requests + rank
    if index >= len(stamps):
        return poll_ms
    return max(stamps[index] + span_ms - now_ms, 1)


def admit(
    room: Room,
    ticket: str,
    priority: int,
    now_ms: int,
    limit: RateLimit,
    *,
    lease_ms: int,
    poll_ms: int,
    flight_ms: int = DEFAULT_FLIGHT_MS,
) -> tuple[Room, Verdict, int]:
    """One poll of ``ticket``: ``(new room, verdict, ms to wait)``; the wait is 0 iff granted.

    At most ``requests`` requests are in flight or settled within the last ``window +
    margin``. Only the tickets ranked first may take the free permits, so a later or
    lower-class ticket never takes a permit that an earlier or more urgent one still waits
    for. A granted ticket is in flight until :func:`settle`. A poll that finds the marker
    missing holds everyone for a span (:func:`recover`).
    """
    room = land(enter(room, ticket, priority, now_ms, lease_ms), now_ms)
    span_ms = limit.window_ms + margin_of(room, limit)
    # keep the log for the widest margin: a margin widened later still sees every stamp
    oldest_ms = now_ms - limit.window_ms - limit.ceiling_ms
    kept = {t: at for t, at in room.grants.items() if at > oldest_ms}
    room = recover(replace(room, grants=kept), now_ms, span_ms, marker_ttl_ms(limit, lease_ms))
    if room.blocked_until_ms > now_ms:
        return room, Verdict.PAUSED, min(room.blocked_until_ms - now_ms, MAX_PAUSE_MS)
    counted = [at for at in kept.values() if at > now_ms - span_ms]
    counted += [now_ms] * len(room.in_flight)
    free = limit.requests - len(counted)
    rank = rank_in(room.waiting, ticket)
    if rank < free:
        flying = {**room.in_flight, ticket: now_ms + flight_ms}
        return forget(replace(room, in_flight=flying), ticket), Verdict.GRANTED, 0
    verdict = Verdict.FULL if free <= 0 else Verdict.QUEUED
    wait_ms = next_turn_ms(counted, rank, now_ms, span_ms, limit.requests, poll_ms)
    return room, verdict, wait_ms


def settle(room: Room, ticket: str, now_ms: int, limit: RateLimit) -> Room:
    """The provider answered ``ticket``'s request (or it failed): log it at ``now``.

    ``now`` is after the provider counted the request, so the log holds an upper bound of
    its arrival. A ticket missing from the flight (its flight ran out, or the keys were
    lost) is logged all the same: later is always safe. Every ``clean_run`` settles since
    the margin last changed narrow it by ``narrow_ms``, never below the floor.
    """
    flying = {t: until for t, until in room.in_flight.items() if t != ticket}
    room = replace(room, grants={**room.grants, ticket: now_ms}, in_flight=flying)
    if room.clean + 1 < limit.clean_run:
        return replace(room, clean=room.clean + 1)
    stored = limit.margin_ms if room.margin_ms is None else room.margin_ms
    return replace(room, margin_ms=max(limit.margin_ms, stored - limit.narrow_ms), clean=0)


def recover(room: Room, now_ms: int, span_ms: int, marker_ms: int) -> Room:
    """Refresh the marker; if it was missing, hold every request until ``now + span``.

    Why: without the marker the log may have lost requests of the last span (Redis
    restarted without persistence), and granting ``requests`` at once on top of them would
    send the provider up to twice its limit. A later pause is kept (never moved backward).
    """
    if room.marker_until_ms is None or room.marker_until_ms < now_ms:
        room = replace(room, blocked_until_ms=max(room.blocked_until_ms, now_ms + span_ms))
    return replace(room, marker_until_ms=now_ms + marker_ms)


def forget(room: Room, ticket: str) -> Room:
    """Take ``ticket`` out of the waiting room (never out of the log or the flight)."""
    waiting = {t: s for t, s in room.waiting.items() if t != ticket}
    leases = {t: e for t, e in room.leases.items() if t != ticket}
    return replace(room, waiting=waiting, leases=leases)


def penalize(room: Room, pause_ms: int, now_ms: int, limit: RateLimit) -> Room:
    """The provider answered "throttled": hold every request until ``now + pause`` (capped;
    a pause is never shortened) and, unless a pause already runs, widen the margin.

    Why only then: the throttled answers to requests sent before the pause began are one
    episode, and widening once per request would jump to the ceiling at the first burst.
    """
    if room.blocked_until_ms <= now_ms:
        widened = min(margin_of(room, limit) + limit.widen_ms, limit.ceiling_ms)
        room = replace(room, margin_ms=widened, clean=0)
    until_ms = now_ms + min(pause_ms, MAX_PAUSE_MS)
    if until_ms <= max(room.blocked_until_ms, now_ms):
        return room
    return replace(room, blocked_until_ms=until_ms)


# --- one machine: the model on a locked file ---------------------------------------------


def room_to_json(room: Room) -> dict[str, Any]:
    return {
        "grants": dict(room.grants),
        "in_flight": dict(room.in_flight),
        "waiting": dict(room.waiting),
        "leases": dict(room.leases),
        "blocked_until_ms": room.blocked_until_ms,
        "marker_until_ms": room.marker_until_ms,
        "margin_ms": room.margin_ms,
        "clean": room.clean,
    }


def room_from_json(data: Mapping[str, Any]) -> Room:
    def stamps(name: str) -> dict[str, int]:
        return {str(t): int(ms) for t, ms in dict(data.get(name) or {}).items()}

    margin = data.get("margin_ms")
    marker = data.get("marker_until_ms")
    return Room(
        grants=stamps("grants"),
        in_flight=stamps("in_flight"),
        waiting=stamps("waiting"),
        leases=stamps("leases"),
        blocked_until_ms=int(data.get("blocked_until_ms") or 0),
        marker_until_ms=None if marker is None else int(marker),
        margin_ms=None if margin is None else int(margin),
        clean=int(data.get("clean") or 0),
    )


def monotonic_ms() -> int:
    return time.monotonic_ns() // 1_000_000


class FileThrottle:
    """A :class:`~renderer.engine.RequestGate` for the processes of one machine.

    The model above on a locked JSON file per account, on the monotonic clock (the same
    for every process of the machine). The file never loses its log while the machine
    runs, so the marker is kept fresh (no wait after an idle period); a file saved "in
    the future" was saved before a reboot (the monotonic clock restarts at boot) and is
    ignored, as is a file in an older format.
    """

    def __init__(
        self,
        directory: Path,
        limits: Mapping[str, RateLimit] = DEFAULT_LIMITS,
        *,
        lease_ms: int = 10_000,
        flight_ms: int = DEFAULT_FLIGHT_MS,
    ) -> None:
        self.directory = directory
        self.limits = dict(limits)
        self.lease_ms = lease_ms
        self.flight_ms = flight_ms

    def limit_for(self, account: str) -> RateLimit | None:
        return self.limits.get(account.split("/", 1)[0])

    @contextmanager
    def permit(self, account: str) -> Iterator[None]:
        """Wait for a permit; the request counts as in flight until the block ends."""
        limit = self.limit_for(account)
        if limit is None:
            yield
            return
        ticket = uuid.uuid4().hex
        priority = int(current_priority()[0])
        try:
            while (wait_ms := self._poll(account, ticket, priority, limit)) > 0:
                time.sleep(min(wait_ms / 1000, POLL_S) + random.uniform(0, 0.005))
        except BaseException:
            with self._room(account) as state:
                state["room"] = forget(state["room"], ticket)
            raise
        try:
            yield
        finally:
            with self._room(account) as state:
                state["room"] = settle(state["room"], ticket, state["now_ms"], limit)

    def pause(self, account: str, seconds: float) -> None:
        limit = self.limit_for(account)
        if limit is None:
            return
        with self._room(account) as state:
            state["room"] = penalize(state["room"], pause_ms_for(seconds), state["now_ms"], limit)

    def margin_ms(self, account: str) -> int | None:
        """The account's margin now (None: no limit)."""
        limit = self.limit_for(account)
        if limit is None:
            return None
        with self._room(account) as state:
            return margin_of(state["room"], limit)

    def _poll(self, account: str, ticket: str, priority: int, limit: RateLimit) -> int:
        with self._room(account) as state:
            now_ms = state["now_ms"]
            room: Room = state["room"]
            fresh = max(room.marker_until_ms or now_ms, now_ms)  # a file loses nothing
            state["room"], _verdict, wait_ms = admit(
                replace(room, marker_until_ms=fresh),
                ticket,
                priority,
                now_ms,
                limit,
                lease_ms=self.lease_ms,
                poll_ms=round(POLL_S * 1000),
                flight_ms=self.flight_ms,
            )
            return wait_ms

    @contextmanager
    def _room(self, account: str) -> Iterator[dict[str, Any]]:
        """``{"room", "now_ms"}`` under the account's file lock; written back on exit."""
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / (account.replace("/", "_") + ".json")
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            now_ms = monotonic_ms()
            raw = os.read(fd, 1 << 20)
            try:
                saved = json.loads(raw) if raw else {}
            except ValueError:
                saved = {}
            usable = isinstance(saved, dict) and int(saved.get("saved_ms", now_ms + 1)) <= now_ms
            room = room_from_json(saved.get("room") or {}) if usable else Room()
            state: dict[str, Any] = {"room": room, "now_ms": now_ms}
            yield state
            data = json.dumps({"saved_ms": now_ms, "room": room_to_json(state["room"])})
            os.lseek(fd, 0, os.SEEK_SET)
            os.ftruncate(fd, 0)
            os.write(fd, data.encode())
        finally:
            os.close(fd)
