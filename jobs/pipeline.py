"""The job pipeline's steps: plan a document, create a job, synthesize a segment, stitch a
chapter, finish the job. Each step loads what it needs by id, so the same functions run
in Celery tasks, in the embedded local executor and in tests.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from jobs.db import transaction
from jobs.models import Chapter, Job, JobStatus, Segment, SegmentStatus, Word
from jobs.storage import Storage
from narrate.errors import JobNotFoundError
from renderer.engine import Engine, SynthesisRequest
from renderer.stitch import AudioFormat, StitchPart, plan_timeline, stitch
from renderer.timing import TimedWord, align_words, offset_words
from ssml.document import Document
from ssml.segment import Segment as PlannedSegment
from ssml.segment import SegmentPolicy, segment_chapter
from ssml.slug import slugify

Factory = sessionmaker[Session]


@dataclass(frozen=True)
class Voicing:
    """How to speak: engine, voice and the engine-neutral prosody multipliers."""

    engine: str
    voice: str
    rate: float = 1.0
    pitch: float = 1.0
    volume: float = 1.0
    model: str | None = None
    options: tuple[tuple[str, str], ...] = ()

    def request(self, ssml: str) -> SynthesisRequest:
        """The engine request speaking ``ssml`` this way."""
        return SynthesisRequest(
            ssml=ssml,
            voice=self.voice,
            rate=self.rate,
            pitch=self.pitch,
            volume=self.volume,
            model=self.model,
            options=self.options,
        )


@dataclass(frozen=True)
class PlannedChapter:
    index: int  # 1-based number in the document (kept when chapters are selected)
    title: str
    text: str
    segments: tuple[PlannedSegment, ...]


@dataclass(frozen=True)
class JobSummary:
    job_id: str
    segments_total: int
    segments_reused: int
    chapters: int
    skipped: tuple[str, ...] = field(default=())
    warnings: tuple[str, ...] = field(default=())


def plan_document(document: Document, policy: SegmentPolicy) -> list[PlannedChapter]:
    """Segment every chapter of ``document`` (pure)."""
    return [
        PlannedChapter(
            chapter.number or position,
            chapter.title,
            chapter.text,
            tuple(segment_chapter(chapter, policy)),
        )
        for position, chapter in enumerate(document.chapters, start=1)
    ]


def segment_hash(voicing: Voicing, text: str, ssml: str) -> str:
    """The content hash that keys a segment's audio: same hash, same audio."""
    payload = json.dumps({"text": text, "ssml": ssml, **asdict(voicing)}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def create_job(
    factory: Factory,
    storage: Storage,
    *,
    input_path: Path,
    document: Document,
    plan: Sequence[PlannedChapter],
    voicing: Voicing,
    audio: AudioFormat,
) -> JobSummary:
    """Store a new job; segments whose audio already exists are done at once (reused)."""
    job_id = uuid.uuid4().hex
    total = reused = 0
    with transaction(factory) as session:
        job = Job(
            id=job_id,
            status=JobStatus.PENDING,
            input_path=str(input_path),
            input_sha256=hashlib.sha256(input_path.read_bytes()).hexdigest(),
            input_format=document.format,
            title=document.title,
            engine=voicing.engine,
            voice=voicing.voice,
            options={
                "rate": voicing.rate,
                "pitch": voicing.pitch,
                "volume": voicing.volume,
                "model": voicing.model,
                "engine_options": [list(pair) for pair in voicing.options],
                "format": audio.container,
                "sample_rate_hz": audio.sample_rate_hz,
                "bitrate_kbps": audio.bitrate_kbps,
            },
        )
        session.add(job)
        for planned in plan:
            chapter = Chapter(
                index=planned.index,
                title=planned.title,
                slug=slugify(planned.title, fallback=f"chapter-{planned.index}"),
                text=planned.text,
                status=SegmentStatus.PENDING,
            )
            job.chapters.append(chapter)
            for seg in planned.segments:
                content_hash = segment_hash(voicing, seg.text, seg.ssml)
                done = storage.has_segment(content_hash)
                total += 1
                reused += done
                chapter.segments.append(
                    Segment(
                        job_id=job_id,
                        index=seg.index,
                        text=seg.text,
                        ssml=seg.ssml,
                        char_start=seg.char_start,
                        char_end=seg.char_end,
                        pause_after_ms=seg.pause_after_ms,
                        content_hash=content_hash,
                        status=SegmentStatus.DONE if done else SegmentStatus.PENDING,
                        reused=done,
                        attempts=0,
                    )
                )
    return JobSummary(job_id, total, reused, len(plan), document.skipped, document.warnings)


def voicing_of(job: Job) -> Voicing:
    options = job.options
    return Voicing(
        engine=job.engine,
        voice=job.voice,
        rate=float(options.get("rate", 1.0)),  # type: ignore[arg-type]
        pitch=float(options.get("pitch", 1.0)),  # type: ignore[arg-type]
        volume=float(options.get("volume", 1.0)),  # type: ignore[arg-type]
        model=options.get("model"),  # type: ignore[arg-type]
        options=tuple(
            (str(k), str(v))
            for k, v in options.get("engine_options", [])  # type: ignore[attr-defined]
        ),
    )


def audio_format_of(job: Job) -> AudioFormat:
    options = job.options
    return AudioFormat(
        container=str(options.get("format", "mp3")),
        sample_rate_hz=options.get("sample_rate_hz"),  # type: ignore[arg-type]
        bitrate_kbps=options.get("bitrate_kbps"),  # type: ignore[arg-type]
    )


def synthesize_segment(
    factory: Factory, storage: Storage, engine_for: Callable[[str], Engine], segment_id: int
) -> str:
    """Synthesize one segment unless its audio exists; returns the segment's final status.

    Idempotent: a segment already done, or whose content hash is already in storage, is
    not synthesized again. Engine errors propagate to the caller (the task), which decides
    between retrying and failing.
    """
    with transaction(factory) as session:
        segment = _segment(session, segment_id)
        if segment.status == SegmentStatus.DONE:
            return SegmentStatus.DONE
        job = session.get_one(Job, segment.job_id)
        voicing = voicing_of(job)
        segment.status = SegmentStatus.RUNNING
        segment.attempts += 1
        if job.status == JobStatus.PENDING:
            job.status = JobStatus.RUNNING
        content_hash, text, ssml = segment.content_hash, segment.text, segment.ssml
    reused = storage.has_segment(content_hash)
    billed: int | None = None
    if not reused:
        engine = engine_for(voicing.engine)
        result = engine.synthesize(voicing.request(ssml))
        words = align_words(text, result.marks, result.duration_ms)
        storage.save_segment(content_hash, result.pcm, result.sample_rate_hz, words)
        billed = result.billed_chars
    with transaction(factory) as session:
        segment = _segment(session, segment_id)
        segment.status = SegmentStatus.DONE
        segment.reused = reused
        segment.billed_chars = None if reused else billed
        segment.error = None
    return SegmentStatus.DONE


def fail_segment(factory: Factory, segment_id: int, message: str) -> None:
    """Mark a segment failed with a message the user can act on."""
    with transaction(factory) as session:
        segment = _segment(session, segment_id)
        segment.status = SegmentStatus.FAILED
        segment.error = message


def stitch_chapter(factory: Factory, storage: Storage, chapter_id: int) -> None:
    """Stitch a chapter whose segments are all done and store its caption words."""
    with transaction(factory) as session:
        chapter = session.get(Chapter, chapter_id)
        if chapter is None:
            raise JobNotFoundError(f"chapter {chapter_id} does not exist")
        job = session.get_one(Job, chapter.job_id)
        fmt = audio_format_of(job)
        segments = list(chapter.segments)
        not_done = [s.index for s in segments if s.status != SegmentStatus.DONE]
        if not_done:
            raise RuntimeError(f"chapter {chapter.index} still has segments {not_done} to render")
        seg_rows = [(s.id, s.content_hash, s.char_start, s.pause_after_ms) for s in segments]
    parts = [StitchPart(storage.segment_wav(h), pause) for _id, h, _c, pause in seg_rows]
    chapter_hash = hashlib.sha256(
        json.dumps([[h, p] for _i, h, _c, p in seg_rows] + [asdict(fmt)]).encode()
    ).hexdigest()
    audio_path = storage.chapter_audio(chapter_hash, fmt.extension)
    timeline = plan_timeline(parts) if audio_path.is_file() else stitch(parts, audio_path, fmt)
    words: list[tuple[int, TimedWord]] = []
    for (seg_id, content_hash, char_start, _p), start in zip(
        seg_rows, timeline.part_starts, strict=True
    ):
        local = storage.load_segment_words(content_hash)
        for word in offset_words(local, char_start, timeline.ms(start)):
            words.append((seg_id, word))
    with transaction(factory) as session:
        chapter = session.get_one(Chapter, chapter_id)
        session.execute(delete(Word).where(Word.chapter_id == chapter_id))
        session.add_all(
            Word(
                chapter_id=chapter_id,
                segment_id=seg_id,
                index=number,
                text=w.text,
                char_start=w.char_start,
                char_end=w.char_end,
                start_ms=w.start_ms,
                end_ms=w.end_ms,
            )
            for number, (seg_id, w) in enumerate(words)
        )
        chapter.content_hash = chapter_hash
        chapter.audio_key = storage.key(audio_path)
        chapter.duration_ms = timeline.duration_ms
        chapter.status = SegmentStatus.DONE


def finish_job(factory: Factory, job_id: str) -> str:
    """Set the job's final status from its segments and chapters; returns it."""
    with transaction(factory) as session:
        job = session.get(Job, job_id)
        if job is None:
            raise JobNotFoundError(f"no job {job_id}")
        counts = dict(
            session.execute(
                select(Segment.status, func.count())
                .where(Segment.job_id == job_id)
                .group_by(Segment.status)
            ).all()
        )
        chapters_done = all(c.status == SegmentStatus.DONE for c in job.chapters)
        if job.status == JobStatus.FAILED and job.error:
            return job.status
        if counts.get(SegmentStatus.FAILED):
            job.status = JobStatus.FAILED
            job.error = f"{counts[SegmentStatus.FAILED]} segment(s) failed"
        elif chapters_done and set(counts) <= {SegmentStatus.DONE}:
            job.status = JobStatus.DONE
            job.error = None
        return job.status


def _segment(session: Session, segment_id: int) -> Segment:
    segment = session.get(Segment, segment_id)
    if segment is None:
        raise JobNotFoundError(f"segment {segment_id} does not exist")
    return segment


def fail_chapter(factory: Factory, chapter_id: int, message: str) -> None:
    """Mark a chapter failed (its stitch could not be made) and its job failed."""
    with transaction(factory) as session:
        chapter = session.get_one(Chapter, chapter_id)
        chapter.status = SegmentStatus.FAILED
        chapter.error = message
        job = session.get_one(Job, chapter.job_id)
        job.status = JobStatus.FAILED
        job.error = f"chapter {chapter.index} ({chapter.title}): {message}"
