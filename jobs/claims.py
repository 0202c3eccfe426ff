"""Claims, leases and the fan-in of segments.

Every state change of a segment is a guarded UPDATE (``... WHERE status IN (...)``), and
only the execution whose UPDATE matched a row moves its chapter's counters (reference
notes §2.4, fan-in without chords). The execution that brings a chapter's
``segments_done + segments_failed`` to ``segments_total`` claims the chapter's stitch by
setting ``stitch_enqueued_at_ms`` from NULL, in the same transaction, so the stitch is
enqueued exactly once however often a message is redelivered. Steps return a
:class:`FollowUp` saying what the caller must enqueue *after* the commit; a caller that
dies in between leaves a claim the reaper (:mod:`jobs.reaper`) picks up.

Times are epoch milliseconds passed in by the caller (the task or CLI edge).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.orm import Session

from jobs.creation import voicing_of
from jobs.db import Factory, transaction
from jobs.models import (
    Chapter,
    ChapterStatus,
    Job,
    JobStatus,
    Segment,
    SegmentStatus,
)
from jobs.planning import Voicing
from jobs.priority import Priority
from jobs.settling import settle_job
from narrate.errors import JobNotFoundError

#: segment states a worker may still move forward
_OPEN = (SegmentStatus.PENDING, SegmentStatus.QUEUED, SegmentStatus.RUNNING)


@dataclass(frozen=True)
class Claim:
    """A segment a worker holds under a lease, with everything needed to render it."""

    segment_id: int
    job_id: str
    priority: Priority
    #: deliveries so far, this one included (a poison message keeps raising it)
    attempt: int
    #: retryable failures so far
    retries: int
    voicing: Voicing
    content_hash: str
    text: str
    ssml: str


@dataclass(frozen=True)
class FollowUp:
    """What the caller enqueues after a step commits."""

    #: the segment's status after the step ("skipped" when another execution had it)
    status: str
    #: chapters whose stitch this step claimed: enqueue each exactly once
    stitch: tuple[int, ...] = ()
    #: the job reached a final status in this step
    settled: str | None = None
    #: the segment went back to the backlog until then (epoch ms)
    retry_at_ms: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The task's result (JSON for Celery): :meth:`from_dict` reads it back."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FollowUp:
        return cls(
            status=str(data["status"]),
            stitch=tuple(int(c) for c in data.get("stitch", ())),
            settled=data.get("settled"),
            retry_at_ms=data.get("retry_at_ms"),
        )


def claim_segment(factory: Factory, segment_id: int, now_ms: int, lease_ms: int) -> Claim | None:
    """Take a segment for rendering: one guarded UPDATE, so two workers never both hold it.

    Claimable: pending or queued and due, or running with an expired lease (its worker
    died). Returns ``None`` when there is nothing to do (done, failed, cancelled, held by
    a live worker, or not due yet): a redelivered or duplicate message is then harmless.
    """
    with transaction(factory) as session:
        row = session.execute(
            update(Segment)
            .where(
                Segment.id == segment_id,
                (
                    Segment.status.in_([SegmentStatus.PENDING, SegmentStatus.QUEUED])
                    & (Segment.not_before_ms <= now_ms)
                )
                | ((Segment.status == SegmentStatus.RUNNING) & (Segment.lease_until_ms < now_ms)),
                # a job cancelled while this segment ran: its worker died, let it rest
                Segment.job_id.not_in(select(Job.id).where(Job.status == JobStatus.CANCELLED)),
            )
            .values(
                status=SegmentStatus.RUNNING,
                attempts=Segment.attempts + 1,
                lease_until_ms=now_ms + lease_ms,
            )
            .returning(Segment.job_id, Segment.attempts, Segment.retries)
        ).first()
        if row is None:
            if session.get(Segment, segment_id) is None:
                raise JobNotFoundError(f"segment {segment_id} does not exist")
            return None
        job_id, attempts, retries = row
        job = session.get_one(Job, job_id)
        if job.status == JobStatus.PENDING:
            job.status = JobStatus.RUNNING
        if job.started_at_ms is None:
            job.started_at_ms = now_ms
        segment = session.get_one(Segment, segment_id)
        return Claim(
            segment_id=segment_id,
            job_id=job_id,
            priority=Priority(job.priority),
            attempt=attempts,
            retries=retries,
            voicing=voicing_of(job),
            content_hash=segment.content_hash,
            text=segment.text,
            ssml=segment.ssml,
        )


def _held(claim: Claim) -> ColumnElement[bool]:
    """The segment is still running under this claim (no later delivery took it)."""
    return (
        (Segment.id == claim.segment_id)
        & (Segment.status == SegmentStatus.RUNNING)
        & (Segment.attempts == claim.attempt)
    )


def renew_lease(factory: Factory, claim: Claim, until_ms: int) -> bool:
    """Extend the lease of a segment this worker still holds (its heartbeat)."""
    with transaction(factory) as session:
        result = session.execute(
            update(Segment).where(_held(claim)).values(lease_until_ms=until_ms)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]


def complete_segment(
    factory: Factory, segment_id: int, now_ms: int, *, reused: bool, billed_chars: int | None
) -> FollowUp:
    """Mark a segment done; the execution that wins moves the chapter's counters."""
    return _close_segment(
        factory,
        segment_id,
        now_ms,
        SegmentStatus.DONE,
        reused=reused,
        billed_chars=None if reused else billed_chars,
        error=None,
    )


