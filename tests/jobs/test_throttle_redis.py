"""The Redis provider throttle: its pure model, the Lua script against the model, and the
client against a real Redis (several processes, leases, pauses, priority, failures).

Every test uses its own account id, so its keys are its own, and deletes them afterwards.
Time-based asserts compare stamps of the Redis server's clock where they can (exact), and
leave generous slack where they measure wall time (2 cores, tests run with -n 2).
"""

from __future__ import annotations

import heapq
import multiprocessing
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

import jobs.throttle_redis as throttle_redis
from jobs.keys import throttle_keys, throttle_pattern
from jobs.priority import Priority, using_priority
from jobs.throttle import (
    MAX_PAUSE_MS,
    RateLimit,
    Room,
    Verdict,
    admit,
    forget,
    marker_ttl_ms,
    penalize,
    wait_score,
)
from jobs.throttle_redis import RedisThrottle, busy_message, pause_ms_for, sleep_s
from narrate.errors import ThrottleBusyError, ThrottleUnavailableError
from tests.conftest import need

#: database 8: no other test flushes it (and these tests only delete their own keys)
REDIS_URL = os.environ.get("NARRATE_TEST_REDIS_URL", "redis://127.0.0.1:6379") + "/8"
LIMIT = RateLimit(requests=3, window_ms=1000, margin_ms=200)


# --- fixtures -------------------------------------------------------------------------


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        connection.ping()
    except redis.RedisError as exc:
        need(False, f"Redis is not reachable at {REDIS_URL}: {exc}")
    yield connection
    connection.close()


@pytest.fixture
def account(client: redis.Redis) -> Iterator[str]:
    """A fresh account id; its keys are deleted afterwards."""
    name = f"cosyvoice/test-{uuid.uuid4().hex}"
    yield name
    for key in client.scan_iter(match=throttle_pattern(name)):
        client.delete(key)


def throttle_for(client: redis.Redis, limit: RateLimit, **kw: Any) -> RedisThrottle:
    return RedisThrottle(client, {"cosyvoice": limit}, **kw)


def mark_in_use(client: redis.Redis, account: str) -> None:
    """Create the marker as the polls of an account in use leave it.

    For the tests about something else: a fresh account's first poll finds no marker and
    waits a span, as after lost data; the tests of that wait leave the marker out.
    """
    client.set(throttle_keys(account).marker, 0, px=60_000)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- the pure model -------------------------------------------------------------------


def in_use(**fields: Any) -> Room:
    """A room whose marker is in place: no data was lost (a fresh ``Room()`` is lost)."""
    return Room(marker_until_ms=10**12, **fields)


def test_model_grants_up_to_the_limit_then_names_the_wait() -> None:
    room = in_use()
    for index, ticket in enumerate("abc"):
        room, verdict, wait = admit(room, ticket, 1, 1000 + index, LIMIT, lease_ms=500, poll_ms=50)
        assert (verdict, wait) == (Verdict.GRANTED, 0)
    room, verdict, wait = admit(room, "d", 1, 1100, LIMIT, lease_ms=500, poll_ms=50)
    assert verdict is Verdict.FULL and wait == 1000 + 1200 - 1100  # the grant at 1000 leaves
    room, verdict, _ = admit(room, "d", 1, 2200, LIMIT, lease_ms=500, poll_ms=50)
    assert verdict is Verdict.GRANTED and set(room.grants) == {"b", "c", "d"}
    assert room.waiting == {} and room.leases == {}


def test_model_keeps_the_first_enqueue_time_and_drops_expired_leases() -> None:
    full = in_use(grants={"x": 0, "y": 0, "z": 0})
    room, _, _ = admit(full, "a", 2, 10, LIMIT, lease_ms=100, poll_ms=50)
    room, _, _ = admit(room, "a", 2, 60, LIMIT, lease_ms=100, poll_ms=50)
    assert room.waiting == {"a": wait_score(2, 10)} and room.leases == {"a": 160}
    room, _, _ = admit(room, "b", 0, 200, LIMIT, lease_ms=100, poll_ms=50)
    assert set(room.waiting) == {"b"}  # "a" stopped polling; its lease ran out at 160


