"""The provider throttle shared by every process on every machine, in Redis.

:class:`RedisThrottle` is the :class:`~renderer.engine.RequestGate` of the distributed
mode: a worker holds a permit from right before each request to a rate-limited provider
(CosyVoice allows 3 new tasks per second per account) until the provider has answered it,
so all workers together stay under the provider's limit however many there are.

Design, and why:

* **A sliding log of settled requests, decided in Lua.** Each poll runs ``acquire``
  atomically on the account's keys (:mod:`jobs.keys`), so no two workers can both take the
  last permit. A granted request is *in flight* (it counts as arriving now) until its
  engine leaves the permit's block, after the provider's first answer; ``settle`` then
  logs it at that moment, which is after the provider counted it. At most ``requests``
  requests are in flight or settled within the last ``window + margin``, so the provider
  sees at most ``requests`` per ``window`` however late its arrival stamps are (a busy
  process, network, or provider). The model and the trade-off are in :mod:`jobs.throttle`.
* **An adaptive margin per account.** ``margin`` (a hash beside the log) starts at the
  limit's floor; the first "throttled" answer of a pause widens it (``penalize``), every
  ``clean_run`` settles without one narrow it (``settle``), within the documented bounds.
  Every worker reads it on every poll.
* **The server's clock.** Times come from Redis ``TIME`` inside the scripts, never from a
  worker's clock, so clock skew between machines cannot shift the window.
* **A waiting room with priority and leases.** Waiting tickets sit in a ZSET scored
  ``class * 1e13 + first-enqueue ms``: an urgent ticket is served before any normal or
  bulk one, and tickets of one class first come first served. Only the tickets ranked
  first may take the free permits. Each waiter refreshes a lease on every poll; a waiter
  that was killed or hangs stops refreshing, and its ticket is dropped once the lease runs
  out, so it blocks nobody for long. A refused poll is told the earliest moment its turn
  can come, so the head of the line wakes right when its permit frees (no throughput
  lost to polling) and the others poll every ``poll_s``, which refreshes their leases.
  A worker killed *in flight* holds its place until ``flight_ms`` after its grant.
* **Fairness between jobs of one class** is not decided here: within a class the throttle
  is FIFO, and the feeder that releases segments from the database interleaves the jobs
  upstream, so FIFO here serves them in turn.
* **A provider pause.** On a "throttled" answer the engine calls :meth:`pause`; the
  ``penalize`` script moves ``blocked_until`` forward (never backward, at most
  ``MAX_PAUSE_S``) and every waiter holds until then.
* **Lost data costs a span of waiting, never a burst.** Redis without persistence forgets
  the log when it restarts (as on FLUSHDB, or a failover that loses the keys); granting
  ``requests`` at once then, on top of up to ``requests`` forgotten requests, would double
  the provider's limit. Every poll refreshes a marker key (TTL ``3 * (longest span +
  lease)``); a poll that finds it missing recreates it and holds everyone until ``now +
  span`` through ``blocked_until`` (never moved backward). The price: the first permit
  after a restart, or after the account idled past the marker's TTL, comes one span late.
  A loss that keeps the marker (a replica promoted a few writes behind, a seconds-old
  snapshot) goes unseen; a request in flight at the loss is logged again when it settles.
* **Fail closed.** If Redis cannot be reached, :meth:`permit` raises the retryable
  :class:`~narrate.errors.ThrottleUnavailableError` and no provider request is made. After
  ``max_wait_s`` without a permit it raises the retryable
  :class:`~narrate.errors.ThrottleBusyError`, so a task gives its worker slot back. A
  settle that fails is not an error (the request is done); its flight runs out instead.
* **Nothing lingers.** Every key gets a TTL, so an idle account's keys vanish.

The scripts' decisions are modelled in pure Python by :func:`jobs.throttle.admit`,
:func:`~jobs.throttle.settle` and :func:`~jobs.throttle.penalize`; the tests replay the
scripts' calls through the model. Redis must not evict keys (``maxmemory-policy
noeviction``, as a Celery broker needs anyway). Account ids are hashes, never credentials,
so they may appear in keys and errors.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from typing import Any, NamedTuple

import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry

from jobs.keys import ThrottleKeys, throttle_keys
from jobs.priority import current_priority
from jobs.throttle import (
    DEFAULT_FLIGHT_MS,
    DEFAULT_LIMITS,
    MARGIN_TTL_MS,
    MAX_PAUSE_MS,
    PRIORITY_WEIGHT_MS,
    RateLimit,
    Verdict,
    marker_ttl_ms,
    pause_ms_for,
)
from narrate.errors import ConfigurationError, ThrottleBusyError, ThrottleUnavailableError

__all__ = ["RedisThrottle", "pause_ms_for"]

log = logging.getLogger(__name__)

#: TTLs outlive the last moment a key matters by this much: a key that vanished too early
#: would forget requests (a burst), one that lingers a second costs nothing
TTL_SLACK_MS = 1000
#: random extra sleep per poll, so waiters told the same wait do not all poll in one ms
JITTER_S = 0.005
#: redis-py retries a failed command this often before the throttle reports Redis down:
#: enough to ride out a reconnect, short enough that a task fails fast when Redis is gone
REDIS_RETRIES = 2
REDIS_CONNECT_TIMEOUT_S = 2.0
REDIS_SOCKET_TIMEOUT_S = 5.0

#: the clock of every script, and how it reads the margin (jobs.throttle.margin_of)
_PRELUDE = """
-- Lua prints numbers with 14 digits: pass every time to Redis as an exact integer
local function int(x) return string.format('%.0f', x) end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local function margin_of(key, floor, ceiling)
  local stored = tonumber(redis.call('HGET', key, 'ms') or floor)
  return math.min(math.max(stored, floor), ceiling)
