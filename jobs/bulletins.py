"""Running a bulletin: feeds in, a timed, mastered bulletin out, published as a podcast feed.

:func:`run_bulletin` does it all for one moment (``now``):

1. **Fetch** the definition's feeds (:mod:`jobs.feeds`: timeouts, caps, last good copy).
2. **Select** what is fresh, one per story, in the voice's language (:mod:`ssml.news`).
3. **Script** an intro, a line naming each story's source and title, the stories and an
   outro, and **fit** it to the target from the voice's measured speaking rate
   (:mod:`ssml.script`; the rate is kept per voice and refined by every run).
4. **Render** it as one chapter (each part its own segments, so the pauses between parts
   are the stitcher's), mastered to the ``podcast`` profile by default; **measure** the
   audio, and adjust until it is within :data:`TOLERANCE_MS` of the target: the pauses
   between parts first (re-stitching only: every segment is reused), sentences taken off
   the last stories when it is too long, more stories when it is too short. Not enough
   news gives a shorter bulletin and a warning in its manifest.
5. **Write** ``<name-slug>-<YYYY-MM-DD-HHMM>.mp3``, ``.vtt``, ``.srt``, ``.txt`` (the
   transcript, each story's source and link) and ``.json`` (its manifest), a copy of that
   manifest as ``manifest.json`` (the latest run), and ``feed.xml`` (:mod:`jobs.podcast`).

It runs its job on the local process pool (``narrate bulletin run``, a single-machine
beat) or serially in the calling process (a Celery worker running a scheduled bulletin at
urgent priority, which may not start processes of its own).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sqlalchemy import select

from jobs import context as worker_context
from jobs.creation import create_job
from jobs.db import Factory, ensure_schema, transaction
from jobs.export import write_captions
from jobs.feeds import FeedFetcher, FetchedFeed
from jobs.local import run_job, run_serially
from jobs.models import Chapter, JobStatus, Word
from jobs.planning import PlannedChapter, Voicing, plan_document
from jobs.podcast import episodes_in, feed_xml
from jobs.priority import Priority
from jobs.render import policy_for
from jobs.settling import failures
from narrate.errors import JobFailedError, UsageError
from narrate.files import copy_atomic, write_bytes_atomic, write_text_atomic
from narrate.settings import Settings
from renderer.caption_check import CaptionTally
from renderer.caption_profiles import caption_profile
from renderer.engine import Engine, validate_prosody
from renderer.engines import get_engine
from renderer.profiles import profile
from renderer.stitch import AudioFormat
from renderer.tags import Tags, write_tags
from ssml.annotate import annotate
from ssml.bulletin import Definition
from ssml.document import Chapter as DocChapter
from ssml.document import Document
from ssml.news import Item, primary_language
from ssml.news import select as select_items
from ssml.script import GAP_MS, Estimate, Part, drop_sentences, fit, pauses_for, script
from ssml.segment import Segment as PlannedSegment
from ssml.slug import slugify

#: how close to its target a bulletin must land
TOLERANCE_MS = 3000
#: what a run aims at within the tolerance (pauses can land it this close)
AIM_MS = 500
MAX_ROUNDS = 5
#: a first guess of a voice's speaking rate, before any run measured it
DEFAULT_MS_PER_CHAR = 65.0


@dataclass(frozen=True)
class BulletinResult:
    stem: str
    out_dir: Path
    manifest: dict[str, Any]
    rounds: int

    @property
    def audio(self) -> Path:
        return self.out_dir / str(self.manifest["audio"])


@dataclass
class _Round:
    parts: list[Part]
    pauses: list[int]
    job_id: str = ""
    duration_ms: int = 0
    chapter_id: int = 0


def run_bulletin(
    settings: Settings,
    definition: Definition,
    out_dir: Path,
    now: dt.datetime,
    *,
    base_url: str | None = None,
    serially: bool = False,
    priority: Priority = Priority.URGENT,
) -> BulletinResult:
    """Make the bulletin of ``definition`` as of ``now`` (aware) into ``out_dir``."""
    if now.tzinfo is None:
        raise UsageError("--now needs a time zone", hint="e.g. 2026-12-02T18:00:00+00:00")
    engine = get_engine(definition.engine)
    voicing = _voicing(definition, engine)
    language = definition.language or _voice_language(engine, voicing.voice)
    out_dir.mkdir(parents=True, exist_ok=True)
    ensure_schema(settings.database_url)
    ctx = worker_context.configure(settings)
    warnings: list[str] = []
    fetcher = FeedFetcher(
        settings.storage_dir / "feeds",
        timeout_s=settings.feed_timeout_s,
        deadline_s=settings.feed_deadline_s,
    )
    fetched = fetcher.fetch_all([definition.feed_location(f) for f in definition.feeds])
    sources = [
        (
            [replace(i, source=f.name or i.source) for i in got.feed.items] if got.feed else [],
            f.max_items,
        )
        for f, got in zip(definition.feeds, fetched, strict=True)
    ]
    chosen = select_items(
        sources, now.astimezone(dt.UTC), dt.timedelta(hours=definition.max_item_age_h), language
    )
    notes = [f"skipped {s.item.source}: {s.item.title!r}: {s.reason}" for s in chosen.skipped]
    target_ms = definition.target_duration_s * 1000
    mastering = profile(definition.master).mastering if definition.master != "none" else None
    fixed_ms = (mastering.head_ms + mastering.tail_ms) if mastering else 0
    rates = _RateBook(settings.storage_dir / "feeds" / "speaking-rates.json")
    estimate = Estimate(rates.get(voicing) or DEFAULT_MS_PER_CHAR, fixed_ms)
    whole = script(definition, chosen.kept, now)
    parts = fit(whole, target_ms, estimate)
    attempt = _Round(parts, [GAP_MS] * (len(parts) - 1))
    audio = AudioFormat("mp3")
    master = None if definition.master == "none" else definition.master
    rounds = 0
    while True:
        rounds += 1
        plan = plan_parts(attempt.parts, attempt.pauses, engine, definition.name)
        document = Document(
            chapters=(), title=definition.name, language=language, format="bulletin"
        )
        summary = create_job(
            ctx.factory, ctx.storage, input_path=_definition_marker(settings, definition),
            document=document, plan=[plan], voicing=voicing, audio=audio,
            priority=priority, master=master, caption_profile=definition.caption_profile,
            book={"title": definition.name, "authors": [definition.name]},
        )  # fmt: skip
        attempt.job_id = summary.job_id
        status = (
            run_serially(ctx.factory, ctx.storage, ctx.engine, summary.job_id)
            if serially
            else run_job(
                settings, ctx.factory, summary.job_id, workers=settings.workers, quiet=True
            )
        )
        if status != JobStatus.DONE:
            reasons = "; ".join(
                f"{f.where}: {f.error}" for f in failures(ctx.factory, summary.job_id)
            )
            raise JobFailedError(f"the bulletin could not be rendered: {reasons or status}")
        attempt.chapter_id, attempt.duration_ms = _chapter(ctx.factory, summary.job_id)
        speech_ms = attempt.duration_ms - sum(attempt.pauses) - fixed_ms
        chars = sum(p.chars for p in attempt.parts)
        if chars and speech_ms > 0:
            estimate = replace(estimate, ms_per_char=speech_ms / chars)
            rates.put(voicing, estimate.ms_per_char)
        missing = target_ms - attempt.duration_ms
        if abs(missing) <= AIM_MS or rounds >= MAX_ROUNDS:
            break
        better = _adjust(attempt, missing, whole, target_ms, estimate)
        if better is None:
            break
        attempt = better
    missing = target_ms - attempt.duration_ms
    if abs(missing) > TOLERANCE_MS:
        short = "not enough news to fill" if missing > 0 else "could not be cut to"
        warnings.append(
            f"the bulletin is {attempt.duration_ms / 1000:.0f} s: {short} the "
            f"{definition.target_duration_s} s target"
        )
    trimmed = [p for p in attempt.parts if p.trimmed]
    notes += [
        f"{p.item.source}: {p.item.title!r} was cut by {p.trimmed} sentence(s) to fit"
        for p in trimmed
        if p.item
    ]
    return _write(
        ctx.factory,
        ctx.storage,
        definition,
        out_dir,
        now,
        attempt,
        fetched,
        warnings,
        notes,
        base_url,
        rounds,
    )


def _adjust(
    attempt: _Round, missing: int, whole: Sequence[Part], target_ms: int, estimate: Estimate
) -> _Round | None:
    """The next round: pauses when they can absorb what is missing, else fewer or more
    sentences (then default pauses again); None when nothing would change."""
    pauses, left = pauses_for_existing(attempt.pauses, missing)
    if abs(left) <= AIM_MS:
        return _Round(attempt.parts, pauses)
    if left < 0:  # too long even with the shortest pauses: take sentences off
        parts = drop_sentences(attempt.parts, -left, estimate)
    else:  # too short even with the longest pauses: more stories, if there are any
        parts = fit(whole, target_ms, estimate)
        if [p.blocks for p in parts] == [p.blocks for p in attempt.parts]:
            return _Round(attempt.parts, pauses) if pauses != attempt.pauses else None
    if [p.blocks for p in parts] == [p.blocks for p in attempt.parts]:
        return _Round(attempt.parts, pauses) if pauses != attempt.pauses else None
    return _Round(parts, [GAP_MS] * (len(parts) - 1))


def pauses_for_existing(current: Sequence[int], missing_ms: int) -> tuple[list[int], int]:
    """:func:`ssml.script.pauses_for` from the pauses of the last round."""
    if not current:
        return [], missing_ms
    average = sum(current) / len(current)
    pauses, left = pauses_for(len(current), missing_ms + round((average - GAP_MS) * len(current)))
    return pauses, left


# --- the plan -------------------------------------------------------------------------------


def plan_parts(
    parts: Sequence[Part], pauses: Sequence[int], engine: Engine, title: str
) -> PlannedChapter:
    """One chapter whose segments never span two parts: each part is annotated and
    segmented on its own, and the pause after its last segment is its pause in ``pauses``."""
    chapters = tuple(
        DocChapter(title=f"part {n}", paragraphs=p.blocks) for n, p in enumerate(parts)
    )
    document = annotate(Document(chapters=chapters, format="bulletin"), dialect=engine.ssml_dialect)
    planned = plan_document(document, policy_for(engine))
    texts: list[str] = []
    segments: list[PlannedSegment] = []
    offset = 0
    for number, chapter in enumerate(planned):
        last = len(chapter.segments) - 1
        for k, segment in enumerate(chapter.segments):
            pause = pauses[number] if k == last and number < len(pauses) else segment.pause_after_ms
            if k == last and number == len(planned) - 1:
                pause = 0
            segments.append(
                replace(
                    segment,
                    index=len(segments),
                    char_start=segment.char_start + offset,
                    char_end=segment.char_end + offset,
                    pause_after_ms=pause,
                )
            )
        texts.append(chapter.text)
        offset += len(chapter.text) + 2
    return PlannedChapter(1, title, "\n\n".join(texts), tuple(segments))


def _voicing(definition: Definition, engine: Engine) -> Voicing:
    validate_prosody(definition.rate, definition.pitch, definition.volume)
    voicing = Voicing(
        engine.name,
        definition.voice or engine.default_voice,
        definition.rate,
        definition.pitch,
        definition.volume,
        model=definition.model,
        options=definition.options,
    )
    engine.check(voicing.request(ssml=""))  # also what only a real request needs (a key)
    completed = engine.complete(voicing.request(ssml=""))  # pins implicit settings
    voicing = replace(voicing, voice=completed.voice, options=completed.options)
    return voicing


def _voice_language(engine: Engine, voice_id: str) -> str | None:
    voice = next((v for v in engine.voices() if v.id == voice_id.split("+")[0]), None)
    if voice is not None and voice.languages:
        return primary_language(voice.languages[0])
    return (
        primary_language(voice_id.split("+")[0]) if "-" in voice_id or len(voice_id) == 2 else None
    )


def _definition_marker(settings: Settings, definition: Definition) -> Path:
    """A job's input is a file: for a bulletin, a small file naming its definition."""
    marker = (
        settings.storage_dir / "bulletins" / f"{slugify(definition.name, fallback='bulletin')}.txt"
    )
    if not marker.is_file():
        write_text_atomic(marker, f"bulletin {definition.name}\n")
    return marker