def test_model_queues_behind_tickets_ranked_ahead() -> None:
    room = in_use(grants={"x": 0, "y": 0}, waiting={"u": wait_score(0, 5)}, leases={"u": 900})
    room, verdict, wait = admit(room, "b", 2, 10, LIMIT, lease_ms=500, poll_ms=40)
    assert (verdict, wait) == (Verdict.QUEUED, 1200 - 10)  # the free permit is "u"'s
    room, verdict, _ = admit(room, "u", 0, 11, LIMIT, lease_ms=500, poll_ms=40)
    assert verdict is Verdict.GRANTED


def test_model_pause_moves_forward_only_and_is_capped() -> None:
    room = penalize(in_use(), 500, 1000)
    assert room.blocked_until_ms == 1500
    assert penalize(room, 100, 1000).blocked_until_ms == 1500  # never shortened
    assert penalize(room, 10**9, 1000).blocked_until_ms == 1000 + MAX_PAUSE_MS
    _, verdict, wait = admit(room, "a", 0, 1200, LIMIT, lease_ms=500, poll_ms=50)
    assert (verdict, wait) == (Verdict.PAUSED, 300)


def test_model_waits_a_span_after_the_marker_is_lost() -> None:
    span_ms = LIMIT.window_ms + LIMIT.margin_ms
    room = in_use()
    for index, ticket in enumerate("abc"):  # the limit is used up right before the loss
        room, verdict, _ = admit(room, ticket, 1, 1000 + index, LIMIT, lease_ms=500, poll_ms=50)
        assert verdict is Verdict.GRANTED
    # Redis restarts without persistence: every key is gone, the three grants too
    room, verdict, wait = admit(Room(), "d", 1, 1010, LIMIT, lease_ms=500, poll_ms=50)
    assert (verdict, wait) == (Verdict.PAUSED, span_ms)
    assert room.marker_until_ms == 1010 + marker_ttl_ms(span_ms, 500)
    # the waiters keep polling: nothing within one span of the poll that found no marker
    granted = []
    for now in range(1011, 1010 + 2 * span_ms, 7):
        for ticket in "defgh":
            if ticket not in granted:
                room, verdict, _ = admit(room, ticket, 1, now, LIMIT, lease_ms=500, poll_ms=50)
                assert verdict is Verdict.PAUSED or now >= 1010 + span_ms
                if verdict is Verdict.GRANTED:
                    granted.append(ticket)
    assert granted == ["d", "e", "f"]  # then `requests` at once, in their order
    # a longer pause is kept, never shortened
    paused = penalize(Room(), 5000, 1000)
    room, verdict, wait = admit(paused, "a", 1, 1010, LIMIT, lease_ms=500, poll_ms=50)
    assert (verdict, wait, room.blocked_until_ms) == (Verdict.PAUSED, 4990, 6000)


def test_model_waits_a_span_after_an_idle_period_past_the_marker_ttl() -> None:
    ttl_ms = marker_ttl_ms(LIMIT.window_ms + LIMIT.margin_ms, 500)
    room, verdict, _ = admit(in_use(), "a", 1, 1000, LIMIT, lease_ms=500, poll_ms=50)
    assert verdict is Verdict.GRANTED
    _, verdict, _ = admit(room, "b", 1, 1000 + ttl_ms, LIMIT, lease_ms=500, poll_ms=50)
    assert verdict is Verdict.GRANTED  # the marker's last ms (Redis expires it after)
    _, verdict, _ = admit(room, "b", 1, 1001 + ttl_ms, LIMIT, lease_ms=500, poll_ms=50)
    assert verdict is Verdict.PAUSED


