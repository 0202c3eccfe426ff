"""The feeder: the pure allocation between jobs, and releases from the database backlog
(SQLite and PostgreSQL, explicit clocks)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select, update

from jobs.claims import claim_segment, complete_segment, defer_segment
from jobs.control import cancel_job
from jobs.db import Factory, transaction
from jobs.feeder import Backlog, allocate, feed
from jobs.models import Job, Segment
from jobs.priority import Priority, Work
from jobs.storage import Storage
from tests.jobs.builders import planned_chapter, store_job
from tests.jobs.rows import segment_ids

URGENT, NORMAL, BULK = Priority.URGENT, Priority.NORMAL, Priority.BULK

# --- allocate (pure) -------------------------------------------------------------------


def backlog(job_id: str, priority: Priority, ready: int, inflight: int = 0) -> Backlog:
    return Backlog(job_id, priority, ready, inflight)


def test_allocate_serves_the_classes_in_strict_order() -> None:
    backlogs = [backlog("u", URGENT, 2), backlog("n", NORMAL, 5), backlog("b", BULK, 5)]
    assert allocate(1, backlogs, job_cap=10) == {"u": 1}
    assert allocate(4, backlogs, job_cap=10) == {"u": 2, "n": 2}
    assert allocate(10, backlogs, job_cap=10) == {"u": 2, "n": 5, "b": 3}
    # the order of the list does not matter between classes
    assert allocate(4, backlogs[::-1], job_cap=10) == {"u": 2, "n": 2}


def test_allocate_goes_round_robin_within_a_class() -> None:
    bulk = [backlog("a", BULK, 10), backlog("b", BULK, 10)]
    assert allocate(6, bulk, job_cap=10) == {"a": 3, "b": 3}
    # an odd one goes to the job listed first (the oldest)
    assert allocate(5, bulk, job_cap=10) == {"a": 3, "b": 2}
    three = [*bulk, backlog("c", BULK, 1)]
    assert allocate(7, three, job_cap=10) == {"a": 3, "b": 3, "c": 1}


def test_allocate_holds_each_job_to_its_cap() -> None:
    backlogs = [backlog("busy", NORMAL, 10, inflight=3), backlog("idle", NORMAL, 10)]
    assert allocate(8, backlogs, job_cap=4) == {"busy": 1, "idle": 4}
    # a capped urgent job leaves the budget to the classes below it
    capped = [backlog("u", URGENT, 10, inflight=4), backlog("b", BULK, 10)]
    assert allocate(3, capped, job_cap=4) == {"b": 3}
    over = [backlog("u", URGENT, 10, inflight=9)]
    assert allocate(3, over, job_cap=4) == {}


def test_allocate_with_no_budget_or_nothing_ready_releases_nothing() -> None:
    backlogs = [backlog("a", URGENT, 3), backlog("b", BULK, 3)]
    assert allocate(0, backlogs, job_cap=10) == {}
    assert allocate(-2, backlogs, job_cap=10) == {}
    assert allocate(5, [], job_cap=10) == {}
    idle = [backlog("empty", URGENT, 0), backlog("full", BULK, 2)]
    assert allocate(5, idle, job_cap=10) == {"full": 2}


@given(
    budget=st.integers(-2, 40),
    cap=st.integers(0, 8),
    jobs=st.lists(
        st.tuples(st.sampled_from(list(Priority)), st.integers(0, 12), st.integers(0, 10)),
        max_size=8,
    ),
)
def test_allocate_invariants(budget: int, cap: int, jobs: list[tuple[Priority, int, int]]) -> None:
    backlogs = [backlog(f"j{n}", p, ready, inflight) for n, (p, ready, inflight) in enumerate(jobs)]
    shares = allocate(budget, backlogs, cap)
    room = {b.job_id: min(b.ready, max(0, cap - b.inflight)) for b in backlogs}
    assert all(0 < n <= room[job_id] for job_id, n in shares.items())
    assert sum(shares.values()) == min(max(budget, 0), sum(room.values()))
    for low in backlogs:  # a class gets something only when every higher class is full
        if shares.get(low.job_id):
            assert all(
                shares.get(high.job_id, 0) == room[high.job_id]
                for high in backlogs
                if high.priority < low.priority
            )
    for priority in Priority:  # within a class, permits level the jobs' loads (water-filling):
        # a job got a permit only while its load was no higher than any job still with room
        group = [b for b in backlogs if b.priority == priority]
        load = {b.job_id: b.inflight + shares.get(b.job_id, 0) for b in group}
        unfilled = [load[b.job_id] for b in group if shares.get(b.job_id, 0) < room[b.job_id]]
        if unfilled:
            assert all(load[b.job_id] <= min(unfilled) + 1 for b in group if b.job_id in shares)


# --- feed (database) -------------------------------------------------------------------


def make_job(
    factory: Factory,
    storage: Storage,
    tmp_path: Path,
    chapters: Sequence[int],
    priority: Priority = NORMAL,
    *,
    distributed: bool = True,
) -> str:
    """A stub-engine job with ``chapters[i]`` segments in chapter ``i + 1`` (by default
    a job for the workers, as ``narrate submit`` makes)."""
    plan = [
        planned_chapter(number, [f"Words {number} {i}." for i in range(count)])
        for number, count in enumerate(chapters, start=1)
    ]
    return store_job(factory, storage, tmp_path, plan, priority=priority, distributed=distributed)


def segments(factory: Factory, ids: Sequence[int]) -> list[tuple[str, int | None]]:
    """``(status, queued_at_ms)`` of each segment, in the order given."""
    with transaction(factory) as session:
        rows = {s.id: (s.status, s.queued_at_ms) for s in session.scalars(select(Segment))}
    return [rows[i] for i in ids]


def inflight(factory: Factory) -> int:
    with transaction(factory) as session:
        count = session.scalar(
            select(func.count())
            .select_from(Segment)
            .where(Segment.status.in_(["queued", "running"]))
        )
    return int(count or 0)


def per_job(factory: Factory, released: Sequence[Work]) -> Counter[str]:
    with transaction(factory) as session:
        owner = {sid: jid for sid, jid in session.execute(select(Segment.id, Segment.job_id))}
    return Counter(owner[work.item_id] for work in released)


def feed_now(
    factory: Factory, now_ms: int, max_inflight: int, job_inflight: int = 100
) -> list[Work]:
    return feed(factory, now_ms, max_inflight=max_inflight, job_inflight=job_inflight)


def test_feed_queues_segments_in_reading_order_and_says_their_priority(
    factory: Factory, storage: Storage, tmp_path: Path
) -> None:
    job_id = make_job(factory, storage, tmp_path, [2, 2])
    ids = segment_ids(factory, job_id)
    assert feed_now(factory, 5_000, max_inflight=3) == [Work(i, NORMAL) for i in ids[:3]]
    assert segments(factory, ids) == [("queued", 5_000)] * 3 + [("pending", None)]
    assert feed_now(factory, 6_000, max_inflight=3) == []  # the budget is used up
    assert feed_now(factory, 7_000, max_inflight=10) == [Work(ids[3], NORMAL)]
    assert segments(factory, ids)[3] == ("queued", 7_000)
    assert segments(factory, ids)[0] == ("queued", 5_000)  # not sent twice
    assert feed_now(factory, 8_000, max_inflight=10) == []


def test_feed_keeps_segments_in_flight_under_max_inflight_across_jobs(
    factory: Factory, storage: Storage, tmp_path: Path
) -> None:
    first = make_job(factory, storage, tmp_path, [4])
    second = make_job(factory, storage, tmp_path, [4])
    running = segment_ids(factory, first)[0]
    assert claim_segment(factory, running, 1_000, 60_000) is not None
    released = feed_now(factory, 1_000, max_inflight=4)
    assert len(released) == 3 and inflight(factory) == 4
    assert per_job(factory, released).keys() == {first, second}
    assert feed_now(factory, 1_100, max_inflight=4) == []
    complete_segment(factory, running, 1_200, reused=False, billed_chars=None)
    assert len(feed_now(factory, 1_300, max_inflight=4)) == 1
    assert inflight(factory) == 4


def test_feed_holds_each_job_to_job_inflight(
    factory: Factory, storage: Storage, tmp_path: Path
) -> None:
    first = make_job(factory, storage, tmp_path, [5])
    second = make_job(factory, storage, tmp_path, [5])
    assert claim_segment(factory, segment_ids(factory, first)[0], 1_000, 60_000) is not None
    released = feed_now(factory, 1_000, max_inflight=100, job_inflight=2)
    assert per_job(factory, released) == {first: 1, second: 2}


def test_feed_releases_an_urgent_job_before_an_older_bulk_job(
    factory: Factory, storage: Storage, tmp_path: Path
) -> None:
    bulk = make_job(factory, storage, tmp_path, [4], BULK)
    normal = make_job(factory, storage, tmp_path, [2], NORMAL)
    urgent = make_job(factory, storage, tmp_path, [2], URGENT)
    released = feed_now(factory, 1_000, max_inflight=3)
    assert released == [
        *[Work(i, URGENT) for i in segment_ids(factory, urgent)],
        Work(segment_ids(factory, normal)[0], NORMAL),
    ]
    released = feed_now(factory, 2_000, max_inflight=6)
    assert released == [
        Work(segment_ids(factory, normal)[1], NORMAL),
        *[Work(i, BULK) for i in segment_ids(factory, bulk)[:2]],
    ]


def test_two_bulk_jobs_share_the_budget_evenly(
    factory: Factory, storage: Storage, tmp_path: Path
) -> None:
    first = make_job(factory, storage, tmp_path, [3, 3], BULK)
    second = make_job(factory, storage, tmp_path, [6], BULK)
    assert per_job(factory, feed_now(factory, 1_000, max_inflight=4)) == {first: 2, second: 2}
    assert per_job(factory, feed_now(factory, 2_000, max_inflight=8)) == {first: 2, second: 2}
    assert segments(factory, segment_ids(factory, first))[:4] == (
        [("queued", 1_000)] * 2 + [("queued", 2_000)] * 2
    )


def test_feed_never_releases_a_segment_before_its_not_before_time(
    factory: Factory, storage: Storage, tmp_path: Path
) -> None:
    job_id = make_job(factory, storage, tmp_path, [2])
    waiting, other = segment_ids(factory, job_id)
    claim = claim_segment(factory, waiting, 1_000, 60_000)
    assert claim is not None
    defer_segment(factory, claim, "timeout", 10_000)
    assert feed_now(factory, 2_000, max_inflight=10) == [Work(other, NORMAL)]
    assert feed_now(factory, 9_999, max_inflight=10) == []
    assert segments(factory, [waiting]) == [("pending", None)]
    assert feed_now(factory, 10_000, max_inflight=10) == [Work(waiting, NORMAL)]
    assert segments(factory, [waiting]) == [("queued", 10_000)]


def test_feed_skips_jobs_that_are_final_or_cancelled(
    factory: Factory, storage: Storage, tmp_path: Path
) -> None:
    cancelled = make_job(factory, storage, tmp_path, [2])
    cancel_job(factory, cancelled, 500)
    finals = {status: make_job(factory, storage, tmp_path, [2]) for status in ("failed", "done")}
    with transaction(factory) as session:
        for status, job_id in finals.items():
            session.execute(update(Job).where(Job.id == job_id).values(status=status))
    assert feed_now(factory, 1_000, max_inflight=10) == []
    live = make_job(factory, storage, tmp_path, [1])
    assert feed_now(factory, 1_000, max_inflight=10) == [
        Work(segment_ids(factory, live)[0], NORMAL)
    ]
    for job_id in finals.values():
        assert segments(factory, segment_ids(factory, job_id)) == [("pending", None)] * 2
    assert segments(factory, segment_ids(factory, cancelled)) == [("cancelled", None)] * 2


def test_concurrent_feeds_release_each_segment_once_and_respect_max_inflight(
    factory: Factory, storage: Storage, tmp_path: Path
) -> None:
    job_id = make_job(factory, storage, tmp_path, [60])
    for round_ in range(15):
        barrier = threading.Barrier(4)

        def one_feed(now: int = 1_000 + round_, start: threading.Barrier = barrier) -> list[Work]:
            start.wait()
            return feed_now(factory, now, max_inflight=4)

        with ThreadPoolExecutor(4) as pool:
            results = [f.result() for f in [pool.submit(one_feed) for _ in range(4)]]
        released = [work.item_id for result in results for work in result]
        assert len(released) == len(set(released)), f"round {round_}: a segment sent twice"
        assert inflight(factory) <= 4, f"round {round_}: {inflight(factory)} in flight"
        with transaction(factory) as session:  # the workers finish them
            session.execute(
                update(Segment)
                .where(Segment.job_id == job_id, Segment.status == "queued")
                .values(status="done")
            )


def test_two_jobs_of_a_class_keep_equal_shares_when_permits_come_one_at_a_time() -> None:
    """In steady state each finished segment frees one permit: it must not always go to
    the older job (which would starve the younger until the older ends)."""
    inflight = {"old": 16, "young": 16}
    released = {"old": 0, "young": 0}
    for step in range(40):
        inflight["old" if step % 2 else "young"] -= 1  # completions alternate
        backlogs = [backlog(j, Priority.BULK, 1000, n) for j, n in inflight.items()]
        for job_id, count in allocate(1, backlogs, 32).items():
            inflight[job_id] += count
            released[job_id] += count
    assert abs(released["old"] - released["young"]) <= 1
    assert abs(inflight["old"] - inflight["young"]) <= 1


def test_feed_leaves_the_jobs_of_embedded_renders_alone(
    factory: Factory, storage: Storage, tmp_path: Path
) -> None:
    """``narrate render`` on the cluster's database runs its own job: the workers must not
    take its segments, and its segments in flight take none of the workers' slots."""
    embedded = make_job(factory, storage, tmp_path, [3], distributed=False)
    local = segment_ids(factory, embedded)
    assert claim_segment(factory, local[0], 1_000, 60_000) is not None  # its own process
    submitted = make_job(factory, storage, tmp_path, [2])
    released = feed(factory, 2_000, max_inflight=2, job_inflight=10)
    assert [work.item_id for work in released] == segment_ids(factory, submitted)
    with transaction(factory) as session:
        statuses = [session.get_one(Segment, sid).status for sid in local]
    assert statuses == ["running", "pending", "pending"]
