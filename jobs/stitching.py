"""Stitching: a chapter whose segments are all final becomes one audio file and a word
track on its timeline.

A stitch is claimed once by the fan-in (:mod:`jobs.claims`) and held under a lease its
worker renews; the audio is streamed through ffmpeg and the word rows are inserted a
segment at a time, so memory does not grow with the chapter.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from jobs.claims import FollowUp
from jobs.clock import clock_ms
from jobs.creation import audio_format_of
from jobs.db import Factory, transaction
from jobs.models import (
    Chapter,
    ChapterStatus,
    Job,
    Segment,
    SegmentStatus,
    Word,
)
from jobs.settling import settle_job
from jobs.storage import Storage
from narrate.errors import JobNotFoundError
from renderer.stitch import StitchPart, Timeline, plan_timeline, stitch
from renderer.timing import offset_words

#: a gap left for a failed segment in a partial stitch lasts about as long as its text
#: would take to say (~16 characters per second)
GAP_MS_PER_CHAR = 60
#: the sample rate of a chapter made only of gaps when the job names none
GAP_ONLY_RATE_HZ = 22050


def claim_stitch(factory: Factory, chapter_id: int, now_ms: int, lease_ms: int) -> bool:
    """Take a claimed chapter's stitch under a lease (one guarded UPDATE): False when it is
    not waiting for a stitch, or another live worker is stitching it."""
    with transaction(factory) as session:
        return bool(
            session.execute(
                update(Chapter)
                .where(
                    Chapter.id == chapter_id,
                    Chapter.status == ChapterStatus.STITCHING,
                    Chapter.stitch_lease_until_ms.is_(None)
                    | (Chapter.stitch_lease_until_ms < now_ms),
                )
                .values(stitch_lease_until_ms=now_ms + lease_ms)
            ).rowcount  # type: ignore[attr-defined]
        )


def renew_stitch_lease(factory: Factory, chapter_id: int, until_ms: int) -> bool:
    with transaction(factory) as session:
        return bool(
            session.execute(
                update(Chapter)
                .where(Chapter.id == chapter_id, Chapter.status == ChapterStatus.STITCHING)
                .values(stitch_lease_until_ms=until_ms)
            ).rowcount  # type: ignore[attr-defined]
        )


def stitch_chapter(
    factory: Factory, storage: Storage, chapter_id: int, now_ms: int = 0
) -> FollowUp:
    """Stitch a chapter whose segments are all final and store its caption words.

    Failed segments (a partial job) become silent gaps of about their spoken length,
    listed in ``chapters.gaps``. Idempotent: the file is content-addressed and the word
    rows are replaced under a lock on the chapter row.
    """
    with transaction(factory) as session:
        chapter = session.get(Chapter, chapter_id)
        if chapter is None:
            raise JobNotFoundError(f"chapter {chapter_id} does not exist")
        if chapter.status != ChapterStatus.STITCHING:  # a stale message: done, reset, ...
            return FollowUp("skipped")
        job = session.get_one(Job, chapter.job_id)
        fmt = audio_format_of(job)
        rows = [
            _StitchRow(*row)
            for row in session.execute(
                select(
                    Segment.id,
                    Segment.index,
                    Segment.status,
                    Segment.content_hash,
                    Segment.char_start,
                    Segment.pause_after_ms,
                    func.length(Segment.text),
                    Segment.error,
                )
                .where(Segment.chapter_id == chapter_id)
                .order_by(Segment.index)
            )
        ]
        open_ = [
            r.index for r in rows if r.status not in (SegmentStatus.DONE, SegmentStatus.FAILED)
        ]
        failed = [r.index for r in rows if r.status == SegmentStatus.FAILED]
        if open_ or (failed and not job.allow_partial):
            raise RuntimeError(
                f"chapter {chapter.index} still has segments {open_ or failed} to render"
            )
    parts = [row.part(storage) for row in rows]
    chapter_hash = hashlib.sha256(
        json.dumps(
            [
                [row.audio_hash, row.pause_after_ms, part.gap_ms]
                for row, part in zip(rows, parts, strict=True)
            ]
            + [asdict(fmt)]
        ).encode()
    ).hexdigest()
    audio_path = storage.chapter_audio(chapter_hash, fmt.extension)
    rate = fmt.sample_rate_hz or GAP_ONLY_RATE_HZ  # for a chapter made only of gaps
    timeline = (
        plan_timeline(parts, rate) if audio_path.is_file() else stitch(parts, audio_path, fmt, rate)
    )
    gaps: list[dict[str, object]] = [
        {
            "segment": row.index,
            "start_ms": timeline.ms(start),
            "end_ms": timeline.ms(start) + part.gap_ms,
            "error": row.error,
        }
        for row, part, start in zip(rows, parts, timeline.part_starts, strict=True)
        if row.audio_hash is None
    ]
    with transaction(factory) as session:
        # the row lock serialises two executions of one stitch (a redelivered message)
        chapter = session.get_one(Chapter, chapter_id, with_for_update=True)
        if chapter.status != ChapterStatus.STITCHING:  # done by another, or reset by a retry
            return FollowUp("skipped")
        session.execute(delete(Word).where(Word.chapter_id == chapter_id))
        _store_words(session, storage, chapter_id, rows, timeline)
        chapter.content_hash = chapter_hash
        chapter.audio_key = storage.key(audio_path)
        chapter.duration_ms = timeline.duration_ms
        chapter.status = ChapterStatus.DONE
        chapter.gaps = gaps or None
        chapter.error = None
        chapter.stitch_lease_until_ms = None
        job_id = chapter.job_id
    settled = settle_job(factory, job_id, now_ms or clock_ms())
    return FollowUp(ChapterStatus.DONE, settled=settled)


@dataclass(frozen=True)
class _StitchRow:
    """What a stitch needs of one segment (never its text or SSML)."""

    segment_id: int
    index: int
    status: str
    content_hash: str
    char_start: int
    pause_after_ms: int
    text_chars: int
    error: str | None

    @property
    def audio_hash(self) -> str | None:
        """The segment's audio in storage, or None: a failed segment, a gap."""
        return self.content_hash if self.status == SegmentStatus.DONE else None

    def part(self, storage: Storage) -> StitchPart:
        if self.audio_hash is None:  # silence of about the text's spoken length
            return StitchPart(None, self.pause_after_ms, self.text_chars * GAP_MS_PER_CHAR)
        return StitchPart(storage.segment_wav(self.audio_hash), self.pause_after_ms)