@dataclass
class Simulated:
    """One run of the model with clients that poll as :class:`RedisThrottle` does."""

    grants: list[tuple[int, int, str]]  # (time ms, event index, ticket)
    refusals: list[tuple[int, str, Verdict]]  # (event index, ticket, why)
    entered: dict[str, int]  # ticket -> event index of its first poll
    places: dict[str, tuple[int, str]]  # ticket -> (wait score, ticket): its rank order
    classes: dict[str, int]
    live: set[str]  # tickets whose client polls until granted
    losses: list[int] = field(default_factory=list)  # event indexes where every key was lost
    unmarked: list[int] = field(default_factory=list)  # ms of polls that found no marker


def simulate(
    arrivals: list[tuple[int, int, bool]],
    pauses: list[tuple[int, int]],
    limit: RateLimit,
    poll_ms: int,
    losses: tuple[int, ...] = (),
) -> Simulated:
    """Clients arrive at (ms, class, vanishes); a vanishing one polls once, then dies.

    A live client polls again after ``min(suggested wait, poll)``, well within its lease.
    The run starts on an account in use; at each of ``losses`` (ms) every key is lost.
    """
    order = sorted(arrivals, key=lambda arrival: arrival[0])
    names = [f"t{index:03d}" for index in range(len(order))]
    classes = {name: priority for name, (_, priority, _) in zip(names, order, strict=True)}
    live = {name for name, (_, _, vanishes) in zip(names, order, strict=True) if not vanishes}
    queue = [
        (at, index, name) for index, (name, (at, _, _)) in enumerate(zip(names, order, strict=True))
    ]
    queue += [(at, len(order) + i, f"pause:{ms}") for i, (at, ms) in enumerate(pauses)]
    queue += [(at, len(queue) + i, "lose") for i, at in enumerate(losses)]
    heapq.heapify(queue)
    run = Simulated([], [], {}, {}, classes, live)
    room, tiebreak = in_use(), len(queue)
    for event in range(20_000):  # a correct run needs a few thousand
        if not queue:
            return run
        now, _, who = heapq.heappop(queue)
        if who.startswith("pause:"):
            room = penalize(room, int(who.removeprefix("pause:")), now)
            continue
        if who == "lose":
            room = Room()
            run.losses.append(event)
            continue
        if who not in run.entered:
            run.entered[who] = event
            run.places[who] = (wait_score(classes[who], now), who)
        if room.marker_until_ms is None or room.marker_until_ms < now:
            run.unmarked.append(now)
        room, verdict, wait = admit(
            room, who, classes[who], now, limit, lease_ms=3 * poll_ms, poll_ms=poll_ms
        )
        if verdict is Verdict.GRANTED:
            run.grants.append((now, event, who))
            continue
        run.refusals.append((event, who, verdict))
        if who in live:
            tiebreak += 1
            heapq.heappush(queue, (now + max(min(wait, poll_ms), 1), tiebreak, who))
    raise AssertionError("the simulation did not settle")


def passed(run: Simulated, refused: int, ticket: str) -> list[str]:
    """Tickets ranked behind ``ticket`` that took a permit while it waited for one.

    A grant to a ticket behind it leaves a permit for every ticket ahead of it; only a
    ticket of a more urgent class that arrives later may take that permit first. Lost keys
    lose the order too: a ticket that waited across a loss is not checked.
    """
    if any(run.entered[ticket] < lost < refused for lost in run.losses):
        return []
    found = []
    for _, granted, other in run.grants:
        if not run.entered[ticket] < granted < refused or run.places[other] < run.places[ticket]:
            continue
        displaced = any(
            run.classes[newcomer] < run.classes[ticket] and granted < entered < refused
            for newcomer, entered in run.entered.items()
        )
        if not displaced:
            found.append(other)
    return found


