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
from dataclasses import dataclass, field, replace
from itertools import pairwise
from typing import Any

import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

import jobs.throttle_redis as throttle_redis
from jobs.keys import throttle_keys, throttle_pattern
from jobs.priority import Priority, using_priority
from jobs.throttle import (
    DEFAULT_FLIGHT_MS,
    MARGIN_TTL_MS,
    MAX_PAUSE_MS,
    RateLimit,
    Room,
    Verdict,
    admit,
    forget,
    land,
    margin_of,
    marker_ttl_ms,
    penalize,
    settle,
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


def test_model_counts_requests_in_flight_and_logs_them_when_settled() -> None:
    room = in_use()
    for index, ticket in enumerate("abc"):
        room, verdict, wait = admit(room, ticket, 1, 1000 + index, LIMIT, lease_ms=500, poll_ms=50)
        assert (verdict, wait) == (Verdict.GRANTED, 0)
    assert room.in_flight == {t: 1000 + i + DEFAULT_FLIGHT_MS for i, t in enumerate("abc")}
    assert room.grants == {}
    room, verdict, wait = admit(room, "d", 1, 1100, LIMIT, lease_ms=500, poll_ms=50)
    assert (verdict, wait) == (Verdict.FULL, 1200)  # in flight counts as "now"
    for ticket, answered_ms in zip("abc", (1150, 1160, 1400), strict=True):
        room = settle(room, ticket, answered_ms, LIMIT)
    assert room.grants == {"a": 1150, "b": 1160, "c": 1400} and room.in_flight == {}
    room, verdict, wait = admit(room, "d", 1, 1300, LIMIT, lease_ms=500, poll_ms=50)
    assert (verdict, wait) == (Verdict.FULL, 1150 + 1200 - 1300)  # a span after the settle
    room, verdict, _ = admit(room, "d", 1, 2350, LIMIT, lease_ms=500, poll_ms=50)
    assert verdict is Verdict.GRANTED and set(room.in_flight) == {"d"}
    assert room.waiting == {} and room.leases == {}


def test_model_lands_a_request_never_settled_when_its_flight_runs_out() -> None:
    room, _, _ = admit(in_use(), "a", 1, 1000, LIMIT, lease_ms=500, poll_ms=50, flight_ms=300)
    assert land(room, 1299).in_flight == {"a": 1300}
    assert land(room, 1300).grants == {"a": 1300} and land(room, 1300).in_flight == {}
    one = RateLimit(requests=1, window_ms=100, margin_ms=0)
    room, _, _ = admit(in_use(), "a", 1, 1000, one, lease_ms=500, poll_ms=50, flight_ms=300)
    _, verdict, _ = admit(room, "b", 1, 1350, one, lease_ms=500, poll_ms=50, flight_ms=300)
    assert verdict is Verdict.FULL  # landed at 1300: a window after that
    _, verdict, _ = admit(room, "b", 1, 1400, one, lease_ms=500, poll_ms=50, flight_ms=300)
    assert verdict is Verdict.GRANTED


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


def test_model_pause_moves_forward_only_is_capped_and_widens_once_per_pause() -> None:
    room = penalize(in_use(), 500, 1000, LIMIT)
    assert room.blocked_until_ms == 1500 and margin_of(room, LIMIT) == 200 + LIMIT.widen_ms
    again = penalize(room, 100, 1000, LIMIT)
    assert again == room  # never shortened, and the same pause: not widened again
    capped = penalize(room, 10**9, 1000, LIMIT)
    assert capped.blocked_until_ms == 1000 + MAX_PAUSE_MS and capped.margin_ms == room.margin_ms
    _, verdict, wait = admit(room, "a", 0, 1200, LIMIT, lease_ms=500, poll_ms=50)
    assert (verdict, wait) == (Verdict.PAUSED, 300)
    later = penalize(room, 500, 1600, LIMIT)  # a new pause: widened again
    assert margin_of(later, LIMIT) == 200 + 2 * LIMIT.widen_ms and later.clean == 0
    top = in_use(margin_ms=LIMIT.ceiling_ms - 1)
    assert margin_of(penalize(top, 500, 0, LIMIT), LIMIT) == LIMIT.ceiling_ms


def test_model_widened_margin_spaces_grants_and_a_clean_run_narrows_it() -> None:
    limit = RateLimit(1, window_ms=100, margin_ms=10, widen_ms=40, narrow_ms=15, clean_run=3)
    room = penalize(in_use(), 0, 0, limit)  # a throttled answer asking for no pause
    assert margin_of(room, limit) == 50 and room.blocked_until_ms == 0
    room = settle(replace(room, in_flight={"a": 99}), "a", 1000, limit)
    _, verdict, wait = admit(room, "b", 1, 1100, limit, lease_ms=500, poll_ms=20)
    assert (verdict, wait) == (Verdict.FULL, 50)  # window + the widened margin
    margins = []
    for step in range(8):
        room = settle(room, f"s{step}", 2000 + step, limit)
        margins.append((room.margin_ms, room.clean))
    # the first settle was clean #1; every third narrows by 15, never below the floor
    assert margins == [(50, 2), (35, 0), (35, 1), (35, 2), (20, 0), (20, 1), (20, 2), (10, 0)]
    assert margin_of(Room(margin_ms=10**6), limit) == limit.ceiling_ms  # a smaller ceiling now


def test_model_waits_a_span_after_the_marker_is_lost() -> None:
    span_ms = LIMIT.window_ms + LIMIT.margin_ms
    room = in_use()
    for index, ticket in enumerate("abc"):  # the limit is used up right before the loss
        room, verdict, _ = admit(room, ticket, 1, 1000 + index, LIMIT, lease_ms=500, poll_ms=50)
        assert verdict is Verdict.GRANTED
        room = settle(room, ticket, 1003, LIMIT)
    # Redis restarts without persistence: every key is gone, the three requests too
    room, verdict, wait = admit(Room(), "d", 1, 1010, LIMIT, lease_ms=500, poll_ms=50)
    assert (verdict, wait) == (Verdict.PAUSED, span_ms)
    assert room.marker_until_ms == 1010 + marker_ttl_ms(LIMIT, 500)
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
    paused = penalize(Room(), 5000, 1000, LIMIT)
    room, verdict, wait = admit(paused, "a", 1, 1010, LIMIT, lease_ms=500, poll_ms=50)
    assert (verdict, wait, room.blocked_until_ms) == (Verdict.PAUSED, 4990, 6000)


def test_model_waits_a_span_after_an_idle_period_past_the_marker_ttl() -> None:
    ttl_ms = marker_ttl_ms(LIMIT, 500)
    room, verdict, _ = admit(in_use(), "a", 1, 1000, LIMIT, lease_ms=500, poll_ms=50)
    assert verdict is Verdict.GRANTED
    _, verdict, _ = admit(room, "b", 1, 1000 + ttl_ms, LIMIT, lease_ms=500, poll_ms=50)
    assert verdict is Verdict.GRANTED  # the marker's last ms (Redis expires it after)
    _, verdict, _ = admit(room, "b", 1, 1001 + ttl_ms, LIMIT, lease_ms=500, poll_ms=50)
    assert verdict is Verdict.PAUSED


@dataclass(frozen=True)
class Client:
    """One simulated worker: when it asks, its class, and what happens to its request."""

    at_ms: int
    priority: int
    #: polls once, then dies while waiting (never granted)
    vanishes: bool
    #: ms from its grant to the provider's answer (its settle); None: dies in flight
    answer_ms: int | None
    #: where in [grant, answer] the provider counts the request (0..1)
    counted_at: float


@dataclass
class Simulated:
    """One run of the model with clients that poll as :class:`RedisThrottle` does."""

    grants: list[tuple[int, int, str]]  # (time ms, event index, ticket)
    refusals: list[tuple[int, str, Verdict]]  # (event index, ticket, why)
    entered: dict[str, int]  # ticket -> event index of its first poll
    places: dict[str, tuple[int, str]]  # ticket -> (wait score, ticket): its rank order
    classes: dict[str, int]
    live: set[str]  # tickets whose client polls until granted
    #: ticket -> (granted ms, latest ms the provider may count it: settle or flight's end)
    flights: dict[str, tuple[int, int]] = field(default_factory=dict)
    losses: list[int] = field(default_factory=list)  # event indexes where every key was lost
    lost_ms: list[int] = field(default_factory=list)  # ... and their times
    unmarked: list[int] = field(default_factory=list)  # ms of polls that found no marker
    margins: list[int] = field(default_factory=list)  # the margin at every poll


FLIGHT_MS = 400


def simulate(
    clients: list[Client],
    pauses: list[tuple[int, int]],
    limit: RateLimit,
    poll_ms: int,
    losses: tuple[int, ...] = (),
) -> Simulated:
    """Clients arrive, poll until granted (a vanishing one polls once, then dies), and
    settle when the provider answers (one dying in flight never does).

    A live client polls again after ``min(suggested wait, poll)``, well within its lease.
    The run starts on an account in use; at each of ``losses`` (ms) every key is lost.
    """
    order = sorted(clients, key=lambda client: client.at_ms)
    names = [f"t{index:03d}" for index in range(len(order))]
    by_name = dict(zip(names, order, strict=True))
    classes = {name: client.priority for name, client in by_name.items()}
    live = {name for name, client in by_name.items() if not client.vanishes}
    queue = [(client.at_ms, index, name) for index, (name, client) in enumerate(by_name.items())]
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
            room = penalize(room, int(who.removeprefix("pause:")), now, limit)
            continue
        if who.startswith("settle:"):
            ticket = who.removeprefix("settle:")
            room = settle(room, ticket, now, limit)
            run.flights[ticket] = (run.flights[ticket][0], now)
            continue
        if who == "lose":
            room = Room()
            run.losses.append(event)
            run.lost_ms.append(now)
            continue
        if who not in run.entered:
            run.entered[who] = event
            run.places[who] = (wait_score(classes[who], now), who)
        if room.marker_until_ms is None or room.marker_until_ms < now:
            run.unmarked.append(now)
        room, verdict, wait = admit(
            room,
            who,
            classes[who],
            now,
            limit,
            lease_ms=3 * poll_ms,
            poll_ms=poll_ms,
            flight_ms=FLIGHT_MS,
        )
        run.margins.append(margin_of(room, limit))
        if verdict is Verdict.GRANTED:
            run.grants.append((now, event, who))
            answer_ms = by_name[who].answer_ms
            # a client that dies in flight: the provider may count it until the flight's end
            run.flights[who] = (now, now + (FLIGHT_MS if answer_ms is None else answer_ms))
            if answer_ms is not None:
                tiebreak += 1
                heapq.heappush(queue, (now + answer_ms, tiebreak, f"settle:{who}"))
            continue
        run.refusals.append((event, who, verdict))
        if who in live:
            tiebreak += 1
            heapq.heappush(queue, (now + max(min(wait, poll_ms), 1), tiebreak, who))
    raise AssertionError("the simulation did not settle")


def over_the_limit(flights: dict[str, tuple[int, int]], requests: int, window_ms: int) -> list[str]:
    """Requests that could be counted with ``requests`` others in one provider window.

    Each request may reach the provider anywhere between its grant and its settle; ``j``
    is at risk when ``requests`` requests granted no later than it may be counted less
    than a window before j's grant (their latest moments are the ``requests`` largest).
    """
    found = []
    for ticket, (granted, _) in flights.items():
        latest = sorted(
            (until for other, (at, until) in flights.items() if other != ticket and at <= granted),
            reverse=True,
        )
        if len(latest) >= requests and granted - latest[requests - 1] < window_ms:
            found.append(ticket)
    return found


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


clients = st.builds(
    Client,
    at_ms=st.integers(0, 1500),
    priority=st.integers(0, 2),
    vanishes=st.booleans(),
    answer_ms=st.one_of(st.none(), st.integers(0, 150)),
    counted_at=st.floats(0, 1),
)


@settings(max_examples=150, deadline=None)
@given(
    arrivals=st.lists(clients, min_size=1, max_size=14),
    pauses=st.lists(st.tuples(st.integers(0, 1500), st.integers(0, 400)), max_size=2),
    losses=st.lists(st.integers(0, 1500), max_size=2),
    requests=st.integers(1, 4),
    window_ms=st.integers(20, 300),
    margin_ms=st.integers(0, 100),
    widen_ms=st.integers(0, 100),
    poll_ms=st.integers(10, 80),
)
def test_model_properties(
    arrivals: list[Client],
    pauses: list[tuple[int, int]],
    losses: list[int],
    requests: int,
    window_ms: int,
    margin_ms: int,
    widen_ms: int,
    poll_ms: int,
) -> None:
    limit = RateLimit(requests, window_ms, margin_ms, widen_ms=widen_ms, narrow_ms=7, clean_run=3)
    run = simulate(arrivals, pauses, limit, poll_ms, tuple(losses))
    # every client that keeps polling gets its permit
    assert {ticket for _, _, ticket in run.grants} >= run.live
    # wherever between its grant and its answer the provider counts each request (late
    # stamps of a busy provider included), it never counts more than `requests` in a
    # window; a request in flight while the keys were lost is not checked (its settle
    # logs it again, but a request granted before that cannot see it)
    checked = {
        ticket: (granted, until)
        for ticket, (granted, until) in run.flights.items()
        if not any(granted <= lost < until for lost in run.lost_ms)
    }
    assert over_the_limit(checked, requests, window_ms) == []
    # the same with one arrival per request where the client put it
    ordered = sorted(arrivals, key=lambda client: client.at_ms)  # as simulate names them
    stamps = sorted(
        granted + (until - granted) * ordered[int(ticket.removeprefix("t"))].counted_at
        for ticket, (granted, until) in checked.items()
    )
    for first, later in zip(stamps, stamps[requests:], strict=False):
        assert later - first >= window_ms - 1e-6
    # no grant within one span of a poll that found the marker missing
    grant_ms = [at for at, _, _ in run.grants]
    for unmarked in run.unmarked:
        assert not any(unmarked <= at < unmarked + window_ms + margin_ms for at in grant_ms)
    # the margin stays within its floor and ceiling
    assert all(margin_ms <= margin <= limit.ceiling_ms for margin in run.margins)
    # a ticket refused for want of a permit was never passed by one ranked behind it
    # (a bulk ticket never passes an earlier urgent one, nor a later one an earlier one)
    for refused, ticket, verdict in run.refusals:
        if verdict is not Verdict.PAUSED:
            assert passed(run, refused, ticket) == [], ticket


def test_the_property_check_sees_what_grant_stamps_alone_let_through() -> None:
    # the old log: stamped at the grants, the fourth a window + margin later; but the
    # provider answered the first three late, so it may have counted them that late
    flights = {"a": (0, 150), "b": (0, 120), "c": (0, 110), "d": (1100, 1101)}
    assert over_the_limit(flights, 3, 1000) == ["d"]
    # the model: the fourth waits a span after the third-latest answer
    limit, room = RateLimit(3, 1000, 100), in_use()
    for ticket in "abc":
        room, _, _ = admit(room, ticket, 1, 0, limit, lease_ms=500, poll_ms=50)
    for ticket, answered_ms in (("a", 150), ("b", 120), ("c", 110)):
        room = settle(room, ticket, answered_ms, limit)
    _, verdict, wait = admit(room, "d", 1, 1100, limit, lease_ms=500, poll_ms=50)
    assert (verdict, wait) == (Verdict.FULL, 110)


def test_an_urgent_ticket_is_never_passed_by_bulk_tickets_in_the_model() -> None:
    # bulk clients arrive first and saturate; an urgent one arrives in the middle
    arrivals = [Client(at, 2, False, 2, 0.5) for at in range(0, 100, 10)]
    arrivals.append(Client(150, 0, False, 2, 0.5))
    run = simulate(arrivals, [], RateLimit(2, 100, 20), poll_ms=20)
    urgent = next(t for t, c in run.classes.items() if c == 0)
    order = [ticket for _, _, ticket in sorted(run.grants)]
    urgent_at = next(at for at, _, t in run.grants if t == urgent)
    assert urgent_at <= 244 + 20  # the first permit that frees after it arrived
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
    assert keys.in_flight == "narrate:throttle:{cosyvoice/ab12}:in_flight"
    assert keys.margin == "narrate:throttle:{cosyvoice/ab12}:margin"
    assert all("{cosyvoice/ab12}" in key for key in keys)
    with pytest.raises(ValueError):
        throttle_keys("cosyvoice/{x}")


# --- the Lua scripts against the model ----------------------------------------------------

REPLAY_LIMIT = RateLimit(
    requests=2, window_ms=40, margin_ms=10, max_margin_ms=60, widen_ms=20, narrow_ms=5, clean_run=4
)
REPLAY_FLIGHT_MS = 150


@pytest.mark.parametrize("seed", [1, 2])
def test_the_scripts_answer_as_the_model_does(client: redis.Redis, account: str, seed: int) -> None:
    """Six workers poll, leave, settle (one dies in flight) and get throttled answers on
    real Redis, replayed through the model; the account starts unused, and loses every
    key once mid-run (a restart without persistence)."""
    rng = random.Random(seed)
    limit = REPLAY_LIMIT
    throttle = throttle_for(client, limit, lease_ms=60, poll_s=0.02, flight_ms=REPLAY_FLIGHT_MS)
    keys = throttle_keys(account)
    classes = [rng.randrange(3) for _ in range(6)]
    tickets = [f"{rng.randrange(16**8):08x}" for _ in range(6)]
    flying: set[int] = set()  # workers whose request is in flight
    trace: list[tuple[str, str, int, int, int, tuple[int, ...]]] = []
    for step in range(260):
        worker = rng.randrange(6)
        roll = rng.random()
        if step == 130:
            client.delete(*keys)
            trace.append(("restart", "", 0, 0, 0, ()))
        elif roll < 0.06 and worker not in flying:
            throttle.leave(account, tickets[worker])
            trace.append(("leave", tickets[worker], 0, 0, 0, ()))
        elif roll < 0.10:
            pause_ms = rng.randrange(0, 80)
            penalty = throttle.penalize_once(account, pause_ms)
            answer = (penalty.until_ms, penalty.margin_ms, penalty.was_ms)
            trace.append(("pause", "", 0, pause_ms, penalty.now_ms, answer))
        elif worker in flying:
            if worker == 0:  # dies in flight: its request lands when its flight runs out
                continue
            settled = throttle.settle_once(account, tickets[worker])
            answer = (settled.margin_ms, settled.clean)
            trace.append(("settle", tickets[worker], 0, 0, settled.now_ms, answer))
            flying.discard(worker)
            tickets[worker] = f"{rng.randrange(16**8):08x}"
        else:
            poll = throttle.acquire_once(account, tickets[worker], classes[worker])
            answer = (poll.verdict, poll.wait_ms)
            trace.append(("poll", tickets[worker], classes[worker], 0, poll.now_ms, answer))
            if poll.verdict is Verdict.GRANTED:
                flying.add(worker)
        time.sleep(rng.uniform(0, 0.012))
    time.sleep(0.2)  # every lease and flight runs out; one last poll must clear them all
    poll = throttle.acquire_once(account, "last", 2)
    trace.append(("poll", "last", 2, 0, poll.now_ms, (poll.verdict, poll.wait_ms)))
    room, seen, unmarked, margins = Room(), set(), 0, []
    for kind, ticket, priority, pause_ms, now_ms, answer in trace:
        if kind == "restart":
            room = Room()
        elif kind == "leave":
            room = forget(room, ticket)
        elif kind == "pause":
            was = margin_of(room, limit)
            room = penalize(room, pause_ms, now_ms, limit)
            assert answer[1:] == (margin_of(room, limit), was)
            assert (answer[0] > now_ms) == (room.blocked_until_ms > now_ms)
            if answer[0] > now_ms:
                assert answer[0] == room.blocked_until_ms
        elif kind == "settle":
            room = settle(room, ticket, now_ms, limit)
            stored = limit.margin_ms if room.margin_ms is None else room.margin_ms
            assert answer == (stored, room.clean), (kind, ticket, now_ms)
        else:
            unmarked += room.marker_until_ms is None or room.marker_until_ms < now_ms
            room, verdict, wait_ms = admit(
                room,
                ticket,
                priority,
                now_ms,
                limit,
                lease_ms=60,
                poll_ms=20,
                flight_ms=REPLAY_FLIGHT_MS,
            )
            assert answer == (verdict, wait_ms), (kind, ticket, now_ms)
            seen.add(verdict)
        margins.append(margin_of(room, limit))
    assert seen == set(Verdict)  # the run went through every branch of the scripts
    assert unmarked >= 2  # the first poll and the first after the restart found no marker
    steps = list(pairwise(margins))
    assert any(b > a for a, b in steps) and any(b < a for a, b in steps)  # widened, narrowed
    stored = {
        part: {m.decode(): int(s) for m, s in client.zrange(key, 0, -1, withscores=True)}
        for part, key in (
            ("grants", keys.grants),
            ("wait", keys.wait),
            ("lease", keys.lease),
            ("in_flight", keys.in_flight),
        )
    }
    assert stored == {
        "grants": room.grants,
        "wait": room.waiting,
        "lease": room.leases,
        "in_flight": room.in_flight,
    }
    margin = client.hgetall(keys.margin)
    assert int(margin.get(b"clean", 0)) == room.clean
    assert int(margin.get(b"ms", limit.margin_ms)) == margin_of(room, limit)
    marked_ms = int(client.get(keys.marker) or 0)  # the last poll's time
    ttl_ms = marker_ttl_ms(limit, 60)
    assert (marked_ms, room.marker_until_ms) == (poll.now_ms, poll.now_ms + ttl_ms)


def test_several_grants_in_one_millisecond_are_all_counted(
    client: redis.Redis, account: str
) -> None:
    limit = RateLimit(requests=20, window_ms=1000, margin_ms=0)
    throttle = throttle_for(client, limit)
    keys = throttle_keys(account)
    mark_in_use(client, account)
    script = client.register_script(throttle_redis.ACQUIRE_LUA)
    with client.pipeline(transaction=False) as pipe:
        for _ in range(21):
            args = [uuid.uuid4().hex, 1, 20, 1000, 0, 400, 10_000, 100, 60_000, MAX_PAUSE_MS]
            args += [1000, 10**13, 60_000]
            script(keys=list(keys), args=args, client=pipe)
        answers = pipe.execute()
    verdicts = [Verdict(int(answer[2])) for answer in answers]
    assert verdicts == [Verdict.GRANTED] * 20 + [Verdict.FULL]
    assert len({int(answer[1]) for answer in answers[:20]}) < 20  # some shared a ms
    assert client.zcard(keys.in_flight) == 20
    assert throttle.acquire_once(account, "late", 1).verdict is Verdict.FULL


# --- the client on real Redis -------------------------------------------------------------

#: a span long enough that a scheduling stall of a loaded machine costs little throughput
SHARED = RateLimit(requests=3, window_ms=400, margin_ms=25)


def _request_many(account: str, count: int) -> list[tuple[int, int]]:
    """``count`` requests through the throttle, each answered 0-60 ms after its grant:
    (grant, settle) in server ms."""
    throttle = RedisThrottle.from_url(REDIS_URL, limits={"cosyvoice": SHARED}, poll_s=0.05)
    rng = random.Random()
    flights = []
    for _ in range(count):
        granted = throttle.grant(account)
        assert granted is not None
        time.sleep(rng.uniform(0, 0.06))  # the round trip to the provider's answer
        settled = throttle.settle(account, granted.ticket)
        assert settled is not None
        flights.append((granted.now_ms, settled.now_ms))
    return flights


def test_processes_sharing_the_throttle_stay_under_the_limit_at_full_speed(
    client: redis.Redis, account: str
) -> None:
    mark_in_use(client, account)
    with multiprocessing.Pool(4) as pool:
        results = pool.starmap(_request_many, [(account, 6)] * 4)
    flights = {f"r{index}": flight for index, flight in enumerate(f for r in results for f in r)}
    assert len(flights) == 24
    # wherever between grant and answer the provider counts each, never 4 in a window
    assert over_the_limit(flights, SHARED.requests, SHARED.window_ms) == []
    # throughput after the first burst, against the ideal: `requests` per span + flight
    grants = sorted(granted for granted, _ in flights.values())
    mean_flight_ms = sum(until - at for at, until in flights.values()) / len(flights)
    ideal = SHARED.requests / (SHARED.window_ms + SHARED.margin_ms + mean_flight_ms)
    rate = (len(grants) - SHARED.requests) / (grants[-1] - grants[0])
    assert rate >= 0.85 * ideal


def test_a_request_in_flight_holds_its_place_and_is_logged_when_answered(
    client: redis.Redis, account: str
) -> None:
    limit = RateLimit(requests=1, window_ms=200, margin_ms=50)
    throttle = throttle_for(client, limit, poll_s=0.05)
    keys = throttle_keys(account)
    mark_in_use(client, account)
    with throttle.permit(account):
        assert client.zcard(keys.in_flight) == 1 and client.zcard(keys.grants) == 0
        assert throttle.acquire_once(account, "other", 1).verdict is Verdict.FULL
        time.sleep(0.4)  # a provider that answers late: longer than the whole span
    throttle.leave(account, "other")
    assert client.zcard(keys.in_flight) == 0
    (_, settled_ms), *_ = client.zrange(keys.grants, 0, -1, withscores=True)
    granted = throttle.grant(account)
    assert granted is not None
    assert granted.now_ms >= settled_ms + 250  # a span after the answer, not the grant


def _die_in_flight(account: str) -> None:
    throttle = RedisThrottle.from_url(
        REDIS_URL, limits={"cosyvoice": RateLimit(1, 100, 0)}, flight_ms=800
    )
    with throttle.permit(account):
        time.sleep(60)  # killed here


def test_a_worker_killed_in_flight_holds_its_place_until_its_flight_runs_out(
    client: redis.Redis, account: str
) -> None:
    limit = RateLimit(requests=1, window_ms=100, margin_ms=0)
    throttle = throttle_for(client, limit, poll_s=0.05)
    keys = throttle_keys(account)
    mark_in_use(client, account)
    worker = multiprocessing.Process(target=_die_in_flight, args=(account,))
    worker.start()
    wait_for(lambda: client.zcard(keys.in_flight) == 1)
    worker.kill()
    worker.join(5)
    ((_, lands_ms),) = client.zrange(keys.in_flight, 0, -1, withscores=True)
    granted = throttle.grant(account)
    assert granted is not None
    assert lands_ms + 100 <= granted.now_ms < lands_ms + 100 + 1000  # a window after, no more


def test_a_throttled_answer_widens_the_margin_for_every_worker_and_a_clean_run_narrows_it(
    client: redis.Redis, account: str
) -> None:
    limit = RateLimit(
        requests=10, window_ms=100, margin_ms=20, widen_ms=50, narrow_ms=30, clean_run=3
    )
    one, other = throttle_for(client, limit, poll_s=0.02), throttle_for(client, limit)
    keys = throttle_keys(account)
    mark_in_use(client, account)
    assert one.margin_ms(account) == 20 and client.exists(keys.margin) == 0
    one.pause(account, 0.2)
    other.pause(account, 0.2)  # another worker's throttled answer, in the same pause
    assert other.margin_ms(account) == 70 and client.hget(keys.margin, "ms") == b"70"
    assert 0 < client.pttl(keys.margin) <= MARGIN_TTL_MS
    end_pause(client, account)
    other.pause(account, 0)  # a new episode (no pause asked for): wider again
    assert one.margin_ms(account) == 120
    for _ in range(3):
        with one.permit(account):
            pass
    assert other.margin_ms(account) == 90  # three clean settles: one step narrower
    for _ in range(9):
        with other.permit(account):
            pass
    assert one.margin_ms(account) == 20  # never below the floor
    assert throttle_for(client, replace(limit, max_margin_ms=60)).margin_ms(account) == 20


def _wait_as_urgent(account: str, limit: RateLimit) -> None:
    throttle = RedisThrottle.from_url(
        REDIS_URL, limits={"cosyvoice": limit}, lease_ms=600, poll_s=0.05
    )
    with using_priority(Priority.URGENT), throttle.permit(account):
        pass


def wait_for(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def requests_in_threads(throttle: RedisThrottle, account: str, count: int) -> list[int]:
    """``count`` threads each take a permit and settle it at once: the grants' server ms."""
    stamps: list[int] = []

    def request() -> None:
        granted = throttle.grant(account)
        assert granted is not None
        stamps.append(granted.now_ms)
        throttle.settle(account, granted.ticket)

    workers = [threading.Thread(target=request) for _ in range(count)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(10)
    return stamps


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
        granted = throttle.grant(account)
    assert granted is not None
    assert expiry_ms <= granted.now_ms < expiry_ms + 1000  # it waited for the lease, no longer
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
    started = time.monotonic()
    stamps = requests_in_threads(throttle, account, 3)
    assert len(stamps) == 3
    assert all(stamp >= blocked_until_ms for stamp in stamps)
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
            grant = throttle.grant(account)
        assert grant is not None
        granted[name] = grant.now_ms
        throttle.settle(account, grant.ticket)

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
    limit = RateLimit(requests=1, window_ms=300, margin_ms=100, max_margin_ms=200)
    throttle = throttle_for(client, limit, lease_ms=2000, flight_ms=5000)
    keys = throttle_keys(account)
    with throttle.permit(account):  # a fresh account: the first poll creates the marker
        pass
    granted = throttle.grant(account)  # in flight
    marker_ms = marker_ttl_ms(limit, 2000)
    assert marker_ms > 2 * (500 + 2000)  # comfortably longer than the longest span + lease
    client.pexpire(keys.marker, 100)
    assert throttle.acquire_once(account, "waiting", 1).verdict is Verdict.FULL
    assert client.pttl(keys.marker) > marker_ms - 1000  # every poll refreshes it
    throttle.pause(account, 5)
    bounds = {
        keys.grants: 300 + 200 + throttle_redis.TTL_SLACK_MS,
        keys.wait: 2000 + throttle_redis.TTL_SLACK_MS,
        keys.lease: 2000 + throttle_redis.TTL_SLACK_MS,
        keys.blocked_until: 5000,
        keys.marker: marker_ms,
        keys.in_flight: 5000 + throttle_redis.TTL_SLACK_MS,
        keys.margin: MARGIN_TTL_MS,
    }
    for key, bound_ms in bounds.items():
        assert 0 < client.pttl(key) <= bound_ms, key
    assert sorted(k.decode() for k in client.scan_iter(match=throttle_pattern(account))) == sorted(
        keys
    )
    assert granted is not None


def test_keys_lost_after_requests_let_no_burst_through(client: redis.Redis, account: str) -> None:
    """Redis restarts without persistence right after the limit was used up: the requests
    after it, counted with those before, stay within the limit in every window + margin."""
    limit = RateLimit(requests=3, window_ms=300, margin_ms=100)
    span_ms = limit.window_ms + limit.margin_ms
    throttle = throttle_for(client, limit, poll_s=0.05)
    mark_in_use(client, account)  # an account in use: its grants come at once
    before = []
    for _ in range(limit.requests):
        granted = throttle.grant(account)
        assert granted is not None
        settled = throttle.settle(account, granted.ticket)
        assert settled is not None
        before.append(settled.now_ms)
    client.delete(*throttle_keys(account))  # the restart: every key is gone
    seconds, micros = client.time()
    restart_ms = seconds * 1000 + micros // 1000
    after = requests_in_threads(throttle, account, 6)
    assert len(after) == 6
    assert max(before) <= restart_ms  # the full log was lost
    assert min(after) >= restart_ms + span_ms
    stamps = sorted(before + after)
    for first, later in zip(stamps, stamps[limit.requests :], strict=False):
        assert later - first >= limit.window_ms  # what the provider sees: never a 4th
    assert min(after) < restart_ms + span_ms + 500  # and no longer wait


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


def test_a_settle_that_fails_is_not_an_error(
    client: redis.Redis, account: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    throttle = throttle_for(client, LIMIT)
    mark_in_use(client, account)
    down = RedisThrottle.from_url(f"redis://127.0.0.1:{closed_port()}/0")
    monkeypatch.setattr(throttle, "_settle", down._settle)  # Redis goes away mid-request
    with throttle.permit(account):
        pass  # the request is done: no error, its flight will land it
    assert client.zcard(throttle_keys(account).in_flight) == 1


def test_no_permit_within_max_wait_is_a_busy_error(client: redis.Redis, account: str) -> None:
    throttle = throttle_for(client, LIMIT, max_wait_s=0.3, poll_s=0.05)
    throttle.pause(account, 5)
    started = time.monotonic()
    with pytest.raises(ThrottleBusyError) as caught:
        throttle.grant(account)
    assert 0.3 <= time.monotonic() - started < 2
    assert "cosyvoice" in caught.value.message and "pause" in (caught.value.hint or "")
    assert client.zcard(throttle_keys(account).wait) == 0  # the ticket left the room


def test_an_interrupted_waiter_leaves_the_room_and_a_failed_request_is_settled(
    client: redis.Redis, account: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    throttle = throttle_for(client, LIMIT, poll_s=0.05)
    keys = throttle_keys(account)
    mark_in_use(client, account)
    with pytest.raises(RuntimeError), throttle.permit(account):
        raise RuntimeError("the provider request failed")
    assert client.zcard(keys.grants) == 1  # the permit was spent all the same, and settled
    assert client.zcard(keys.in_flight) == 0
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
    assert throttle.margin_ms("espeak/local") is None
    assert time.monotonic() - started < 1.0
