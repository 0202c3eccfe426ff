"""What users ask of jobs in the distributed mode: their status, a list, cancel, retry.

Pure database work; sending the follow-up messages is the caller's (:mod:`jobs.submit`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update

from jobs.db import Factory, transaction
from jobs.heartbeats import advice, liveness
from jobs.models import (
    JOB_FINAL,
    Chapter,
    ChapterStatus,
    Job,
    JobStatus,
    Segment,
    SegmentStatus,
)
from jobs.priority import Priority
from jobs.settling import failures
from jobs.views import Cancelled, ChapterView, JobRow, JobView, Retried, Retrying, SegmentCounts
from narrate.errors import JobNotFoundError, UsageError


def _job(session: Any, job_id: str) -> Job:
    job: Job | None = session.get(Job, job_id)
    if job is None:
        raise JobNotFoundError(
            f"no job {job_id!r} in this database",
            hint="`narrate jobs` lists them; check NARRATE_DATABASE_URL",
        )
    return job


def job_status(
    factory: Factory, job_id: str, now_ms: int, *, reap_interval_s: float = 15.0
) -> JobView:
    """Per-chapter progress, segment counts, every failure with its reason, an ETA, and
    (``attention``) what keeps an unfinished distributed job from moving, if anything: no
    live worker, or nobody looking for lost work (:func:`jobs.heartbeats.advice`)."""
    with transaction(factory) as session:
        job = _job(session, job_id)
        counts: dict[str, int] = {
            str(status): n
            for status, n in session.execute(
                select(Segment.status, func.count())
                .where(Segment.job_id == job_id)
                .group_by(Segment.status)
            ).all()
        }
        synthesized = session.scalar(
            select(func.count())
            .select_from(Segment)
            .where(
                Segment.job_id == job_id,
                Segment.status == SegmentStatus.DONE,
                Segment.reused.is_(False),
            )
        )
        retrying = session.execute(
            select(Chapter.index, Segment.index, Segment.error, Segment.retries)
            .join(Chapter, Chapter.id == Segment.chapter_id)
            .where(Segment.job_id == job_id, Segment.status == SegmentStatus.PENDING)
            .where(Segment.retries > 0)
            .order_by(Chapter.index, Segment.index)
        ).all()
        chapters = tuple(
            ChapterView(
                index=c.index,
                title=c.title,
                status=str(c.status),
                segments_done=c.segments_done,
                segments_failed=c.segments_failed,
                segments_total=c.segments_total,
                duration_ms=c.duration_ms,
                gaps=tuple(c.gaps or ()),
                error=c.error,
            )
            for c in job.chapters
        )
        segments = SegmentCounts(
            total=sum(counts.values()), **{str(s): counts.get(s, 0) for s in SegmentStatus}
        )
        eta_s = _eta_s(
            job, segments.total - segments.done - segments.failed, synthesized or 0, now_ms
        )
        identity = (
            job.id,
            str(job.status),
            Priority(job.priority).label,
            job.title,
            job.input_path,
            job.engine,
            job.voice,
            job.error,
        )
        waiting = job.distributed and job.status not in JOB_FINAL
    return JobView(
        *identity,
        segments=segments,
        chapters=chapters,
        retrying=tuple(Retrying(c, s, r, e) for c, s, e, r in retrying),
        eta_s=eta_s,
        failures=tuple(failures(factory, job_id)),
        attention=advice(liveness(factory, now_ms), reap_interval_s) if waiting else None,
    )


def _eta_s(job: Job, remaining: int, synthesized: int, now_ms: int) -> float | None:
    """Remaining segments at the rate this job has synthesized them so far."""
    if job.status in JOB_FINAL:
        return 0.0
    if not remaining:
        return 0.0
    if not synthesized or job.started_at_ms is None or now_ms <= job.started_at_ms:
        return None
    rate_per_s = synthesized / ((now_ms - job.started_at_ms) / 1000)
    return round(remaining / rate_per_s, 1)


def list_jobs(factory: Factory, limit: int = 20) -> list[JobRow]:
    """The newest jobs first, with their progress."""
    with transaction(factory) as session:
        jobs = session.scalars(select(Job).order_by(Job.created_at.desc()).limit(limit)).all()
        ids = [j.id for j in jobs]
        progress = {
            (job_id, status): n
            for job_id, status, n in session.execute(
                select(Segment.job_id, Segment.status, func.count())
                .where(Segment.job_id.in_(ids))
                .group_by(Segment.job_id, Segment.status)
            ).all()
        }
        return [
            JobRow(
                job=j.id,
                status=str(j.status),
                priority=Priority(j.priority).label,
                title=j.title,
                created_at=j.created_at.isoformat() if j.created_at else None,
                segments_done=progress.get((j.id, SegmentStatus.DONE), 0),
                segments_failed=progress.get((j.id, SegmentStatus.FAILED), 0),
                segments_total=sum(n for (jid, _s), n in progress.items() if jid == j.id),
            )
            for j in jobs
        ]


def cancel_job(factory: Factory, job_id: str, now_ms: int) -> Cancelled:
    """Cancel a job: segments not yet started are dropped (those running finish, and their
    audio stays in storage for reuse)."""
    with transaction(factory) as session:
        job = _job(session, job_id)
        if job.status in JOB_FINAL:
            raise UsageError(f"job {job_id} is already {job.status}", hint="nothing to cancel")
        job.status = JobStatus.CANCELLED
        job.error = "cancelled by the user"
        job.finished_at_ms = now_ms
        dropped = session.execute(
            update(Segment)
            .where(
                Segment.job_id == job_id,
                Segment.status.in_([SegmentStatus.PENDING, SegmentStatus.QUEUED]),
            )
            .values(status=SegmentStatus.CANCELLED, finished_at_ms=now_ms)
        ).rowcount  # type: ignore[attr-defined]
        return Cancelled(job_id, int(dropped))


def retry_job(factory: Factory, job_id: str) -> Retried:
    """Put a failed or partial job's failed segments (and chapters that failed to stitch)
    back in the backlog; segments already done are kept.

    Only a final job is retried, under a lock on its row, so no worker changes its
    segments meanwhile; the chapter counters are then recomputed from the segment rows.
    Says how many segments and chapters were sent back.
    """
    with transaction(factory) as session:
        job = session.get(Job, job_id, with_for_update=True)
        if job is None:
            _job(session, job_id)  # raises with the hint
            raise AssertionError  # pragma: no cover
        if job.status == JobStatus.CANCELLED:
            raise UsageError(
                f"job {job_id} was cancelled",
                hint="submit the document again: its finished segments are reused",
            )
        if not job.distributed:
            raise UsageError(
                f"job {job_id} was rendered by `narrate render`, not by the workers",
                hint="run the same `narrate render` again: its finished segments are reused",
            )
        if job.status not in (JobStatus.FAILED, JobStatus.PARTIAL):
            raise UsageError(
                f"job {job_id} is {job.status}: only a failed or partial job is retried",
                hint=f"`narrate watch {job_id}` waits for it to end",
            )
        reset = session.execute(
            update(Segment)
            .where(Segment.job_id == job_id, Segment.status == SegmentStatus.FAILED)
            .values(
                status=SegmentStatus.PENDING,
                attempts=0,
                retries=0,
                not_before_ms=0,
                error=None,
                finished_at_ms=None,
                lease_until_ms=None,
            )
        ).rowcount  # type: ignore[attr-defined]
        chapters = session.execute(
            update(Chapter)
            .where(
                Chapter.job_id == job_id,
                (Chapter.status == ChapterStatus.FAILED) | Chapter.gaps.is_not(None),
            )
            .values(
                status=ChapterStatus.PENDING,
                stitch_enqueued_at_ms=None,
                stitch_lease_until_ms=None,
                gaps=None,
                error=None,
            )
        ).rowcount  # type: ignore[attr-defined]
        _recount(session, job_id)
        job.status = JobStatus.RUNNING
        job.error = None
        job.finished_at_ms = None
        return Retried(job_id, int(reset), int(chapters))


def _recount(session: Any, job_id: str) -> None:
    """Chapter counters from the segment rows (after a retry changed them)."""
    for status, column in ((SegmentStatus.DONE, "segments_done"),
                           (SegmentStatus.FAILED, "segments_failed")):  # fmt: skip
        counted = (
            select(func.count())
            .select_from(Segment)
            .where(Segment.chapter_id == Chapter.id, Segment.status == status)
            .scalar_subquery()
        )
        session.execute(update(Chapter).where(Chapter.job_id == job_id).values({column: counted}))
