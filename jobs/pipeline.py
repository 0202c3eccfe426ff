"""The job pipeline's steps: plan a document, create a job, claim and synthesize a
segment, stitch a chapter, settle the job. Each step loads what it needs by id, so the
same functions run in Celery tasks, in the embedded local executor and in tests.

Fan-in without chords (reference notes §2.4): every state change of a segment is a
guarded UPDATE (``... WHERE status IN (...)``), and only the execution whose UPDATE
matched a row moves its chapter's counters. The execution that brings a chapter's
``segments_done + segments_failed`` to ``segments_total`` claims the chapter's stitch by
setting ``stitch_enqueued_at_ms`` from NULL, in the same transaction, so the stitch is
enqueued exactly once however often a message is redelivered. Steps return a
:class:`FollowUp` saying what the caller must enqueue *after* the commit; a caller that
dies in between leaves a claim the reaper (:mod:`jobs.reaper`) picks up.

Times are epoch milliseconds passed in by the caller (the task or CLI edge).
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sqlalchemy import ColumnElement, delete, func, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from jobs.db import transaction
from jobs.models import (
    JOB_FINAL,
    Chapter,
    ChapterStatus,
    Job,
    JobStatus,
    Segment,
    SegmentStatus,
    Word,
)
from jobs.priority import Priority
from jobs.storage import Storage
from narrate.errors import JobNotFoundError
from renderer.engine import Engine, SynthesisRequest
from renderer.stitch import AudioFormat, StitchPart, Timeline, plan_timeline, stitch
from renderer.timing import align_words, offset_words
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
    priority: Priority = Priority.NORMAL,
    allow_partial: bool = False,
    distributed: bool = False,
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


def audio_format_of(job: Job) -> AudioFormat:
    options = job.options
    return AudioFormat(
        container=str(options.get("format", "mp3")),
        sample_rate_hz=options.get("sample_rate_hz"),  # type: ignore[arg-type]
        bitrate_kbps=options.get("bitrate_kbps"),  # type: ignore[arg-type]
    )


# --- segments -------------------------------------------------------------------------

#: a gap left for a failed segment in a partial stitch lasts about as long as its text
#: would take to say (~16 characters per second)
GAP_MS_PER_CHAR = 60
#: the sample rate of a chapter made only of gaps when the job names none
GAP_ONLY_RATE_HZ = 22050
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


def render_claimed(
    storage: Storage, engine_for: Callable[[str], Engine], claim: Claim
) -> tuple[bool, int | None]:
    """Make the claimed segment's audio unless storage has it: ``(reused, billed chars)``.

    Writes are idempotent (content-addressed names, temp file + rename). Engine errors
    propagate to the caller, which decides between retrying and failing.
    """
    if storage.has_segment(claim.content_hash):
        return True, None
    engine = engine_for(claim.voicing.engine)
    result = engine.synthesize(claim.voicing.request(claim.ssml))
    words = align_words(claim.text, result.marks, result.duration_ms)
    storage.save_segment(claim.content_hash, result.pcm, result.sample_rate_hz, words)
    return False, result.billed_chars


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


def synthesize_segment(
    factory: Factory,
    storage: Storage,
    engine_for: Callable[[str], Engine],
    segment_id: int,
    *,
    now_ms: int = 0,
    lease_ms: int = 10 * 60 * 1000,
) -> FollowUp:
    """Claim, render and complete one segment in one call (engine errors propagate and leave
    the segment running until its lease ends; tasks handle them, see :mod:`jobs.tasks`)."""
    now_ms = now_ms or clock_ms()
    claim = claim_segment(factory, segment_id, now_ms, lease_ms)
    if claim is None:
        return FollowUp("skipped")
    reused, billed = render_claimed(storage, engine_for, claim)
    return complete_segment(factory, segment_id, clock_ms(), reused=reused, billed_chars=billed)


def clock_ms() -> int:
    """The application clock, epoch milliseconds (called at the edges only)."""
    return int(time.time() * 1000)


# --- chapters and jobs ----------------------------------------------------------------


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
