"""The embedded render: a document in, chapter audio, captions and a manifest out.

Validation happens first and writes nothing; then the job is stored, its tasks run on the
local pool, and a complete result is exported (the manifest last).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from jobs import context as worker_context
from jobs.book import BookInfo, BookOptions, add_credits, book_info, store_cover, voice_credit
from jobs.costs import EditCost, edit_cost
from jobs.creation import JobSummary, create_job
from jobs.db import Factory, ensure_schema, transaction
from jobs.export import export_job
from jobs.local import ProgressCallback, run_job
from jobs.manifest import Manifest
from jobs.models import JobStatus, Segment
from jobs.planning import PlannedChapter, Voicing, plan_document
from jobs.readalong import check_level, store_source
from jobs.settling import Failure, failures
from jobs.storage import Storage
from narrate.errors import UsageError
from narrate.settings import Settings
from renderer.caption_profiles import DEFAULT_CAPTION_PROFILE, caption_profile
from renderer.engine import Engine, validate_prosody
from renderer.engines import get_engine
from renderer.master import check_request
from renderer.profiles import profile
from renderer.stitch import AudioFormat
from ssml.annotate import annotate
from ssml.document import Document
from ssml.ingest import load, parse_chapter_range, select_chapters
from ssml.ingest.text import prettify_stem
from ssml.lexicon import load_lexicon
from ssml.segment import SegmentPolicy


@dataclass(frozen=True)
class RenderRequest:
    input_path: Path
    engine: str = "espeak"
    voice: str | None = None
    rate: float = 1.0
    pitch: float = 1.0
    volume: float = 1.0
    model: str | None = None
    engine_options: tuple[tuple[str, str], ...] = ()
    audio: AudioFormat = field(default_factory=AudioFormat)
    chapters: str | None = None  # "3-5"
    include_matter: bool = False
    lexicon: Path | None = None
    latex: str = "speak"  # or "passthrough" (Chinese text on CosyVoice)
    #: the delivery profile chapters are mastered to (None: not mastered)
    master: str | None = None
    book: BookOptions = field(default_factory=BookOptions)
    #: the caption profile captions are cut to (renderer/caption_profiles.py)
    caption_profile: str = DEFAULT_CAPTION_PROFILE
    #: also write the read-along EPUB: "word" or "sentence" overlays (None: no EPUB)
    read_along: str | None = None


@dataclass(frozen=True)
class Prepared:
    document: Document
    plan: list[PlannedChapter]
    voicing: Voicing
    book: BookInfo


@dataclass(frozen=True)
class RenderReport:
    job_id: str
    status: str
    segments_total: int
    segments_reused: int
    manifest: Manifest | None
    failures: list[Failure]
    warnings: tuple[str, ...] = ()
    #: characters the provider billed this job (None for engines that do not bill)
    billed_chars: int | None = None

    @property
    def segments_synthesized(self) -> int:
        return self.segments_total - self.segments_reused


def read_document(request: RenderRequest) -> Document:
    """Ingest the input, pick chapters and annotate it for the engine's SSML dialect."""
    return read_book(request)[0]


def read_book(request: RenderRequest) -> tuple[Document, BookInfo]:
    """:func:`read_document`, with the book's metadata (and the credits, if asked)."""
    engine = get_engine(request.engine)
    lexicon = load_lexicon(request.lexicon) if request.lexicon else None
    document = load(request.input_path, include_matter=request.include_matter)
    info = book_info(document, request.book, prettify_stem(request.input_path.stem))
    if request.chapters:
        document = select_chapters(document, parse_chapter_range(request.chapters))
    if request.book.credits:
        narrator = info.narrator or voice_credit(engine, request.voice or engine.default_voice)
        document = add_credits(document, info, narrator)
    if lexicon is not None and lexicon.warnings:
        document = replace(document, warnings=lexicon.warnings + document.warnings)
    annotated = annotate(
        document, dialect=engine.ssml_dialect, lexicon=lexicon, latex=request.latex
    )
    return annotated, info


def policy_for(engine: Engine) -> SegmentPolicy:
    return SegmentPolicy(max_chars=engine.max_segment_chars, dialect=engine.ssml_dialect)


