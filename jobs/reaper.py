"""The reaper: finds work that was claimed but lost, and sends it again.

Run by beat (``narrate.reap``) every ``NARRATE_REAP_INTERVAL_S``, over the jobs the workers
run (``narrate submit``; embedded renders run their own). It repairs, from the database
alone:

* segments ``running`` past their lease: the worker died (``kill -9``, OOM, a lost
  machine) or lost its database connection; they go back to ``queued`` and are sent
  again (a redelivered copy of the old message finds them taken and does nothing); those
  of a job cancelled meanwhile become ``cancelled``;
* segments ``queued`` longer than ``NARRATE_REQUEUE_AFTER_S``: their message was lost
  (a broker restart without persistence, a send that failed) and is sent again;
* stitches likewise: one whose worker stopped renewing its lease, or whose message was
  never taken within ``NARRATE_REQUEUE_AFTER_S``;
* chapters whose segments are all final but whose stitch was never claimed, and jobs
  whose chapters are all final but which were never settled.

Every repair is idempotent, so a duplicate message costs one no-op task at most.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.orm import Session

from jobs.claims import claim_ready_chapters
from jobs.db import Factory, transaction
from jobs.models import JOB_FINAL, Chapter, ChapterStatus, Job, JobStatus, Segment, SegmentStatus
from jobs.priority import Priority, Work
from jobs.settling import settle_job


@dataclass
class Repairs:
    segments: list[Work] = field(default_factory=list)
    stitches: list[Work] = field(default_factory=list)
    settled: list[str] = field(default_factory=list)
    #: segments left running by dead workers of cancelled jobs, now cancelled
    cancelled: int = 0


def reap(factory: Factory, now_ms: int, *, requeue_after_ms: int) -> Repairs:
    repairs = Repairs()
    with transaction(factory) as session:
        repairs.cancelled = _rest_cancelled(session, now_ms)
        repairs.segments = _resend_segments(session, now_ms, requeue_after_ms)
        repairs.stitches = _resend_stitches(session, now_ms, requeue_after_ms)
        open_jobs = session.execute(
            select(Job.id, Job.priority).where(
                Job.distributed.is_(True), Job.status.not_in(list(JOB_FINAL))
            )
        ).all()
    for job_id, priority in open_jobs:
        ready = claim_ready_chapters(factory, job_id, now_ms)
        repairs.stitches += [Work(cid, Priority(priority)) for cid in ready.stitch]
        if settled := ready.settled or settle_job(factory, job_id, now_ms):
            repairs.settled.append(f"{job_id}:{settled}")
    return repairs


def _lapsed(now_ms: int) -> ColumnElement[bool]:
    return (Segment.status == SegmentStatus.RUNNING) & (Segment.lease_until_ms < now_ms)


def _rest_cancelled(session: Session, now_ms: int) -> int:
    cancelled_jobs = select(Job.id).where(
        Job.distributed.is_(True), Job.status == JobStatus.CANCELLED
    )
    result = session.execute(
        update(Segment)
        .where(_lapsed(now_ms), Segment.job_id.in_(cancelled_jobs))
        .values(status=SegmentStatus.CANCELLED, lease_until_ms=None, finished_at_ms=now_ms)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def _resend_segments(session: Session, now_ms: int, requeue_after_ms: int) -> list[Work]:
    stale = _lapsed(now_ms) | (
        (Segment.status == SegmentStatus.QUEUED)
        & (Segment.queued_at_ms < now_ms - requeue_after_ms)
    )
    rows = session.execute(
        select(Segment.id, Job.priority)
        .join(Job, Job.id == Segment.job_id)
        .where(stale, Job.distributed.is_(True), Job.status.not_in(list(JOB_FINAL)))
        .with_for_update(of=Segment, skip_locked=True)
    ).all()
    if not rows:
        return []
    session.execute(
        update(Segment)
        .where(Segment.id.in_([r[0] for r in rows]), stale)
        .values(status=SegmentStatus.QUEUED, queued_at_ms=now_ms)
    )
    return [Work(sid, Priority(p)) for sid, p in rows]


def _resend_stitches(session: Session, now_ms: int, requeue_after_ms: int) -> list[Work]:
    stale = (Chapter.status == ChapterStatus.STITCHING) & (
        (Chapter.stitch_lease_until_ms < now_ms)  # its worker died
        | (
            Chapter.stitch_lease_until_ms.is_(None)  # its message was never taken
            & (Chapter.stitch_enqueued_at_ms < now_ms - requeue_after_ms)
        )
    )
    rows = session.execute(
        select(Chapter.id, Job.priority)
        .join(Job, Job.id == Chapter.job_id)
        .where(stale, Job.distributed.is_(True), Job.status.not_in(list(JOB_FINAL)))
        .with_for_update(of=Chapter, skip_locked=True)
    ).all()
    if not rows:
        return []
    session.execute(
        update(Chapter)
        .where(Chapter.id.in_([r[0] for r in rows]), stale)
        .values(stitch_enqueued_at_ms=now_ms, stitch_lease_until_ms=None)
    )
    return [Work(cid, Priority(p)) for cid, p in rows]
