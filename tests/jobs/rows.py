"""Reading a job's rows back in tests: ids in reading order and single rows."""

from __future__ import annotations

from sqlalchemy import select

from jobs.db import Factory, transaction
from jobs.models import Chapter, Job, Segment


def segment_ids(factory: Factory, job_id: str) -> list[int]:
    """The job's segment ids in reading order."""
    with transaction(factory) as session:
        return list(
            session.scalars(
                select(Segment.id)
                .join(Chapter, Chapter.id == Segment.chapter_id)
                .where(Segment.job_id == job_id)
                .order_by(Chapter.index, Segment.index)
            )
        )


def chapter_ids(factory: Factory, job_id: str) -> list[int]:
    with transaction(factory) as session:
        return list(
            session.scalars(
                select(Chapter.id).where(Chapter.job_id == job_id).order_by(Chapter.index)
            )
        )


def segment(factory: Factory, segment_id: int) -> Segment:
    with transaction(factory) as session:
        return session.get_one(Segment, segment_id)


def chapter(factory: Factory, chapter_id: int) -> Chapter:
    with transaction(factory) as session:
        return session.get_one(Chapter, chapter_id)


def job(factory: Factory, job_id: str) -> Job:
    with transaction(factory) as session:
        return session.get_one(Job, job_id)