end
"""

# KEYS: jobs.keys.ThrottleKeys, in order
# ARGV: ticket, priority class, requests, window ms, margin floor ms, margin ceiling ms,
#       lease ms, poll ms, flight ms, max pause ms, ttl slack ms, priority weight,
#       marker ttl ms
# returns {wait ms (0 = granted), server now ms, verdict (jobs.throttle.Verdict)}
ACQUIRE_LUA = (
    _PRELUDE
    + """
local grants, wait, lease, blocked, marker, flight, margin_key =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local ticket = ARGV[1]
local priority = tonumber(ARGV[2])
local requests = tonumber(ARGV[3])
local window_ms = tonumber(ARGV[4])
local floor_ms = tonumber(ARGV[5])
local ceiling_ms = tonumber(ARGV[6])
local lease_ms = tonumber(ARGV[7])
local poll_ms = tonumber(ARGV[8])
local flight_ms = tonumber(ARGV[9])
local max_pause_ms = tonumber(ARGV[10])
local slack_ms = tonumber(ARGV[11])
local weight = tonumber(ARGV[12])
local marker_ms = tonumber(ARGV[13])

-- waiters that stopped polling block nobody once their lease ran out
local expired = redis.call('ZRANGEBYSCORE', lease, '-inf', int(now))
for _, gone in ipairs(expired) do
  redis.call('ZREM', wait, gone)
end
redis.call('ZREMRANGEBYSCORE', lease, '-inf', int(now))

-- enter or refresh; NX keeps the first enqueue time, so a class stays first come first served
redis.call('ZADD', wait, 'NX', int(priority * weight + now), ticket)
redis.call('ZADD', lease, int(now + lease_ms), ticket)
redis.call('PEXPIRE', wait, int(lease_ms + slack_ms))
redis.call('PEXPIRE', lease, int(lease_ms + slack_ms))

-- requests never settled (their worker died) count as settled when their flight ran out
local landed = redis.call('ZRANGEBYSCORE', flight, '-inf', int(now), 'WITHSCORES')
for i = 1, #landed, 2 do
  redis.call('ZADD', grants, landed[i + 1], landed[i])
