"""Settling: a job whose chapters are all final gets its final status; what failed, and why."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, update

from jobs.clock import clock_ms
from jobs.db import Factory, transaction
from jobs.models import (
    JOB_FINAL,
    Chapter,
    ChapterStatus,
    Job,
    JobStatus,
    Segment,
    SegmentStatus,
)
from narrate.errors import JobNotFoundError


def settle_job(factory: Factory, job_id: str, now_ms: int) -> str | None:
    """Give the job its final status once every chapter is final; returns it, or None.

    Runs after the caller's own commit, so of two executions finishing the last two
    chapters at once, the later one sees both.
    """
    with transaction(factory) as session:
        job = session.get(Job, job_id)
        if job is None:
            raise JobNotFoundError(f"no job {job_id}")
        if job.status in JOB_FINAL:
            return None
        chapters = session.execute(
            select(Chapter.status, Chapter.gaps).where(Chapter.job_id == job_id)
        ).all()
        if any(status not in (ChapterStatus.DONE, ChapterStatus.FAILED) for status, _g in chapters):
            return None
        failed = session.scalar(
            select(func.count())
            .select_from(Segment)
            .where(Segment.job_id == job_id, Segment.status == SegmentStatus.FAILED)
        )
        chapters_failed = sum(status == ChapterStatus.FAILED for status, _g in chapters)
        if chapters_failed:
            status, error = JobStatus.FAILED, _failed_message(failed or 0, chapters_failed)
        elif failed:
            status, error = (
                JobStatus.PARTIAL,
                f"{failed} segment(s) failed; gaps left in their place",
            )
        else:
            status, error = JobStatus.DONE, None
        # guarded: a job cancelled (or settled) meanwhile keeps that status
        settled = session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status.not_in(list(JOB_FINAL)))
            .values(status=status, error=error, finished_at_ms=now_ms)
        ).rowcount  # type: ignore[attr-defined]
        return status if settled else None


def _failed_message(segments: int, chapters: int) -> str:
    if segments:
        return f"{segments} segment(s) failed"
    return f"{chapters} chapter(s) could not be stitched"


def finish_job(factory: Factory, job_id: str) -> str:
    """Settle the job if it can be, and return its status."""
    settle_job(factory, job_id, clock_ms())
    with transaction(factory) as session:
        job = session.get(Job, job_id)
        if job is None:
            raise JobNotFoundError(f"no job {job_id}")
        return job.status


@dataclass(frozen=True)
class Failure:
    """A failed segment (``segment`` set) or a chapter that could not be stitched."""

    chapter: int
    title: str
    segment: int | None
    error: str | None
    #: the start of the segment's text, to find it in the document
    text: str = ""

    @property
    def where(self) -> str:
        """``chapter 2 (The Storm), segment 3``"""
        place = f"chapter {self.chapter} ({self.title})"
        return place if self.segment is None else f"{place}, segment {self.segment}"


def failures(factory: Factory, job_id: str) -> list[Failure]:
    """Every failed segment of a job with its chapter and reason, then every chapter that
    failed without a failed segment (its stitch)."""
    with transaction(factory) as session:
        rows = session.execute(
            select(Chapter.index, Chapter.title, Segment.index, Segment.error, Segment.text)
            .join(Chapter, Segment.chapter_id == Chapter.id)
            .where(Segment.job_id == job_id, Segment.status == SegmentStatus.FAILED)
            .order_by(Chapter.index, Segment.index)
        ).all()
        failed_chapters = session.execute(
            select(Chapter.index, Chapter.title, Chapter.error)
            .where(
                Chapter.job_id == job_id,
                Chapter.status == ChapterStatus.FAILED,
                Chapter.segments_failed == 0,  # failed segments are listed already
            )
            .order_by(Chapter.index)
        ).all()
    found = [
        Failure(chapter, title, segment, error, text[:80])
        for chapter, title, segment, error, text in rows
    ]
    return found + [
        Failure(chapter, title, None, error) for chapter, title, error in failed_chapters
    ]