@settings(max_examples=150, deadline=None)
@given(
    arrivals=st.lists(
        st.tuples(st.integers(0, 1500), st.integers(0, 2), st.booleans()),
        min_size=1,
        max_size=14,
    ),
    pauses=st.lists(st.tuples(st.integers(0, 1500), st.integers(1, 400)), max_size=2),
    losses=st.lists(st.integers(0, 1500), max_size=2),
    requests=st.integers(1, 4),
    window_ms=st.integers(20, 300),
    margin_ms=st.integers(0, 100),
    poll_ms=st.integers(10, 80),
)
def test_model_properties(
    arrivals: list[tuple[int, int, bool]],
    pauses: list[tuple[int, int]],
    losses: list[int],
    requests: int,
    window_ms: int,
    margin_ms: int,
    poll_ms: int,
) -> None:
    limit = RateLimit(requests, window_ms, margin_ms)
    run = simulate(arrivals, pauses, limit, poll_ms, tuple(losses))
    # every client that keeps polling gets its permit
    assert {ticket for _, _, ticket in run.grants} >= run.live
    # never more than `requests` grants in any window + margin, across lost keys too: the
    # provider saw the grants the lost log forgot
    stamps = sorted(at for at, _, _ in run.grants)
    for first, later in zip(stamps, stamps[requests:], strict=False):
        assert later - first >= window_ms + margin_ms
    # no grant within one span of a poll that found the marker missing
    for unmarked in run.unmarked:
        assert not any(unmarked <= at < unmarked + window_ms + margin_ms for at in stamps)
    # a ticket refused for want of a permit was never passed by one ranked behind it
    # (a bulk ticket never passes an earlier urgent one, nor a later one an earlier one)
    for refused, ticket, verdict in run.refusals:
        if verdict is not Verdict.PAUSED:
            assert passed(run, refused, ticket) == [], ticket


def test_an_urgent_ticket_is_never_passed_by_bulk_tickets_in_the_model() -> None:
    # bulk clients arrive first and saturate; an urgent one arrives in the middle
    arrivals = [(at, 2, False) for at in range(0, 100, 10)] + [(150, 0, False)]
    run = simulate(arrivals, [], RateLimit(2, 100, 20), poll_ms=20)
    urgent = next(t for t, c in run.classes.items() if c == 0)
    order = [ticket for _, _, ticket in sorted(run.grants)]
    urgent_at = next(at for at, _, t in run.grants if t == urgent)
    assert urgent_at <= 240 + 20  # the first permit that frees after it arrived
    assert order.index(urgent) <= 4


def test_pure_helpers() -> None:
    assert sleep_s(30, 0.1, 10.0) == 0.03
    assert sleep_s(5000, 0.1, 10.0) == 0.1
    assert sleep_s(5000, 0.1, 0.02) == 0.02
    assert pause_ms_for(1.2) == 1200 and pause_ms_for(0.0001) == 1
    assert pause_ms_for(10_000) == MAX_PAUSE_MS and pause_ms_for(float("inf")) == MAX_PAUSE_MS
    assert pause_ms_for(float("nan")) == 0 and pause_ms_for(-3) == 0
    message, hint = busy_message("cosyvoice", LIMIT, 30.0, throttle_redis.Poll(Verdict.FULL, 5, 0))
    assert "cosyvoice" in message and "30.0 s" in message and "workers" in hint
    _, hint = busy_message("cosyvoice", LIMIT, 30.0, throttle_redis.Poll(Verdict.PAUSED, 9000, 0))
    assert "pause" in hint


def test_key_names_share_one_cluster_slot_per_account() -> None:
    keys = throttle_keys("cosyvoice/ab12")
    assert keys.grants == "narrate:throttle:{cosyvoice/ab12}:grants"
    assert keys.blocked_until == "narrate:throttle:{cosyvoice/ab12}:blocked_until"
    assert keys.marker == "narrate:throttle:{cosyvoice/ab12}:marker"
    assert all("{cosyvoice/ab12}" in key for key in keys)
    with pytest.raises(ValueError):
        throttle_keys("cosyvoice/{x}")