def _store_words(
    session: Session,
    storage: Storage,
    chapter_id: int,
    rows: Sequence[_StitchRow],
    timeline: Timeline,
) -> None:
    """Insert the chapter's word track a segment at a time (Core inserts, no ORM objects):
    memory holds one segment's words however long the chapter."""
    number = 0
    for row, start in zip(rows, timeline.part_starts, strict=True):
        if row.audio_hash is None:
            continue
        local = storage.load_segment_words(row.audio_hash)
        batch = [
            {
                "chapter_id": chapter_id,
                "segment_id": row.segment_id,
                "index": number + offset,
                "text": word.text,
                "char_start": word.char_start,
                "char_end": word.char_end,
                "start_ms": word.start_ms,
                "end_ms": word.end_ms,
            }
            for offset, word in enumerate(offset_words(local, row.char_start, timeline.ms(start)))
        ]
        if batch:
            session.execute(insert(Word), batch)
            number += len(batch)


def fail_chapter(factory: Factory, chapter_id: int, message: str) -> FollowUp:
    """Mark a chapter whose stitch could not be made failed; the job fails when settled.

    Guarded: a late copy of a stitch never turns a finished (or reset) chapter failed.
    """
    with transaction(factory) as session:
        job_id = session.execute(
            update(Chapter)
            .where(Chapter.id == chapter_id, Chapter.status == ChapterStatus.STITCHING)
            .values(status=ChapterStatus.FAILED, error=message, stitch_lease_until_ms=None)
            .returning(Chapter.job_id)
        ).scalar()
    if job_id is None:
        return FollowUp("skipped")
    return FollowUp(ChapterStatus.FAILED, settled=settle_job(factory, job_id, clock_ms()))
