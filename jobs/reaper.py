"""The reaper: finds work that was claimed but lost, and sends it again.

Run by beat (``narrate.reap``) every ``NARRATE_REAP_INTERVAL_S``. It repairs, from the
database alone:

* segments ``running`` past their lease: the worker died (``kill -9``, OOM, a lost
  machine) or lost its database connection; they go back to ``queued`` and are sent
  again (a redelivered copy of the old message finds them taken and does nothing);
* segments ``queued`` longer than ``NARRATE_REQUEUE_AFTER_S``: their message was lost
  (a broker restart without persistence, a send that failed) and is sent again;
* stitches claimed longer than ``NARRATE_RESTITCH_AFTER_S`` ago that never finished;
* chapters whose segments are all final but whose stitch was never claimed, and jobs
  whose chapters are all final but which were never settled.

Every repair is idempotent, so a duplicate message costs one no-op task at most.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select, update

from jobs.db import transaction
from jobs.models import JOB_FINAL, Chapter, ChapterStatus, Job, Segment, SegmentStatus
from jobs.pipeline import Factory, claim_ready_chapters, settle_job
from jobs.priority import Priority


@dataclass
class Repairs:
    segments: list[tuple[int, Priority]] = field(default_factory=list)
    stitches: list[tuple[int, Priority]] = field(default_factory=list)
    settled: list[str] = field(default_factory=list)


def reap(
    factory: Factory, now_ms: int, *, requeue_after_ms: int, restitch_after_ms: int
) -> Repairs:
    repairs = Repairs()
    with transaction(factory) as session:
        stale = ((Segment.status == SegmentStatus.RUNNING) & (Segment.lease_until_ms < now_ms)) | (
            (Segment.status == SegmentStatus.QUEUED)
            & (Segment.queued_at_ms < now_ms - requeue_after_ms)
        )
        rows = session.execute(
            select(Segment.id, Job.priority)
            .join(Job, Job.id == Segment.job_id)
            .where(stale, Job.status.not_in(list(JOB_FINAL)))
            .with_for_update(of=Segment, skip_locked=True)
        ).all()
        if rows:
            session.execute(
                update(Segment)
                .where(Segment.id.in_([r[0] for r in rows]), stale)
                .values(status=SegmentStatus.QUEUED, queued_at_ms=now_ms)
            )
        repairs.segments = [(sid, Priority(p)) for sid, p in rows]
        stitches = session.execute(
            select(Chapter.id, Job.priority)
            .join(Job, Job.id == Chapter.job_id)
            .where(
                Chapter.status == ChapterStatus.STITCHING,
                Chapter.stitch_enqueued_at_ms < now_ms - restitch_after_ms,
                Job.status.not_in(list(JOB_FINAL)),
            )
            .with_for_update(of=Chapter, skip_locked=True)
        ).all()
        if stitches:
            session.execute(
                update(Chapter)
                .where(Chapter.id.in_([r[0] for r in stitches]))
                .values(stitch_enqueued_at_ms=now_ms)
            )
        repairs.stitches = [(cid, Priority(p)) for cid, p in stitches]
        open_jobs = session.execute(
            select(Job.id, Job.priority).where(Job.status.not_in(list(JOB_FINAL)))
        ).all()
    for job_id, priority in open_jobs:
        ready = claim_ready_chapters(factory, job_id, now_ms)
        repairs.stitches += [(cid, Priority(priority)) for cid in ready.stitch]
        if settled := ready.settled or settle_job(factory, job_id, now_ms):
            repairs.settled.append(f"{job_id}:{settled}")
    return repairs