end
redis.call('ZREMRANGEBYSCORE', flight, '-inf', int(now))

local span_ms = window_ms + margin_of(margin_key, floor_ms, ceiling_ms)
-- keep the log for the widest margin: a margin widened later still sees every stamp
redis.call('ZREMRANGEBYSCORE', grants, '-inf', int(now - window_ms - ceiling_ms))

-- no marker: the keys were lost (or the account idled past its TTL), and the log may lack
-- requests of the last span; hold everyone until they are surely out of the provider's window
if redis.call('EXISTS', marker) == 0 then
  local held = tonumber(redis.call('GET', blocked) or '0')
  if now + span_ms > held then
    redis.call('SET', blocked, int(now + span_ms), 'PX', int(span_ms))
  end
end
redis.call('SET', marker, int(now), 'PX', int(marker_ms))

local blocked_until = tonumber(redis.call('GET', blocked) or '0')
if blocked_until > now then
  return {math.min(blocked_until - now, max_pause_ms), now, 1}
end
local since = '(' .. int(now - span_ms)
local settled = redis.call('ZCOUNT', grants, since, '+inf')
local count = settled + redis.call('ZCARD', flight)
local free = requests - count
local rank = redis.call('ZRANK', wait, ticket)
if rank < free then
  redis.call('ZADD', flight, int(now + flight_ms), ticket)
  redis.call('PEXPIRE', flight, int(flight_ms + slack_ms))
  redis.call('ZREM', wait, ticket)
  redis.call('ZREM', lease, ticket)
  return {0, now, 0}
end
local verdict = 3
if free <= 0 then verdict = 2 end
-- the tickets ahead take permits first: count + rank - requests + 1 stamps must leave;
-- the settled stamps come first in time, the in-flight ones count as now
local index = count - requests + rank
if index >= count then
  return {poll_ms, now, verdict}
end
if index >= settled then
  return {span_ms, now, verdict}
end
local leaving = redis.call('ZRANGEBYSCORE', grants, since, '+inf', 'WITHSCORES', 'LIMIT', index, 1)
return {math.max(tonumber(leaving[2]) + span_ms - now, 1), now, verdict}
"""
)

# KEYS: grants, in_flight, margin
# ARGV: ticket, margin floor ms, narrow ms, clean run, grants ttl ms, margin ttl ms
# returns {server now ms, margin ms (as stored; floor when unset), clean}
SETTLE_LUA = (
    _PRELUDE
    + """
local grants, flight, margin_key = KEYS[1], KEYS[2], KEYS[3]
local ticket = ARGV[1]
local floor_ms = tonumber(ARGV[2])
local narrow_ms = tonumber(ARGV[3])
local clean_run = tonumber(ARGV[4])
redis.call('ZREM', flight, ticket)
redis.call('ZADD', grants, int(now), ticket)
redis.call('PEXPIRE', grants, int(ARGV[5]))
local stored = tonumber(redis.call('HGET', margin_key, 'ms') or floor_ms)
local clean = tonumber(redis.call('HGET', margin_key, 'clean') or '0') + 1
if clean >= clean_run then
  stored = math.max(floor_ms, stored - narrow_ms)
  redis.call('HSET', margin_key, 'ms', int(stored), 'clean', 0)
  clean = 0
else
  redis.call('HSET', margin_key, 'clean', clean)
end
redis.call('PEXPIRE', margin_key, int(ARGV[6]))
return {now, stored, clean}
"""
)

# KEYS: blocked_until, margin
# ARGV: pause ms, max pause ms, margin floor ms, margin ceiling ms, widen ms, margin ttl ms
# returns {blocked until ms (0 = not paused), server now ms, margin ms, margin ms before}
PENALIZE_LUA = (
    _PRELUDE
    + """
