"""The feeder: releases pending segments from the database backlog to the broker.

The backlog of every job stays in the database; only what workers can start soon is
sent to the broker (at most ``max_inflight`` segments queued or running, all jobs
together, and ``job_inflight`` for one job). Each release goes to the classes in order
(urgent, then normal, then bulk) and, within a class, round-robin over its jobs, so two
bulk books progress side by side and a bulletin submitted behind 10,000 bulk segments
is the next thing released. Keeping broker queues short is also what makes a broker
restart cheap: the reaper re-sends the few queued messages it lost.

It runs from beat every couple of seconds and right after each segment finishes
(a nudge), from any worker; on PostgreSQL an advisory lock lets one feeder run at a time
(another that finds it taken does nothing), and ``SKIP LOCKED`` keeps claims disjoint.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, func, select, text, update
from sqlalchemy.orm import Session

from jobs.db import Factory, transaction
from jobs.models import JOB_FINAL, Job, Segment, SegmentStatus
from jobs.priority import Priority, Work

#: pg_advisory lock id of the feeder ("narrate" feeder)
_LOCK_ID = 0x6E61_7272_6174_6501
_INFLIGHT = (SegmentStatus.QUEUED, SegmentStatus.RUNNING)


@dataclass(frozen=True)
class Backlog:
    """One job's share of the decision."""

    job_id: str
    priority: Priority
    #: segments due for release now
    ready: int
    #: segments queued or running now
    inflight: int


def allocate(budget: int, backlogs: Sequence[Backlog], job_cap: int) -> dict[str, int]:
    """How many segments each job may release now (pure).

    Strict priority between classes. Within a class, each permit goes to the job with the
    fewest segments in flight so far (counting this allocation), the oldest first on a
    tie: jobs that share a class converge to equal shares of the workers even when each
    call hands out a single permit. Each job holds at most ``job_cap`` in flight.
    """
    shares: dict[str, int] = {}
    for priority in Priority:
        group = [b for b in backlogs if b.priority == priority]
        load = {b.job_id: b.inflight for b in group}
        room = {b.job_id: min(b.ready, max(0, job_cap - b.inflight)) for b in group}
        while budget > 0:
            open_ = [b for b in group if room[b.job_id] > 0]
            if not open_:
                break
            chosen = min(open_, key=lambda b: load[b.job_id])  # stable: oldest on a tie
            room[chosen.job_id] -= 1
            load[chosen.job_id] += 1
            shares[chosen.job_id] = shares.get(chosen.job_id, 0) + 1
            budget -= 1
    return shares


def feed(factory: Factory, now_ms: int, *, max_inflight: int, job_inflight: int) -> list[Work]:
    """Mark the next segments queued and return them, to send."""
    with transaction(factory) as session:
        if not _lock(session):
            return []
        inflight = session.scalar(
            select(func.count())
            .select_from(Segment)
            .join(Job, Job.id == Segment.job_id)
            .where(Segment.status.in_(_INFLIGHT), _ours())
        )
        budget = max_inflight - (inflight or 0)
        if budget <= 0:
            return []
        backlogs = _backlogs(session, now_ms)
        shares = allocate(budget, backlogs, job_inflight)
        released: list[Work] = []
        for backlog in backlogs:
            count = shares.get(backlog.job_id, 0)
            if count:
                ids = _take(session, backlog.job_id, count, now_ms)
                released += [Work(segment_id, backlog.priority) for segment_id in ids]
        return released


def _ours() -> ColumnElement[bool]:
    """Jobs the workers run: submitted (not embedded renders) and not final. A segment
    left running by a job cancelled meanwhile holds no slot."""
    return Job.distributed.is_(True) & Job.status.not_in(list(JOB_FINAL))


def _lock(session: Session) -> bool:
    """One feeder at a time: PostgreSQL's advisory lock (taken or skipped); on SQLite a
    no-op write takes the database's write lock before anything is read (the driver
    opens a transaction only at the first write, so reads would otherwise race)."""
    if session.get_bind().dialect.name != "postgresql":
        session.execute(update(Segment).where(Segment.id < 0).values(status=Segment.status))
        return True
    return bool(session.scalar(text("SELECT pg_try_advisory_xact_lock(:id)"), {"id": _LOCK_ID}))


def _backlogs(session: Session, now_ms: int) -> list[Backlog]:
    ready = dict(
        session.execute(
            select(Segment.job_id, func.count())
            .where(Segment.status == SegmentStatus.PENDING, Segment.not_before_ms <= now_ms)
            .group_by(Segment.job_id)
        ).all()
    )
    if not ready:
        return []
    inflight = dict(
        session.execute(
            select(Segment.job_id, func.count())
            .where(Segment.status.in_(_INFLIGHT), Segment.job_id.in_(list(ready)))
            .group_by(Segment.job_id)
        ).all()
    )
    jobs = session.execute(
        select(Job.id, Job.priority)
        .where(Job.id.in_(list(ready)), _ours())
        .order_by(Job.priority, Job.created_at, Job.id)
    ).all()
    return [
        Backlog(job_id, Priority(priority), ready[job_id], inflight.get(job_id, 0))
        for job_id, priority in jobs
    ]


def _take(session: Session, job_id: str, count: int, now_ms: int) -> list[int]:
    ids = list(
        session.scalars(
            select(Segment.id)
            .where(
                Segment.job_id == job_id,
                Segment.status == SegmentStatus.PENDING,
                Segment.not_before_ms <= now_ms,
            )
            .order_by(Segment.chapter_id, Segment.index)
            .limit(count)
            .with_for_update(skip_locked=True)
        )
    )
    if not ids:
        return []
    taken = session.scalars(
        update(Segment)
        .where(Segment.id.in_(ids), Segment.status == SegmentStatus.PENDING)
        .values(status=SegmentStatus.QUEUED, queued_at_ms=now_ms)
        .returning(Segment.id)
    )
    return sorted(taken)
