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
from pathlib import Path

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from jobs.claims import FollowUp
from jobs.clock import clock_ms
from jobs.creation import audio_format_of, profile_of
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
from narrate.files import write_text_atomic
from renderer.master import layout_for, master, needs_levels, output_format
from renderer.profiles import Profile
from renderer.stitch import AudioFormat, Layout, StitchPart, Timeline, plan_timeline, stitch, trim
from renderer.timing import place_words

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

    Each segment is trimmed to its speech (:func:`renderer.stitch.trim`), so every pause is
    its planned length. A mastered job's chapter is mastered to its profile
    (:mod:`renderer.master`) and its report kept; a chapter longer than the profile allows
    in one file is split into files at paragraph starts. Failed segments (a partial job)
    become silent gaps of about their spoken length, listed in ``chapters.gaps``.
    Idempotent: files are content-addressed and the word rows are replaced under a lock on
    the chapter row.
    """
    with transaction(factory) as session:
        chapter = session.get(Chapter, chapter_id)
        if chapter is None:
            raise JobNotFoundError(f"chapter {chapter_id} does not exist")
        if chapter.status != ChapterStatus.STITCHING:  # a stale message: done, reset, ...
            return FollowUp("skipped")
        job = session.get_one(Job, chapter.job_id)
        fmt, profile = chapter_format(audio_format_of(job)), profile_of(job)
        text = chapter.text
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
    parts = trim([row.part(storage) for row in rows], levels=needs_levels(profile))
    rate = fmt.sample_rate_hz or GAP_ONLY_RATE_HZ  # for a chapter made only of gaps
    files: list[_File] = []
    placed: list[_Placed] = []
    offset_ms = 0
    for group in _file_groups(rows, parts, text, profile, rate):
        made = _stitch_file(storage, [parts[i] for i in group], fmt, profile, rate)
        for i, start, trimmed, length in zip(
            group,
            made.timeline.part_starts,
            made.timeline.part_trims,
            made.timeline.part_lengths,
            strict=True,
        ):
            ms = made.timeline.ms
            placed.append(_Placed(rows[i], offset_ms + ms(start), ms(trimmed), ms(length)))
        files.append(
            _File(storage.key(made.path), offset_ms, made.timeline.duration_ms, made.report)
        )
        offset_ms += made.timeline.duration_ms
    gaps: list[dict[str, object]] = [
        {
            "segment": p.row.index,
            "start_ms": p.start_ms,
            "end_ms": p.start_ms + p.length_ms,
            "error": p.row.error,
        }
        for p in placed
        if p.row.audio_hash is None
    ]
    with transaction(factory) as session:
        # the row lock serialises two executions of one stitch (a redelivered message)
        chapter = session.get_one(Chapter, chapter_id, with_for_update=True)
        if chapter.status != ChapterStatus.STITCHING:  # done by another, or reset by a retry
            return FollowUp("skipped")
        session.execute(delete(Word).where(Word.chapter_id == chapter_id))
        _store_words(session, storage, chapter_id, placed)
        chapter.content_hash = hashlib.sha256(
            "".join(f.audio_key for f in files).encode()
        ).hexdigest()
        chapter.audio_key = files[0].audio_key
        chapter.files = [f.row() for f in files] if len(files) > 1 else None
        chapter.master = _chapter_report(profile, files)
        chapter.duration_ms = offset_ms
        chapter.status = ChapterStatus.DONE
        chapter.gaps = gaps or None
        chapter.error = None
        chapter.stitch_lease_until_ms = None
        job_id = chapter.job_id
    settled = settle_job(factory, job_id, now_ms or clock_ms())
    return FollowUp(ChapterStatus.DONE, settled=settled)


#: what changes how the same segments are stitched; part of every chapter file's hash
STITCH_VERSION = 2  # 2: segments trimmed to their speech, fades at the cuts


def chapter_format(fmt: AudioFormat) -> AudioFormat:
    """How a chapter is stored: as asked, but lossless FLAC for a book (m4b) that is
    encoded once, whole, from its chapters."""
    if fmt.container == "m4b":
        return AudioFormat("flac", fmt.sample_rate_hz)
    return fmt


@dataclass(frozen=True)
class _Made:
    path: Path
    timeline: Timeline
    report: dict[str, object] | None


def _stitch_file(
    storage: Storage,
    parts: Sequence[StitchPart],
    fmt: AudioFormat,
    profile: Profile | None,
    rate: int,
) -> _Made:
    """One file of a chapter: made (or found in storage) and, mastered, its report."""
    out_fmt = output_format(profile, fmt) if profile is not None else fmt
    layout = layout_for(profile) if profile is not None else Layout()
    key = [
        STITCH_VERSION,
        [[p.wav_path.stem if p.wav_path else None, p.pause_after_ms, p.gap_ms] for p in parts],
        asdict(out_fmt),
        profile.name if profile is not None else None,
    ]
    file_hash = hashlib.sha256(json.dumps(key).encode()).hexdigest()
    path = storage.chapter_audio(file_hash, out_fmt.extension)
    report_path = storage.chapter_report(file_hash)
    if path.is_file() and (profile is None or report_path.is_file()):
        report = json.loads(report_path.read_text()) if profile is not None else None
        return _Made(path, plan_timeline(parts, rate, layout), report)
    if profile is None:
        return _Made(path, stitch(parts, path, out_fmt, rate), None)
    mastered = master(parts, path, out_fmt, profile, rate)
    report = {
        **mastered.report.as_json(),
        "gain_db": mastered.gain.gain_db,
        "limiter_dbtp": mastered.gain.limit_dbtp,
        "attempts": mastered.attempts,
        "curve": [list(point) for point in mastered.report.measures.curve],
    }
    write_text_atomic(report_path, json.dumps(report))
    return _Made(path, mastered.timeline, report)


def _file_groups(
    rows: Sequence[_StitchRow],
    parts: Sequence[StitchPart],
    text: str,
    profile: Profile | None,
    rate: int,
) -> list[list[int]]:
    """The parts of each file of the chapter: one file, unless the profile caps a file's
    length (ACX: 120 min); then files break at paragraph starts (at a sentence when one
    paragraph alone is too long)."""
    everything = list(range(len(parts)))
    if profile is None or profile.mastering.max_file_ms is None or not parts:
        return [everything]
    limit_ms = profile.mastering.max_file_ms
    layout = layout_for(profile)
    timeline = plan_timeline(parts, rate, layout)
    budget_ms = limit_ms - layout.head_ms - layout.tail_ms - 1000
    if timeline.duration_ms <= limit_ms:
        return [everything]
    groups: list[list[int]] = [[]]
    used_ms = 0
    last_paragraph = 0  # index in the current group where a paragraph starts
    for i, row in enumerate(rows):
        length_ms = timeline.ms(timeline.part_lengths[i]) + parts[i].pause_after_ms
        paragraph = (
            row.char_start == 0 or text[max(0, row.char_start - 2) : row.char_start] == "\n\n"
        )
        if paragraph:
            last_paragraph = len(groups[-1])
        if used_ms + length_ms > budget_ms and groups[-1]:
            cut = last_paragraph if last_paragraph > 0 else len(groups[-1])
            carried = groups[-1][cut:]
            groups[-1] = groups[-1][:cut]
            groups.append(carried)
            used_ms = sum(
                timeline.ms(timeline.part_lengths[j]) + parts[j].pause_after_ms for j in carried
            )
            last_paragraph = 0
        groups[-1].append(i)
        used_ms += length_ms
    return [g for g in groups if g]


@dataclass(frozen=True)
class _File:
    audio_key: str
    start_ms: int
    duration_ms: int
    report: dict[str, object] | None

    def row(self) -> dict[str, object]:
        return {
            "audio_key": self.audio_key,
            "start_ms": self.start_ms,
            "duration_ms": self.duration_ms,
        }


def _chapter_report(profile: Profile | None, files: Sequence[_File]) -> dict[str, object] | None:
    """What the database keeps of the chapter's mastering: per file, without the curve."""
    if profile is None:
        return None
    reports = [
        {k: v for k, v in (f.report or {}).items() if k != "curve"} | {"audio_key": f.audio_key}
        for f in files
    ]
    return {
        "profile": profile.name,
        "passed": all(bool(r.get("passed")) for r in reports),
        "files": reports,
    }


@dataclass(frozen=True)
class _Placed:
    """A segment's place on the chapter timeline: where its kept audio starts, how much
    was trimmed from its head, how long it lasts."""

    row: _StitchRow
    start_ms: int
    trimmed_ms: int
    length_ms: int


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
    session: Session, storage: Storage, chapter_id: int, placed: Sequence[_Placed]
) -> None:
    """Insert the chapter's word track a segment at a time (Core inserts, no ORM objects):
    memory holds one segment's words however long the chapter."""
    number = 0
    for p in placed:
        if p.row.audio_hash is None:
            continue
        local = storage.load_segment_words(p.row.audio_hash)
        words = place_words(local, p.row.char_start, p.start_ms, p.trimmed_ms, p.length_ms)
        batch = [
            {
                "chapter_id": chapter_id,
                "segment_id": p.row.segment_id,
                "index": number + offset,
                "text": word.text,
                "char_start": word.char_start,
                "char_end": word.char_end,
                "start_ms": word.start_ms,
                "end_ms": word.end_ms,
            }
            for offset, word in enumerate(words)
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