local blocked, margin_key = KEYS[1], KEYS[2]
local floor_ms, ceiling_ms = tonumber(ARGV[3]), tonumber(ARGV[4])
local current = tonumber(redis.call('GET', blocked) or '0')
local before = margin_of(margin_key, floor_ms, ceiling_ms)
local margin = before
-- the first throttled answer of a pause widens the margin; the rest are the same episode
if current <= now then
  margin = math.min(margin + tonumber(ARGV[5]), ceiling_ms)
  redis.call('HSET', margin_key, 'ms', int(margin), 'clean', 0)
  redis.call('PEXPIRE', margin_key, int(ARGV[6]))
end
local until_ms = now + math.min(tonumber(ARGV[1]), tonumber(ARGV[2]))
if until_ms <= math.max(current, now) then
  return {current, now, margin, before}
end
redis.call('SET', blocked, int(until_ms), 'PX', int(until_ms - now))
return {until_ms, now, margin, before}
"""
)


class Poll(NamedTuple):
    """The answer to one poll of a ticket."""

    verdict: Verdict
    #: ms the script suggests waiting before the next poll (0 when granted)
    wait_ms: int
    #: the Redis server's clock at this poll (the grant's time when granted)
    now_ms: int


class Granted(NamedTuple):
    """A permit: its ticket (in flight until settled) and the server ms of the grant."""

    ticket: str
    now_ms: int


class Settled(NamedTuple):
    """The answer to a settle: when the request was logged, and the margin after it."""

    now_ms: int
    margin_ms: int
    clean: int


class Penalty(NamedTuple):
    """The answer to a penalize: the pause, and the margin before and after it."""

    #: blocked until this server ms (0: not paused)
    until_ms: int
    now_ms: int
    margin_ms: int
    was_ms: int


def sleep_s(wait_ms: int, poll_s: float, remaining_s: float) -> float:
    """How long to sleep before the next poll.

    Never longer than ``poll_s``: the lease must be refreshed, and a ticket ranked ahead
    may leave. Never past the caller's deadline.
    """
    return max(min(wait_ms / 1000, poll_s, remaining_s), 0.0)


def busy_message(provider: str, limit: RateLimit, waited_s: float, last: Poll) -> tuple[str, str]:
    """``(message, hint)`` of the error raised when no permit came in time."""
    message = f"no permit to call {provider} came within {waited_s:.1f} s"
    if last.verdict is Verdict.PAUSED:
        hint = (
            f"{provider} asked narrate to pause ({last.wait_ms / 1000:.0f} s left); "
            "the segment is retried later"
        )
    else:
        hint = (
            f"many workers wait for {provider}'s {limit.requests} requests per "
            f"{limit.span_s:g} s, or a provider pause just ended; the segment is retried "
            "later (if this is frequent, run fewer synthesis workers)"
        )
    return message, hint


def check_timing(lease_ms: int, poll_s: float, max_wait_s: float) -> None:
    """Refuse settings under which a live waiter would lose its place in the room."""
    if poll_s <= 0 or max_wait_s < 0 or lease_ms < 2 * (poll_s * 1000 + 1000 * JITTER_S):
        raise ConfigurationError(
            f"throttle timing out of range: lease {lease_ms} ms, poll {poll_s} s, "
            f"max wait {max_wait_s} s",
            hint="the lease must outlast two polls, and poll_s must be positive",
        )


def describe(client: redis.Redis) -> str:
    """Where ``client`` points, for error messages (never the password)."""
    kwargs = client.connection_pool.connection_kwargs
    if "path" in kwargs:
        return f"unix:{kwargs['path']}"
    return f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}/{kwargs.get('db', 0)}"


class RedisThrottle:
    """A :class:`~renderer.engine.RequestGate` shared through Redis by every worker."""

    def __init__(
        self,
        client: redis.Redis,
        limits: Mapping[str, RateLimit] = DEFAULT_LIMITS,
        *,
        lease_ms: int = 10_000,
        max_wait_s: float = 300.0,
        poll_s: float = 0.1,
        flight_ms: int = DEFAULT_FLIGHT_MS,
    ) -> None:
        check_timing(lease_ms, poll_s, max_wait_s)
        self.client = client
        self.limits = dict(limits)
        self.lease_ms = lease_ms
        self.max_wait_s = max_wait_s
        self.poll_s = poll_s
        self.flight_ms = flight_ms
        self._acquire = client.register_script(ACQUIRE_LUA)
        self._settle = client.register_script(SETTLE_LUA)
        self._penalize = client.register_script(PENALIZE_LUA)

    @classmethod
    def from_url(cls, url: str, **kw: Any) -> RedisThrottle:
        """A throttle on the Redis at ``url`` (``NARRATE_THROTTLE_URL``, else the broker's).

        Short timeouts and few retries: while Redis is unreachable no permit can be
        granted, and the task should learn it in seconds, not minutes.
        """
        client = redis.Redis.from_url(
            url,
            socket_connect_timeout=REDIS_CONNECT_TIMEOUT_S,
            socket_timeout=REDIS_SOCKET_TIMEOUT_S,
            retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), REDIS_RETRIES),
        )
        return cls(client, **kw)

    def limit_for(self, account: str) -> RateLimit | None:
        """The limit of ``account``'s provider (the part before "/"); None = unlimited."""
        return self.limits.get(account.split("/", 1)[0])

    # --- RequestGate --------------------------------------------------------------------

    @contextmanager
    def permit(self, account: str) -> Iterator[None]:
        """Block until one new request to ``account`` may be sent; the request is in
        flight until the block ends, and logged then (:meth:`settle`)."""
        granted = self.grant(account)
        try:
            yield
        finally:
            if granted is not None:
                self.settle(account, granted.ticket)

    def pause(self, account: str, seconds: float) -> None:
        """The provider answered "throttled": hold every request to ``account`` for
        ``seconds`` (never shortens a pause); the first answer of a pause widens the
        account's margin."""
        limit = self.limit_for(account)
        if limit is None:
            return
        penalty = self.penalize_once(account, pause_ms_for(seconds))
        if penalty.margin_ms != penalty.was_ms:
            log.warning(
                "%s answered 'throttled': every worker pauses %.1f s; the margin over its "
                "window widens from %s to %s ms",
                account.split("/", 1)[0],
                max(penalty.until_ms - penalty.now_ms, 0) / 1000,
                penalty.was_ms,
                penalty.margin_ms,
            )

    def margin_ms(self, account: str) -> int | None:
        """The account's margin now (None: no limit)."""
        limit = self.limit_for(account)
        if limit is None:
            return None
        with self._reporting_redis_errors():
            stored = self.client.hget(throttle_keys(account).margin, "ms")
        value = limit.margin_ms if stored is None else int(stored)
        return min(max(value, limit.margin_ms), limit.ceiling_ms)

    # --- the parts ----------------------------------------------------------------------

    def grant(self, account: str) -> Granted | None:
        """Wait for a permit, in flight until :meth:`settle` (None: no limit, no wait).

        The priority comes from :func:`jobs.priority.current_priority`. The ticket leaves
        the waiting room on every way out; when Redis itself failed that is impossible,
        and its lease drops it instead.
        """
        limit = self.limit_for(account)
        if limit is None:
            return None
        ticket = uuid.uuid4().hex
        priority, _job = current_priority()
        try:
            granted_ms = self._wait_for_grant(account, ticket, int(priority), limit)
        except ThrottleUnavailableError:
            raise
        except BaseException:
            self.leave(account, ticket)
            raise
        return Granted(ticket, granted_ms)

    def settle(self, account: str, ticket: str) -> Settled | None:
        """Log ``ticket``'s request now: the provider has answered it (or it failed).

        Best effort: when Redis fails, the request is done all the same, and its flight
        running out logs it instead (None)."""
        try:
            return self.settle_once(account, ticket)
        except ThrottleUnavailableError as exc:
            log.warning("could not settle a %s request: %s", account.split("/", 1)[0], exc)
            return None

    def acquire_once(self, account: str, ticket: str, priority: int) -> Poll:
        """One atomic poll of ``ticket`` (see the module docstring); no sleeping."""
        limit = self._limit(account)
        keys: ThrottleKeys = throttle_keys(account)
        args: list[str | int] = [
            ticket,
            priority,
            limit.requests,
            limit.window_ms,
            limit.margin_ms,
            limit.ceiling_ms,
            self.lease_ms,
            max(round(self.poll_s * 1000), 1),
            self.flight_ms,
            MAX_PAUSE_MS,
            TTL_SLACK_MS,
            PRIORITY_WEIGHT_MS,
            marker_ttl_ms(limit, self.lease_ms),
        ]
        with self._reporting_redis_errors():
            wait_ms, now_ms, verdict = self._acquire(keys=list(keys), args=args)
        return Poll(Verdict(int(verdict)), int(wait_ms), int(now_ms))

    def settle_once(self, account: str, ticket: str) -> Settled:
        """Run ``settle`` for ``ticket`` (see :func:`jobs.throttle.settle`)."""
        limit = self._limit(account)
        keys = throttle_keys(account)
        args: list[str | int] = [
            ticket,
            limit.margin_ms,
            limit.narrow_ms,
            limit.clean_run,
            limit.window_ms + limit.ceiling_ms + TTL_SLACK_MS,
            MARGIN_TTL_MS,
        ]
        with self._reporting_redis_errors():
            now_ms, margin_ms, clean = self._settle(
                keys=[keys.grants, keys.in_flight, keys.margin], args=args
            )
        return Settled(int(now_ms), int(margin_ms), int(clean))

    def penalize_once(self, account: str, pause_ms: int) -> Penalty:
        """Run ``penalize`` (see :func:`jobs.throttle.penalize`)."""
        limit = self._limit(account)
        keys = throttle_keys(account)
        args: list[str | int] = [
            pause_ms,
            MAX_PAUSE_MS,
            limit.margin_ms,
            limit.ceiling_ms,
            limit.widen_ms,
            MARGIN_TTL_MS,
        ]
        with self._reporting_redis_errors():
            answer = self._penalize(keys=[keys.blocked_until, keys.margin], args=args)
        return Penalty(*(int(value) for value in answer))

    def _limit(self, account: str) -> RateLimit:
        limit = self.limit_for(account)
        if limit is None:
            raise ValueError(f"{account.split('/', 1)[0]} has no rate limit")
        return limit

    def leave(self, account: str, ticket: str) -> None:
        """Take ``ticket`` out of the waiting room; best effort (its lease is the backstop)."""
        keys = throttle_keys(account)
        with suppress(redis.RedisError), self.client.pipeline() as pipe:
            pipe.zrem(keys.wait, ticket)
            pipe.zrem(keys.lease, ticket)
            pipe.execute()

    def _wait_for_grant(self, account: str, ticket: str, priority: int, limit: RateLimit) -> int:
        started = time.monotonic()
        deadline = started + self.max_wait_s
        while True:
            poll = self.acquire_once(account, ticket, priority)
            if poll.verdict is Verdict.GRANTED:
                return poll.now_ms
            remaining_s = deadline - time.monotonic()
            if remaining_s <= 0:
                provider = account.split("/", 1)[0]
                message, hint = busy_message(provider, limit, time.monotonic() - started, poll)
                raise ThrottleBusyError(message, hint=hint)
            pause_s = sleep_s(poll.wait_ms, self.poll_s, remaining_s)
            time.sleep(pause_s + random.uniform(0, JITTER_S))

    @contextmanager
    def _reporting_redis_errors(self) -> Iterator[None]:
        """Fail closed: any Redis trouble becomes the retryable ThrottleUnavailableError."""
        try:
            yield
        except redis.RedisError as exc:
            raise ThrottleUnavailableError(
                f"the provider throttle's Redis at {describe(self.client)} failed: "
                f"{type(exc).__name__}: {exc}",
                hint="check NARRATE_THROTTLE_URL (default: NARRATE_BROKER_URL) and that "
                "Redis runs there; no provider request was sent and the segment is retried",
            ) from None