# --- the Lua script against the model ---------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2])
def test_the_script_answers_as_the_model_does(client: redis.Redis, account: str, seed: int) -> None:
    """Random polls, departures and pauses on real Redis, replayed through the model; the
    account starts unused, and loses every key once mid-run (a restart without persistence)."""
    rng = random.Random(seed)
    limit = RateLimit(requests=2, window_ms=40, margin_ms=10)
    throttle = throttle_for(client, limit, lease_ms=60, poll_s=0.02)
    keys = throttle_keys(account)
    tickets = {f"{rng.randrange(16**8):08x}": rng.randrange(3) for _ in range(6)}
    trace: list[tuple[str, str, int, int, tuple[int, ...]]] = []
    for step in range(220):
        ticket = rng.choice(list(tickets))
        roll = rng.random()
        if step == 110:
            client.delete(*keys)
            trace.append(("restart", ticket, 0, 0, ()))
        elif roll < 0.08:
            throttle.leave(account, ticket)
            trace.append(("leave", ticket, 0, 0, ()))
        elif roll < 0.12:
            pause_ms = rng.randrange(1, 80)
            until_ms, now_ms = throttle.penalize_once(account, pause_ms)
            trace.append(("pause", ticket, pause_ms, now_ms, (until_ms,)))
        else:
            poll = throttle.acquire_once(account, ticket, tickets[ticket])
            trace.append(("poll", ticket, 0, poll.now_ms, (poll.verdict, poll.wait_ms)))
        time.sleep(rng.uniform(0, 0.012))
    time.sleep(0.1)  # every lease runs out; one last poll must clear them all
    tickets["last"] = 2
    poll = throttle.acquire_once(account, "last", 2)
    trace.append(("poll", "last", 0, poll.now_ms, (poll.verdict, poll.wait_ms)))
    room, seen, unmarked = Room(), set(), 0
    for kind, ticket, pause_ms, now_ms, answer in trace:
        if kind == "restart":
            room = Room()
        elif kind == "leave":
            room = forget(room, ticket)
        elif kind == "pause":
            room = penalize(room, pause_ms, now_ms)
            assert (answer[0] > now_ms) == (room.blocked_until_ms > now_ms)
            if answer[0] > now_ms:
                assert answer[0] == room.blocked_until_ms
        else:
            unmarked += room.marker_until_ms is None or room.marker_until_ms < now_ms
            room, verdict, wait_ms = admit(
                room, ticket, tickets[ticket], now_ms, limit, lease_ms=60, poll_ms=20
            )
            assert answer == (verdict, wait_ms), (kind, ticket, now_ms)
            seen.add(verdict)
    assert seen == set(Verdict)  # the run went through every branch of the script
    assert unmarked >= 2  # the first poll and the first after the restart found no marker
    stored = {
        part: {m.decode(): int(s) for m, s in client.zrange(key, 0, -1, withscores=True)}
        for part, key in (("grants", keys.grants), ("wait", keys.wait), ("lease", keys.lease))
    }
    assert stored == {"grants": room.grants, "wait": room.waiting, "lease": room.leases}
    marked_ms = int(client.get(keys.marker) or 0)  # the last poll's time
    assert (marked_ms, room.marker_until_ms) == (poll.now_ms, poll.now_ms + marker_ttl_ms(50, 60))


def test_several_grants_in_one_millisecond_are_all_logged(
    client: redis.Redis, account: str
) -> None:
    throttle = throttle_for(client, RateLimit(requests=20, window_ms=1000, margin_ms=0))
    keys = throttle_keys(account)
    mark_in_use(client, account)
    script = client.register_script(throttle_redis.ACQUIRE_LUA)
    with client.pipeline(transaction=False) as pipe:
        for _ in range(21):
            args = [uuid.uuid4().hex, 1, 20, 1000, 10_000, 100, MAX_PAUSE_MS, 1000, 10**13, 60_000]
            script(keys=list(keys), args=args, client=pipe)
        answers = pipe.execute()
    verdicts = [Verdict(int(answer[2])) for answer in answers]
    assert verdicts == [Verdict.GRANTED] * 20 + [Verdict.FULL]
    assert len({int(answer[1]) for answer in answers[:20]}) < 20  # some shared a ms
    assert client.zcard(keys.grants) == 20
    assert throttle.acquire_once(account, "late", 1).verdict is Verdict.FULL