def _chapter(factory: Factory, job_id: str) -> tuple[int, int]:
    with transaction(factory) as session:
        chapter = session.scalars(select(Chapter).where(Chapter.job_id == job_id)).one()
        return chapter.id, int(chapter.duration_ms or 0)


class _RateBook:
    """Each voice's measured speaking rate (ms per character), kept between runs."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _key(self, voicing: Voicing) -> str:
        return hashlib.sha256(repr(voicing).encode()).hexdigest()[:16]

    def _load(self) -> dict[str, float]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return {str(k): float(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def get(self, voicing: Voicing) -> float | None:
        return self._load().get(self._key(voicing))

    def put(self, voicing: Voicing, ms_per_char: float) -> None:
        data = self._load()
        data[self._key(voicing)] = round(ms_per_char, 3)
        write_text_atomic(self.path, json.dumps(data))


# --- the files --------------------------------------------------------------------------------


def _write(
    factory: Factory,
    storage: Any,
    definition: Definition,
    out_dir: Path,
    now: dt.datetime,
    attempt: _Round,
    fetched: Sequence[FetchedFeed],
    warnings: list[str],
    notes: list[str],
    base_url: str | None,
    rounds: int,
) -> BulletinResult:
    local = now.astimezone(_tz(definition.timezone))
    slug = slugify(definition.name, fallback="bulletin")
    stem = f"{slug}-{local.strftime('%Y-%m-%d-%H%M')}"
    with transaction(factory) as session:
        chapter = session.get_one(Chapter, attempt.chapter_id)
        audio_key, text, master = chapter.audio_key, chapter.text, chapter.master or {}
        words = session.execute(
            select(Word.char_start, Word.start_ms, Word.end_ms)
            .where(Word.chapter_id == chapter.id)
            .order_by(Word.index)
        ).all()
        session.expunge(chapter)
    audio_name = f"{stem}.mp3"
    copy_atomic(storage.path(str(audio_key)), out_dir / audio_name)
    title = f"{definition.name}, {local.strftime('%A %B')} {local.day}, {local.year}"
    write_tags(
        out_dir / audio_name,
        Tags(
            title=title,
            album=definition.name,
            artists=(definition.name,),
            date=local.date().isoformat(),
        ),
    )
    cut_to = caption_profile(definition.caption_profile)
    tally = CaptionTally(cut_to.for_text(text))
    write_captions(
        factory,
        chapter,
        out_dir / f"{stem}.vtt",
        out_dir / f"{stem}.srt",
        profile=cut_to,
        until_ms=attempt.duration_ms,
        tally=tally,
    )
    warnings = [*warnings, *(f"captions, {stem}.vtt: {w.message}" for w in tally.warnings())]
    items = _item_times(attempt.parts, text, words)
    measures = _measures(master)
    manifest: dict[str, Any] = {
        "bulletin": definition.name,
        "guid": f"narrate:{slug}:{now.astimezone(dt.UTC).strftime('%Y%m%dT%H%MZ')}",
        "title": title,
        "published": now.astimezone(dt.UTC).isoformat(),
        "audio": audio_name,
        "captions": {"vtt": f"{stem}.vtt", "srt": f"{stem}.srt"},
        "transcript": f"{stem}.txt",
        "duration_ms": attempt.duration_ms,
        "target_duration_ms": definition.target_duration_s * 1000,
        "items": items,
        "feeds": [{"url": f.url, "status": f.status, "error": f.error} for f in fetched],
        "loudness": {
            "profile": definition.master,
            "integrated_lufs": measures.get("integrated_lufs"),
            "true_peak_dbtp": measures.get("true_peak_dbtp"),
            "passed": master.get("passed") if master else None,
        },
        "warnings": warnings,
        "notes": notes,
        "rounds": rounds,
        "description": "; ".join(f"{i['source']}: {i['title']}" for i in items),
    }
    write_text_atomic(out_dir / f"{stem}.txt", _transcript(definition, title, attempt.parts))
    payload = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
    write_text_atomic(out_dir / f"{stem}.json", payload)
    write_text_atomic(out_dir / "manifest.json", payload)
    language = definition.language
    write_bytes_atomic(
        out_dir / "feed.xml",
        feed_xml(
            definition.name,
            f"{definition.name}, read by narrate",
            language,
            episodes_in(out_dir),
            base_url,
        ),
    )
    return BulletinResult(stem, out_dir, manifest, rounds)


def _measures(master: dict[str, Any]) -> dict[str, Any]:
    """The first file's measures of a chapter's mastering report (empty: not mastered)."""
    files = master.get("files") or [{}]
    first = files[0] if isinstance(files, list) and files else {}
    found = first.get("measures", {}) if isinstance(first, dict) else {}
    return found if isinstance(found, dict) else {}


def _tz(name: str) -> dt.tzinfo:
    import zoneinfo

    return zoneinfo.ZoneInfo(name)


def _item_times(parts: Sequence[Part], text: str, words: Sequence[Any]) -> list[dict[str, Any]]:
    """Where each story starts and ends on the bulletin's audio, from the word track."""
    out = []
    offset = 0
    for part in parts:
        length = len("\n\n".join(part.blocks))
        span = [w for w in words if offset <= w.char_start < offset + length]
        if part.item is not None:
            item: Item = part.item
            out.append(
                {
                    "source": item.source,
                    "title": item.title,
                    "link": item.link,
                    "published": item.published.isoformat() if item.published else None,
                    "start_ms": span[0].start_ms if span else None,
                    "end_ms": span[-1].end_ms if span else None,
                }
            )
        offset += length + 2
    del text
    return out


def _transcript(definition: Definition, title: str, parts: Sequence[Part]) -> str:
    lines = [title, ""]
    for part in parts:
        lines.extend(part.blocks)
        if part.item is not None:
            where = part.item.link or "no link"
            lines.append(f"[{part.item.source}: {where}]")
        lines.append("")
    return "\n".join(lines)


__all__ = ["BulletinResult", "plan_parts", "run_bulletin"]