def fail_segment(factory: Factory, segment_id: int, message: str, now_ms: int = 0) -> FollowUp:
    """Mark a segment failed with a message the user can act on."""
    return _close_segment(factory, segment_id, now_ms, SegmentStatus.FAILED, error=message)


def _close_segment(
    factory: Factory, segment_id: int, now_ms: int, status: SegmentStatus, **values: object
) -> FollowUp:
    """Move an open segment to ``status`` (done or failed) with one guarded UPDATE; only
    the execution whose UPDATE matched moves the chapter's counters (exactly-once fan-in)."""
    with transaction(factory) as session:
        chapter_id = session.execute(
            update(Segment)
            .where(Segment.id == segment_id, Segment.status.in_(_OPEN))
            .values(status=status, lease_until_ms=None, finished_at_ms=now_ms or None, **values)
            .returning(Segment.chapter_id)
        ).scalar()
        if chapter_id is None:
            return FollowUp("skipped")
        done = status == SegmentStatus.DONE
        follow = _count(session, chapter_id, now_ms, done=int(done), failed=int(not done))
    return _settle_after(factory, follow, status, now_ms)


def defer_segment(
    factory: Factory, claim: Claim, message: str, retry_at_ms: int, *, count: bool = True
) -> FollowUp:
    """Send a segment that met a transient error back to the backlog until ``retry_at_ms``.

    The backoff lives in the database, not in a broker countdown: nothing is lost when a
    worker or the broker dies while it waits, and the feeder releases it when it is due.
    ``count=False`` for waits that are not the segment's fault (a busy throttle).
    """
    with transaction(factory) as session:
        deferred = session.execute(
            update(Segment)
            .where(_held(claim))
            .values(
                status=SegmentStatus.PENDING,
                retries=Segment.retries + (1 if count else 0),
                attempts=Segment.attempts - (0 if count else 1),
                not_before_ms=retry_at_ms,
                lease_until_ms=None,
                error=f"retrying: {message}",
            )
        ).rowcount  # type: ignore[attr-defined]
    if not deferred:  # another execution holds it now
        return FollowUp("skipped")
    return FollowUp(SegmentStatus.PENDING, retry_at_ms=retry_at_ms)


def _count(
    session: Session, chapter_id: int, now_ms: int, *, done: int = 0, failed: int = 0
) -> _Counted:
    """Move a chapter's counters; claim its stitch (or fail it) when this was its last segment."""
    row = session.execute(
        update(Chapter)
        .where(Chapter.id == chapter_id)
        .values(
            segments_done=Chapter.segments_done + done,
            segments_failed=Chapter.segments_failed + failed,
        )
        .returning(
            Chapter.job_id, Chapter.segments_done, Chapter.segments_failed, Chapter.segments_total
        )
    ).one()
    job_id, n_done, n_failed, n_total = row
    if n_done + n_failed < n_total:
        return _Counted(job_id, (), False)
    return _chapter_complete(session, chapter_id, job_id, n_failed, now_ms)


@dataclass(frozen=True)
class _Counted:
    job_id: str
    stitch: tuple[int, ...]
    #: a chapter failed: the job may now be final
    chapter_failed: bool


def _chapter_complete(
    session: Session, chapter_id: int, job_id: str, n_failed: int, now_ms: int
) -> _Counted:
    """Every segment of the chapter is final: claim its stitch, or fail the chapter."""
    job = session.get_one(Job, job_id)
    if job.status == JobStatus.CANCELLED:
        return _Counted(job_id, (), False)
    if n_failed and not job.allow_partial:
        session.execute(
            update(Chapter)
            .where(Chapter.id == chapter_id, Chapter.status != ChapterStatus.FAILED)
            .values(status=ChapterStatus.FAILED, error=f"{n_failed} segment(s) failed")
        )
        return _Counted(job_id, (), True)
    claimed = session.execute(
        update(Chapter)
        .where(Chapter.id == chapter_id, Chapter.stitch_enqueued_at_ms.is_(None))
        .values(status=ChapterStatus.STITCHING, stitch_enqueued_at_ms=now_ms)
    ).rowcount  # type: ignore[attr-defined]
    return _Counted(job_id, (chapter_id,) if claimed else (), False)


def _settle_after(factory: Factory, counted: _Counted, status: str, now_ms: int) -> FollowUp:
    settled = settle_job(factory, counted.job_id, now_ms) if counted.chapter_failed else None
    return FollowUp(status, stitch=counted.stitch, settled=settled)


def claim_ready_chapters(factory: Factory, job_id: str, now_ms: int) -> FollowUp:
    """Claim the stitch of every chapter whose segments are all final but whose stitch was
    never claimed (chapters fully reused at creation, or after a retry)."""
    stitch: list[int] = []
    failed = False
    with transaction(factory) as session:
        rows = session.execute(
            select(Chapter.id, Chapter.segments_failed).where(
                Chapter.job_id == job_id,
                Chapter.stitch_enqueued_at_ms.is_(None),
                Chapter.status == ChapterStatus.PENDING,
                Chapter.segments_done + Chapter.segments_failed == Chapter.segments_total,
            )
        ).all()
        for chapter_id, n_failed in rows:
            counted = _chapter_complete(session, chapter_id, job_id, n_failed, now_ms)
            stitch += counted.stitch
            failed = failed or counted.chapter_failed
    settled = settle_job(factory, job_id, now_ms) if failed else None
    return FollowUp("ready", stitch=tuple(stitch), settled=settled)