# --- the client on real Redis -------------------------------------------------------------

#: a span long enough that a scheduling stall of a loaded machine costs little throughput
SHARED = RateLimit(requests=3, window_ms=400, margin_ms=100)


def _grant_many(account: str, count: int) -> list[int]:
    throttle = RedisThrottle.from_url(REDIS_URL, limits={"cosyvoice": SHARED}, poll_s=0.05)
    return [stamp for _ in range(count) if (stamp := throttle.grant(account)) is not None]


def test_processes_sharing_the_throttle_stay_under_the_limit_at_full_speed(
    client: redis.Redis, account: str
) -> None:
    mark_in_use(client, account)
    with multiprocessing.Pool(4) as pool:
        results = pool.starmap(_grant_many, [(account, 6)] * 4)
    stamps = sorted(stamp for result in results for stamp in result)
    assert len(stamps) == 24
    span_ms = SHARED.window_ms + SHARED.margin_ms
    for first, later in zip(stamps, stamps[SHARED.requests :], strict=False):
        assert later - first >= span_ms  # never a 4th grant within window + margin
    # throughput after the first burst, against the ideal of `requests` per span
    rate = (len(stamps) - SHARED.requests) / (stamps[-1] - stamps[0])
    assert rate >= 0.9 * SHARED.requests / span_ms


def _wait_as_urgent(account: str, limit: RateLimit) -> None:
    throttle = RedisThrottle.from_url(
        REDIS_URL, limits={"cosyvoice": limit}, lease_ms=600, poll_s=0.05
    )
    with using_priority(Priority.URGENT):
        throttle.grant(account)


