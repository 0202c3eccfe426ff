"""Creating a job: a plan stored as a job, its chapters and segments (reused audio found
at once), and the job's settings read back from its row."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from jobs.costs import EditCost
from jobs.db import Factory, transaction
from jobs.models import (
    Chapter,
    Job,
    JobStatus,
    Segment,
    SegmentStatus,
)
from jobs.planning import PlannedChapter, Voicing, segment_hash
from jobs.priority import Priority
from jobs.storage import Storage
from renderer import caption_profiles
from renderer.caption_profiles import DEFAULT_CAPTION_PROFILE, CaptionProfile
from renderer.profiles import Profile, profile
from renderer.stitch import AudioFormat
from ssml.document import Document
from ssml.slug import slugify


@dataclass(frozen=True)
class JobSummary:
    job_id: str
    segments_total: int
    segments_reused: int
    chapters: int
    skipped: tuple[str, ...] = field(default=())
    warnings: tuple[str, ...] = field(default=())
    #: what of the job is new against what was rendered before it
    cost: EditCost | None = None


def create_job(
    factory: Factory,
    storage: Storage,
    *,
    input_path: Path,
    document: Document,
    plan: Sequence[PlannedChapter],
    voicing: Voicing,
    audio: AudioFormat,
    priority: Priority = Priority.NORMAL,
    allow_partial: bool = False,
    distributed: bool = False,
    master: str | None = None,
    book: Mapping[str, object] | None = None,
    caption_profile: str = DEFAULT_CAPTION_PROFILE,
    read_along: str | None = None,
    source: Mapping[str, object] | None = None,
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
                "master": master,
                "caption_profile": caption_profile,
                "read_along": read_along,
                "source": dict(source) if source is not None else None,
            },
            book=dict(book) if book is not None else None,
            priority=int(priority),
            allow_partial=allow_partial,
            distributed=distributed,
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
            chapter.segments_total = len(planned.segments)
            chapter.segments_done = chapter.segments_failed = 0
            for seg in planned.segments:
                content_hash = segment_hash(voicing, seg.text, seg.ssml)
                done = storage.has_segment(content_hash)
                total += 1
                reused += done
                chapter.segments_done += done
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
                        retries=0,
                        not_before_ms=0,
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


def profile_of(job: Job) -> Profile | None:
    """The delivery profile the job's chapters are mastered to (None: not mastered)."""
    name = job.options.get("master")
    return profile(str(name)) if name else None


def caption_profile_of(job: Job) -> CaptionProfile:
    """The caption profile the job's captions are cut to (jobs older than profiles, and
    jobs without one: ``standard``)."""
    name = job.options.get("caption_profile") or DEFAULT_CAPTION_PROFILE
    return caption_profiles.caption_profile(str(name))


def audio_format_of(job: Job) -> AudioFormat:
    options = job.options
    return AudioFormat(
        container=str(options.get("format", "mp3")),
        sample_rate_hz=options.get("sample_rate_hz"),  # type: ignore[arg-type]
        bitrate_kbps=options.get("bitrate_kbps"),  # type: ignore[arg-type]
    )