def prepare(request: RenderRequest, *, credentials: bool = True) -> Prepared:
    """Read and plan the input and check every option; raises before anything is written.
    Without ``credentials`` what only a real request needs (an API key) is not checked:
    for plans and estimates."""
    validate_prosody(request.rate, request.pitch, request.volume)
    caption_profile(request.caption_profile)  # an unknown name fails before any work
    check_level(request.read_along)
    if request.master is not None:
        check_request(profile(request.master), request.audio)
    engine = get_engine(request.engine)
    voice = request.voice or engine.default_voice
    voicing = Voicing(
        engine.name,
        voice,
        request.rate,
        request.pitch,
        request.volume,
        model=request.model,
        options=tuple(sorted(request.engine_options)),
    )
    if credentials:
        engine.check(voicing.request(ssml=""))  # also what only a real request needs (a key)
    completed = engine.complete(voicing.request(ssml=""))  # pins implicit settings
    voicing = replace(
        voicing, voice=completed.voice, model=completed.model, options=completed.options
    )
    document, book = read_book(request)
    plan = plan_document(document, policy_for(engine))
    return Prepared(document, plan, voicing, book)


def cost_of(request: RenderRequest, settings: Settings) -> tuple[Prepared, EditCost]:
    """``request`` planned (no key needed) and what of it is new against the audio in
    ``settings``' storage (:mod:`jobs.costs`)."""
    prepared = prepare(request, credentials=False)
    engine = get_engine(request.engine)
    return prepared, edit_cost(
        prepared.plan, prepared.voicing, engine, Storage(settings.storage_dir)
    )


def render(
    settings: Settings,
    request: RenderRequest,
    out_dir: Path,
    *,
    on_progress: ProgressCallback | None = None,
    on_start: Any = None,
    quiet: bool = False,
) -> RenderReport:
    """Render ``request`` into ``out_dir`` with the embedded executor."""
    prepared = prepare(request)
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out {out_dir} exists and is not a folder")
    ensure_schema(settings.database_url)
    check_out_dir(out_dir)
    ctx = worker_context.configure(settings)
    summary = store_job(ctx, request, prepared)
    if on_start is not None:
        on_start(summary)
    status = run_job(
        settings,
        ctx.factory,
        summary.job_id,
        workers=settings.workers,
        on_progress=on_progress,
        quiet=quiet,
    )
    manifest = None
    if status == JobStatus.DONE:
        manifest = export_job(ctx.factory, ctx.storage, summary.job_id, out_dir)
    return RenderReport(
        job_id=summary.job_id,
        status=status,
        segments_total=summary.segments_total,
        segments_reused=summary.segments_reused,
        manifest=manifest,
        failures=failures(ctx.factory, summary.job_id),
        warnings=prepared.document.warnings,
        billed_chars=billed_chars(ctx.factory, summary.job_id),
    )


def store_job(
    ctx: worker_context.Context, request: RenderRequest, prepared: Prepared, **job: Any
) -> JobSummary:
    """Store a prepared request as a new job (``job``: priority, allow_partial, ...),
    with what of it is new against what is rendered (measured before it is stored)."""
    cost = edit_cost(prepared.plan, prepared.voicing, ctx.engine(request.engine), ctx.storage)
    summary = create_job(
        ctx.factory,
        ctx.storage,
        input_path=request.input_path,
        document=prepared.document,
        plan=prepared.plan,
        voicing=prepared.voicing,
        audio=request.audio,
        master=request.master,
        book=prepared.book.to_json(store_cover(ctx.storage, prepared.book.cover)),
        caption_profile=request.caption_profile,
        read_along=request.read_along,
        source=store_source(ctx.storage, request.input_path, prepared.document, prepared.plan),
        **job,
    )
    return replace(summary, cost=cost)


def check_out_dir(out_dir: Path) -> None:
    """Create ``--out`` and make sure files can be written there, before any work."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out_dir):
            pass
    except OSError as exc:
        raise UsageError(
            f"cannot write to --out {out_dir}: {exc.strerror or exc}",
            hint="choose a folder you can write to",
        ) from exc


def billed_chars(factory: Factory, job_id: str) -> int | None:
    """What the provider billed for a job's segments (reused segments cost nothing)."""
    with transaction(factory) as session:
        total: int | None = session.scalar(
            select(func.sum(Segment.billed_chars)).where(Segment.job_id == job_id)
        )
    return total