def wait_for(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def end_pause(client: redis.Redis, account: str) -> None:
    """What the passing of time does to a pause, at once."""
    client.delete(throttle_keys(account).blocked_until)


def test_a_killed_waiter_blocks_nobody_once_its_lease_expires(
    client: redis.Redis, account: str
) -> None:
    limit = RateLimit(requests=1, window_ms=100, margin_ms=0)
    throttle = throttle_for(client, limit, lease_ms=600, poll_s=0.05)
    keys = throttle_keys(account)
    mark_in_use(client, account)
    throttle.pause(account, 30)  # hold the waiter so it is still waiting when killed
    waiter = multiprocessing.Process(target=_wait_as_urgent, args=(account, limit))
    waiter.start()
    wait_for(lambda: client.zcard(keys.wait) == 1)
    waiter.kill()
    waiter.join(5)
    ghost = client.zrange(keys.wait, 0, -1)[0]
    expiry_ms = int(client.zscore(keys.lease, ghost) or 0)
    end_pause(client, account)
    with using_priority(Priority.BULK):
        granted_ms = throttle.grant(account)
    assert granted_ms is not None
    assert expiry_ms <= granted_ms < expiry_ms + 1000  # it waited for the lease, no longer
    assert client.zscore(keys.wait, ghost) is None


def test_a_pause_holds_everyone_is_never_shortened_and_is_capped(
    client: redis.Redis, account: str
) -> None:
    throttle = throttle_for(client, LIMIT, poll_s=0.05)
    keys = throttle_keys(account)
    mark_in_use(client, account)
    throttle.pause(account, 0.6)
    blocked_until_ms = int(client.get(keys.blocked_until) or 0)
    throttle.pause(account, 0.1)
    assert int(client.get(keys.blocked_until) or 0) == blocked_until_ms
    assert 0 < client.pttl(keys.blocked_until) <= 600
    stamps: list[int | None] = []
    workers = [
        threading.Thread(target=lambda: stamps.append(throttle.grant(account))) for _ in range(3)
    ]
    started = time.monotonic()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(10)
    assert len(stamps) == 3
    assert all(stamp is not None and stamp >= blocked_until_ms for stamp in stamps)
    assert time.monotonic() - started < 0.6 + 1.5
    throttle.pause(account, 10_000)  # a provider asking for hours gets MAX_PAUSE_S
    assert MAX_PAUSE_MS - 5000 < client.pttl(keys.blocked_until) <= MAX_PAUSE_MS


def test_an_urgent_ticket_overtakes_waiting_bulk_tickets(client: redis.Redis, account: str) -> None:
    throttle = throttle_for(client, RateLimit(requests=1, window_ms=150, margin_ms=50))
    keys = throttle_keys(account)
    mark_in_use(client, account)
    throttle.pause(account, 30)  # everyone enters the room before any permit is handed out
    granted: dict[str, int] = {}

    def take(name: str, priority: Priority) -> None:
        with using_priority(priority):
            stamp = throttle.grant(account)
        assert stamp is not None
        granted[name] = stamp

    threads = []
    waiters = [("bulk1", Priority.BULK), ("bulk2", Priority.BULK), ("bulk3", Priority.BULK)]
    for index, (name, priority) in enumerate([*waiters, ("urgent", Priority.URGENT)]):
        threads.append(threading.Thread(target=take, args=(name, priority)))
        threads[-1].start()
        wait_for(lambda count=index + 1: client.zcard(keys.wait) == count)
        # the next one enters in a later ms: tickets of one class that entered in the same
        # ms are ordered by their random ids, not by arrival
        time.sleep(0.002)
    end_pause(client, account)
    for thread in threads:
        thread.join(10)
    order = sorted(granted, key=granted.__getitem__)
    assert order == ["urgent", "bulk1", "bulk2", "bulk3"]  # priority, then FIFO


def test_every_key_gets_a_ttl(client: redis.Redis, account: str) -> None:
    limit = RateLimit(requests=1, window_ms=300, margin_ms=100)
    throttle = throttle_for(client, limit, lease_ms=2000)
    keys = throttle_keys(account)
    throttle.grant(account)  # a fresh account: the first poll creates the marker
    marker_ms = marker_ttl_ms(400, 2000)
    assert marker_ms > 2 * (400 + 2000)  # comfortably longer than span + lease
    client.pexpire(keys.marker, 100)
    assert throttle.acquire_once(account, "waiting", 1).verdict is Verdict.FULL
    assert client.pttl(keys.marker) > marker_ms - 1000  # every poll refreshes it
    throttle.pause(account, 5)
    bounds = {
        keys.grants: 400 + throttle_redis.TTL_SLACK_MS,
        keys.wait: 2000 + throttle_redis.TTL_SLACK_MS,
        keys.lease: 2000 + throttle_redis.TTL_SLACK_MS,
        keys.blocked_until: 5000,
        keys.marker: marker_ms,
    }
    for key, bound_ms in bounds.items():
        assert 0 < client.pttl(key) <= bound_ms, key
    assert sorted(k.decode() for k in client.scan_iter(match=throttle_pattern(account))) == sorted(
        keys
    )


def test_keys_lost_after_grants_let_no_burst_through(client: redis.Redis, account: str) -> None:
    """Redis restarts without persistence right after the limit was used up: the grants
    after it, counted with those before, stay within the limit in every window + margin."""
    limit = RateLimit(requests=3, window_ms=300, margin_ms=100)
    span_ms = limit.window_ms + limit.margin_ms
    throttle = throttle_for(client, limit, poll_s=0.05)
    mark_in_use(client, account)  # an account in use: its grants come at once
    before = [throttle.grant(account) for _ in range(limit.requests)]
    client.delete(*throttle_keys(account))  # the restart: every key is gone
    seconds, micros = client.time()
    restart_ms = seconds * 1000 + micros // 1000
    after: list[int | None] = []
    workers = [
        threading.Thread(target=lambda: after.append(throttle.grant(account))) for _ in range(6)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(10)
    assert len(after) == 6 and None not in before + after
    stamps = sorted(stamp for stamp in before + after if stamp is not None)
    assert max(stamps[: limit.requests]) <= restart_ms  # the full log was lost
    assert min(stamps[limit.requests :]) >= restart_ms + span_ms
    for first, later in zip(stamps, stamps[limit.requests :], strict=False):
        assert later - first >= span_ms  # what the provider sees: never a 4th in a span
    assert min(stamps[limit.requests :]) < restart_ms + span_ms + 500  # and no longer wait


def test_a_missing_marker_holds_a_span_but_never_shortens_a_pause(
    client: redis.Redis, account: str
) -> None:
    throttle = throttle_for(client, LIMIT)
    keys = throttle_keys(account)
    poll = throttle.acquire_once(account, "a", 1)  # never used, or idle past the marker TTL
    assert (poll.verdict, poll.wait_ms) == (Verdict.PAUSED, 1200)
    assert int(client.get(keys.blocked_until) or 0) == poll.now_ms + 1200
    assert throttle.acquire_once(account, "a", 1).verdict is Verdict.PAUSED  # marker now set
    throttle.pause(account, 5)
    blocked_until_ms = int(client.get(keys.blocked_until) or 0)
    client.delete(keys.marker)
    poll = throttle.acquire_once(account, "a", 1)
    assert poll.verdict is Verdict.PAUSED and poll.wait_ms > 1200
    assert int(client.get(keys.blocked_until) or 0) == blocked_until_ms


def test_redis_unreachable_fails_closed() -> None:
    throttle = RedisThrottle.from_url(f"redis://127.0.0.1:{closed_port()}/0")
    entered = False
    started = time.monotonic()
    with pytest.raises(ThrottleUnavailableError) as caught, throttle.permit("cosyvoice/acct"):
        entered = True
    assert not entered  # no provider request is made
    assert "NARRATE_BROKER_URL" in str(caught.value)
    assert time.monotonic() - started < 5
    with pytest.raises(ThrottleUnavailableError):
        throttle.pause("cosyvoice/acct", 1.0)


def test_no_permit_within_max_wait_is_a_busy_error(client: redis.Redis, account: str) -> None:
    throttle = throttle_for(client, LIMIT, max_wait_s=0.3, poll_s=0.05)
    throttle.pause(account, 5)
    started = time.monotonic()
    with pytest.raises(ThrottleBusyError) as caught:
        throttle.grant(account)
    assert 0.3 <= time.monotonic() - started < 2
    assert "cosyvoice" in caught.value.message and "pause" in (caught.value.hint or "")
    assert client.zcard(throttle_keys(account).wait) == 0  # the ticket left the room


def test_an_interrupted_waiter_leaves_the_room_and_a_failed_request_keeps_its_grant(
    client: redis.Redis, account: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    throttle = throttle_for(client, LIMIT, poll_s=0.05)
    keys = throttle_keys(account)
    mark_in_use(client, account)
    with pytest.raises(RuntimeError), throttle.permit(account):
        raise RuntimeError("the provider request failed")
    assert client.zcard(keys.grants) == 1  # the permit was spent all the same
    throttle.pause(account, 5)

    def interrupted(_seconds: float) -> None:
        assert client.zcard(keys.wait) == 1
        raise KeyboardInterrupt

    monkeypatch.setattr(throttle_redis.time, "sleep", interrupted)
    with pytest.raises(KeyboardInterrupt), throttle.permit(account):
        pass
    assert client.zcard(keys.wait) == 0 and client.zcard(keys.lease) == 0


def test_accounts_without_a_limit_pass_at_once_without_redis() -> None:
    # a closed port: any round trip would raise ThrottleUnavailableError
    throttle = RedisThrottle.from_url(f"redis://127.0.0.1:{closed_port()}/0")
    started = time.monotonic()
    for _ in range(200):
        with throttle.permit("espeak/local"):
            pass
        throttle.pause("stub/local", 5)
    assert time.monotonic() - started < 1.0
