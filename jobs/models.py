"""SQLAlchemy 2 models: jobs, their chapters and segments, and the caption word track."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    false,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class JobStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    #: some segments failed and the user asked to stitch what exists (gaps marked)
    PARTIAL = "partial"
    FAILED = "failed"
    CANCELLED = "cancelled"


#: a job in one of these states changes no more (until ``narrate retry``)
JOB_FINAL = frozenset({JobStatus.DONE, JobStatus.PARTIAL, JobStatus.FAILED, JobStatus.CANCELLED})


class SegmentStatus(StrEnum):
    """A segment's life: pending (in the database backlog) -> queued (the feeder sent its
    message) -> running (a worker claimed it under a lease) -> done | failed; a retryable
    error sends it back to pending with a ``not_before_ms``; ``cancelled`` with its job."""

    PENDING = "pending"
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class ChapterStatus(StrEnum):
    PENDING = "pending"
    #: its stitch was claimed (enqueued exactly once) and has not finished
    STITCHING = "stitching"
    DONE = "done"
    FAILED = "failed"


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    #: set by the application with microseconds (SQLite's now() has whole seconds), so
    #: jobs submitted within one second keep their order
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), default=_utc_now
    )
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.PENDING)
    input_path: Mapped[str] = mapped_column(Text)
    input_sha256: Mapped[str] = mapped_column(String(64))
    input_format: Mapped[str] = mapped_column(String(16))
    title: Mapped[str | None] = mapped_column(Text)
    engine: Mapped[str] = mapped_column(String(32))
    voice: Mapped[str] = mapped_column(String(128))
    #: synthesis and output options: rate, pitch, volume, format, sample_rate_hz, bitrate
    options: Mapped[dict[str, object]] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    #: jobs.priority.Priority: 0 urgent, 1 normal, 2 bulk
    priority: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    #: stitch chapters with failed segments as silence (job ends "partial")
    allow_partial: Mapped[bool] = mapped_column(default=False, server_default=false())
    #: run by the workers (``narrate submit``); the embedded ``narrate render`` runs its own
    #: jobs, and the feeder and reaper leave those alone even in a shared database
    distributed: Mapped[bool] = mapped_column(default=False, server_default=false())
    #: the book's metadata (title, authors, narrator, language, date, description, cover
    #: key in storage): tags, credits and the m4b
    book: Mapped[dict[str, object] | None] = mapped_column(JSON)
    #: epoch milliseconds (application clock) of the first claimed segment / the final status
    started_at_ms: Mapped[int | None] = mapped_column(BigInteger)
    finished_at_ms: Mapped[int | None] = mapped_column(BigInteger)

    chapters: Mapped[list[Chapter]] = relationship(
        back_populates="job", order_by="Chapter.index", cascade="all, delete-orphan"
    )


class Chapter(Base):
    __tablename__ = "chapters"
    __table_args__ = (Index("ix_chapters_job_index", "job_id", "index", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    index: Mapped[int] = mapped_column(Integer)  # 1-based reading order
    title: Mapped[str] = mapped_column(Text)
    slug: Mapped[str] = mapped_column(String(80))
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=SegmentStatus.PENDING)
    #: hash of everything the stitched file depends on; names the file in storage
    content_hash: Mapped[str | None] = mapped_column(String(64))
    audio_key: Mapped[str | None] = mapped_column(Text)  # path relative to the storage dir
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    #: fan-in counters, changed only by the execution that wins a segment's transition
    segments_total: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    segments_done: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    segments_failed: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: when its stitch was claimed; set once (NULL -> value) so the stitch is enqueued once
    stitch_enqueued_at_ms: Mapped[int | None] = mapped_column(BigInteger)
    #: epoch ms until which a worker holds the running stitch (renewed by its heartbeat)
    stitch_lease_until_ms: Mapped[int | None] = mapped_column(BigInteger)
    #: silent gaps left for failed segments in a partial stitch: [{segment, start_ms, ...}]
    gaps: Mapped[list[dict[str, object]] | None] = mapped_column(JSON)
    #: the mastering report (--master): profile, passed, measures and rules per file
    master: Mapped[dict[str, object] | None] = mapped_column(JSON)
    #: a chapter longer than its profile allows in one file (ACX: 120 min), split at
    #: paragraphs: [{audio_key, start_ms, duration_ms}] on the chapter timeline
    files: Mapped[list[dict[str, object]] | None] = mapped_column(JSON)

    job: Mapped[Job] = relationship(back_populates="chapters")
    segments: Mapped[list[Segment]] = relationship(
        back_populates="chapter", order_by="Segment.index", cascade="all, delete-orphan"
    )


class Segment(Base):
    __tablename__ = "segments"
    __table_args__ = (
        Index("ix_segments_chapter_index", "chapter_id", "index", unique=True),
        Index("ix_segments_job_status", "job_id", "status"),
        Index("ix_segments_content_hash", "content_hash"),
        Index("ix_segments_status", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    chapter_id: Mapped[int] = mapped_column(ForeignKey("chapters.id", ondelete="CASCADE"))
    index: Mapped[int] = mapped_column(Integer)  # 0-based within the chapter
    text: Mapped[str] = mapped_column(Text)
    ssml: Mapped[str] = mapped_column(Text)
    char_start: Mapped[int] = mapped_column(Integer)  # into the chapter text
    char_end: Mapped[int] = mapped_column(Integer)
    pause_after_ms: Mapped[int] = mapped_column(Integer)
    #: sha256 of text, SSML, engine, voice and engine settings: names the audio in storage
    content_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default=SegmentStatus.PENDING)
    #: deliveries claimed by a worker (a poison message that kills workers stops at a cap)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: retryable failures so far (backoff grows with it; the segment fails at a cap)
    retries: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: epoch ms: not to be released before (retry backoff)
    not_before_ms: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    #: epoch ms when the feeder (or the reaper) last sent its message
    queued_at_ms: Mapped[int | None] = mapped_column(BigInteger)
    #: epoch ms until which the running worker holds it (renewed by its heartbeat)
    lease_until_ms: Mapped[int | None] = mapped_column(BigInteger)
    finished_at_ms: Mapped[int | None] = mapped_column(BigInteger)
    reused: Mapped[bool] = mapped_column(default=False)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    #: characters the provider billed for this segment in this job (0 when reused)
    billed_chars: Mapped[int | None] = mapped_column(Integer)

    chapter: Mapped[Chapter] = relationship(back_populates="segments")


class Word(Base):
    """One word of the caption track, on the chapter timeline."""

    __tablename__ = "words"
    __table_args__ = (Index("ix_words_chapter_index", "chapter_id", "index", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chapter_id: Mapped[int] = mapped_column(ForeignKey("chapters.id", ondelete="CASCADE"))
    segment_id: Mapped[int] = mapped_column(ForeignKey("segments.id", ondelete="CASCADE"))
    index: Mapped[int] = mapped_column(Integer)  # 0-based within the chapter
    text: Mapped[str] = mapped_column(Text)
    char_start: Mapped[int] = mapped_column(Integer)  # into the chapter text
    char_end: Mapped[int] = mapped_column(Integer)
    start_ms: Mapped[int] = mapped_column(Integer)  # chapter timeline
    end_ms: Mapped[int] = mapped_column(Integer)


class Heartbeat(Base):
    """A process of the cluster as last seen, and the housekeeping lease.

    Rows: ``worker <node>`` and ``beat <host>.<pid>`` (``seen_ms``: the last sign of life);
    ``reaper`` (``seen_ms``: when lost work was last looked for, by any process);
    ``housekeeper`` (the lease: which worker feeds and reaps now, until ``lease_until_ms``).
    """

    __tablename__ = "heartbeats"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    seen_ms: Mapped[int] = mapped_column(BigInteger)
    holder: Mapped[str | None] = mapped_column(String(200))
    lease_until_ms: Mapped[int | None] = mapped_column(BigInteger)


class Schedule(Base):
    """A bulletin that runs on a schedule (``narrate bulletin schedule``): its definition as
    it was when scheduled, where it writes, and the last slot beat has considered."""

    __tablename__ = "schedules"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    #: the definition's TOML text and the folder its relative feed paths are read from
    definition: Mapped[str] = mapped_column(Text)
    base_dir: Mapped[str] = mapped_column(Text)
    out_dir: Mapped[str] = mapped_column(Text)
    base_url: Mapped[str | None] = mapped_column(Text)
    timezone: Mapped[str] = mapped_column(String(64))
    cron: Mapped[str] = mapped_column(String(120))
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    #: every slot up to this (epoch ms, UTC) has been run, claimed or recorded as missed
    last_slot_ms: Mapped[int] = mapped_column(BigInteger)


class ScheduleRun(Base):
    """One slot of a schedule: claimed once (the unique key), then done, failed or missed."""

    __tablename__ = "schedule_runs"
    __table_args__ = (Index("ix_schedule_runs_slot", "schedule_name", "slot_ms", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    schedule_name: Mapped[str] = mapped_column(
        ForeignKey("schedules.name", ondelete="CASCADE"), index=True
    )
    slot_ms: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))  # running | done | failed | missed
    claimed_at_ms: Mapped[int] = mapped_column(BigInteger)
    finished_at_ms: Mapped[int | None] = mapped_column(BigInteger)
    error: Mapped[str | None] = mapped_column(Text)
    #: the bulletin's audio file, when done
    audio: Mapped[str | None] = mapped_column(Text)
