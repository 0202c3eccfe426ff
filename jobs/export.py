"""Export a finished job from the database and storage into an output folder.

Writes ``NN-<slug>.<ext>``, ``.vtt`` and ``.srt`` per chapter, then ``manifest.json`` last:
a folder with a manifest holds a complete result; one without it does not.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from sqlalchemy import select

from jobs.book import StoredBook, stored_book
from jobs.creation import caption_profile_of, profile_of
from jobs.db import Factory, transaction
from jobs.manifest import (
    BookChapterEntry,
    BookEntry,
    Captions,
    CaptionWarningEntry,
    ChapterEntry,
    FileEntry,
    Manifest,
    MasterChapter,
    MasterEntry,
)
from jobs.models import JOB_FINAL, Chapter, Job, JobStatus, SegmentStatus, Word
from jobs.storage import Storage
from jobs.views import ChapterWords, WordTrack, WordView
from narrate.errors import JobFailedError, JobNotFoundError, UsageError
from narrate.files import atomic_path, copy_atomic, write_text_atomic
from renderer.caption_check import CaptionTally, CaptionWarning
from renderer.caption_profiles import STANDARD, CaptionProfile
from renderer.captions import (
    VTT_HEADER,
    Cue,
    iter_cues,
    rules_for,
    srt_cue,
    to_srt,
    to_vtt,
    vtt_cue,
)
from renderer.m4b import BookChapter, Mark, assemble, sample_rate_of
from renderer.master import Gain, encode_checked, filter_chain
from renderer.profiles import Profile
from renderer.report import ChapterReport, report_page
from renderer.stitch import AudioFormat
from renderer.tags import write_tags
from renderer.timing import TimedWord
from ssml.slug import slugify

MANIFEST = "manifest.json"


#: word rows read from the database at a time
WORD_BATCH = 2000


def chapter_words(factory: Factory, chapter_id: int) -> list[TimedWord]:
    """The caption word track of one chapter, in order."""
    return list(iter_chapter_words(factory, chapter_id))


def iter_chapter_words(
    factory: Factory, chapter_id: int, batch: int = WORD_BATCH
) -> Iterator[TimedWord]:
    """The word track of one chapter in order, read ``batch`` rows at a time (by index,
    each batch its own short query): memory stays at one batch however long the chapter."""
    after = -1
    while True:
        with transaction(factory) as session:
            rows = session.execute(
                select(
                    Word.index.label("position"),
                    Word.text,
                    Word.char_start,
                    Word.char_end,
                    Word.start_ms,
                    Word.end_ms,
                )
                .where(Word.chapter_id == chapter_id, Word.index > after)
                .order_by(Word.index)
                .limit(batch)
            ).all()
        for row in rows:
            yield TimedWord(row.text, row.char_start, row.char_end, row.start_ms, row.end_ms)
        if len(rows) < batch:
            return
        after = rows[-1].position


def load_job(factory: Factory, job_id: str) -> Job:
    with transaction(factory) as session:
        job = session.get(Job, job_id)
        if job is None:
            raise JobNotFoundError(
                f"no job {job_id!r} in this database",
                hint="check NARRATE_DATABASE_URL (and NARRATE_HOME): jobs live in that database",
            )
        list(job.chapters)  # load them before the session closes
        return job


def finished_chapters(factory: Factory, job_id: str, number: int | None = None) -> list[Chapter]:
    """A job's chapters (or chapter ``number``), refusing any that is not rendered yet."""
    job = load_job(factory, job_id)
    chosen = [c for c in job.chapters if number is None or c.index == number]
    if not chosen:
        numbers = ", ".join(str(c.index) for c in job.chapters)
        raise UsageError(f"job {job_id} has no chapter {number}", hint=f"its chapters: {numbers}")
    for chapter in chosen:
        if chapter.status != SegmentStatus.DONE:
            raise JobFailedError(
                f"chapter {chapter.index} ({chapter.title}) of job {job_id} has no captions: "
                f"it is {chapter.status}",
                hint="render the document again; done segments are reused",
            )
    return chosen


def word_track(factory: Factory, job_id: str, number: int | None = None) -> WordTrack:
    """The word track of a job's finished chapters (or of chapter ``number``)."""
    chapters = []
    for chapter in finished_chapters(factory, job_id, number):
        words = tuple(
            WordView(w.text, w.start_ms, w.end_ms, w.char_start, w.char_end)
            for w in iter_chapter_words(factory, chapter.id)
        )
        chapters.append(ChapterWords(chapter.index, chapter.title, words))
    return WordTrack(job_id, tuple(chapters))


def chapter_captions(
    factory: Factory, chapter: Chapter, fmt: str, profile: CaptionProfile | None = None
) -> tuple[str, tuple[CaptionWarning, ...]]:
    """A chapter's captions as WebVTT or SRT text, cut to ``profile`` (default: the one
    its job was rendered with), and the rules the speech made the cues break."""
    if profile is None:
        profile = caption_profile_of(load_job(factory, chapter.job_id))
    tally = CaptionTally(profile.for_text(chapter.text))
    cues = iter_cues(
        chapter.text,
        iter_chapter_words(factory, chapter.id),
        rules_for(chapter.text, profile),
        until_ms=chapter.duration_ms,
        sink=tally,
    )
    text = to_vtt(cues) if fmt == "vtt" else to_srt(cues)
    return text, tally.warnings()


def write_captions(
    factory: Factory,
    chapter: Chapter,
    vtt_path: Path,
    srt_path: Path,
    window: tuple[int, int] | None = None,
    *,
    profile: CaptionProfile = STANDARD,
    until_ms: int | None = None,
    tally: CaptionTally | None = None,
) -> int:
    """Write a chapter's WebVTT and SubRip files (atomically), streaming its word track
    from the database a cue at a time; returns the number of words.

    ``window`` (start, end ms on the chapter timeline): only the words spoken in it, with
    times relative to its start (one file of a chapter split into several). Cues are cut
    to ``profile``, none past ``until_ms`` (the audio's end); ``tally`` (of the same
    profile) sees every cue written, to report the rules the speech made them break.
    """
    words: Iterator[TimedWord] = iter_chapter_words(factory, chapter.id)
    if window is not None:
        words = _within(words, *window)
    counted = _Counted(words)
    cues = iter_cues(
        chapter.text, counted, rules_for(chapter.text, profile), until_ms=until_ms, sink=tally
    )
    with (
        atomic_path(vtt_path) as vtt_tmp,
        atomic_path(srt_path) as srt_tmp,
        vtt_tmp.open("w", encoding="utf-8", newline="") as vtt,
        srt_tmp.open("w", encoding="utf-8", newline="") as srt,
    ):  # the files close before their renames
        vtt.write(VTT_HEADER)
        for number, cue in enumerate(cues, start=1):
            vtt.write(vtt_cue(cue))
            srt.write(srt_cue(number, cue))
    return counted.count


def _within(words: Iterator[TimedWord], start_ms: int, end_ms: int) -> Iterator[TimedWord]:
    for word in words:
        if start_ms <= word.start_ms < end_ms:
            yield replace(word, start_ms=word.start_ms - start_ms, end_ms=word.end_ms - start_ms)


def write_book_captions(
    factory: Factory,
    chapters: Sequence[tuple[Chapter, int]],
    vtt_path: Path,
    profile: CaptionProfile = STANDARD,
) -> None:
    """One WebVTT for a whole book: each chapter's cues moved to where the chapter starts
    on the book's timeline (``(chapter, start ms)`` in order), a cue at a time; a chapter's
    last cue ends the profile's gap before the next chapter's first."""
    with atomic_path(vtt_path) as tmp, tmp.open("w", encoding="utf-8", newline="") as vtt:
        vtt.write(VTT_HEADER)
        held: Cue | None = None  # the last cue so far, written once the next one is known
        for chapter, start_ms in chapters:
            words = iter_chapter_words(factory, chapter.id)
            rules = rules_for(chapter.text, profile)
            for cue in iter_cues(chapter.text, words, rules, until_ms=chapter.duration_ms):
                cue = replace(cue, start_ms=cue.start_ms + start_ms, end_ms=cue.end_ms + start_ms)
                if held is not None:
                    end = min(held.end_ms, cue.start_ms - profile.min_gap_ms)
                    vtt.write(vtt_cue(replace(held, end_ms=max(end, held.start_ms + 1))))
                held = cue
        if held is not None:
            vtt.write(vtt_cue(held))


class _Counted:
    """Passes words through, counting them."""

    def __init__(self, words: Iterator[TimedWord]) -> None:
        self.words = words
        self.count = 0

    def __iter__(self) -> Iterator[TimedWord]:
        for word in self.words:
            self.count += 1
            yield word


def export_job(
    factory: Factory,
    storage: Storage,
    job_id: str,
    out_dir: Path,
    *,
    read_along: str | None = None,
) -> Manifest:
    """Write the job's audio (per chapter, or one m4b), captions, tags, mastering report
    and manifest into ``out_dir``; returns the manifest. ``read_along`` ("word" or
    "sentence"; default: what the job was made with) also writes the read-along EPUB."""
    from jobs.readalong import check_level, write_read_along

    job = load_job(factory, job_id)
    level = check_level(read_along or _read_along_of(job))
    if job.status not in JOB_FINAL:
        raise UsageError(
            f"job {job_id} is {job.status}: it has not finished",
            hint=f"`narrate watch {job_id}` waits for it",
        )
    if job.status not in (JobStatus.DONE, JobStatus.PARTIAL):
        raise JobFailedError(
            f"job {job_id} is {job.status}, not done: nothing exported",
            hint=f"`narrate status {job_id}` says why; `narrate retry {job_id}` (or rendering "
            "again) renders the failed segments and reuses the rest",
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    # files are about to change: an old manifest must not vouch for a half-updated folder
    (out_dir / MANIFEST).unlink(missing_ok=True)
    book = stored_book(job.book, storage, job.title or Path(job.input_path).stem)
    one_file = job.options.get("format") == "m4b"
    width = max(2, *(len(str(c.index)) for c in job.chapters))
    chapters = [
        _export_chapter(
            factory,
            storage,
            job,
            chapter,
            f"{chapter.index:0{width}d}-{chapter.slug}",
            out_dir,
            book,
            None if one_file else number,
        )
        for number, chapter in enumerate(job.chapters, start=1)
    ]
    profile = profile_of(job)
    made_book = _export_book(factory, storage, job, out_dir, book, profile) if one_file else None
    manifest = Manifest(
        job=job.id,
        input=job.input_path,
        engine=job.engine,
        voice=job.voice,
        format=str(job.options.get("format")) if job.options.get("format") else None,
        chapters=chapters,
        title=book.title if job.book else None,
        authors=list(book.authors) or None,
        book=made_book.entry if made_book else None,
        caption_profile=caption_profile_of(job).name,
    )
    if profile is not None:
        book_check = made_book.check if made_book else None
        manifest = replace(
            manifest, master=_export_report(job, out_dir, profile, book, storage, book_check)
        )
    if level is not None:
        epub = write_read_along(factory, storage, job_id, out_dir, level)
        manifest = replace(manifest, read_along=epub.name)
    payload = manifest.to_json()
    write_text_atomic(out_dir / MANIFEST, json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    return manifest


def _read_along_of(job: Job) -> str | None:
    """The read-along level the job was made with (``--read-along``), or None."""
    level = job.options.get("read_along")
    return str(level) if level else None


def _export_chapter(
    factory: Factory,
    storage: Storage,
    job: Job,
    chapter: Chapter,
    stem: str,
    out_dir: Path,
    book: StoredBook,
    track: int | None,
) -> ChapterEntry:
    """A chapter's files (unless the book is one m4b), tagged, and its captions."""
    assert chapter.audio_key is not None and chapter.duration_ms is not None
    stored = chapter.files or [
        {"audio_key": chapter.audio_key, "start_ms": 0, "duration_ms": chapter.duration_ms}
    ]
    total = len(job.chapters)
    files: list[FileEntry] = []
    words = 0
    profile = caption_profile_of(job)
    warnings: list[CaptionWarningEntry] = []
    for number, entry in enumerate(stored, start=1):
        name = stem if len(stored) == 1 else f"{stem}-{number}"
        start_ms, duration_ms = int(str(entry["start_ms"])), int(str(entry["duration_ms"]))
        audio_name = None
        if track is not None:
            audio = storage.path(str(entry["audio_key"]))
            audio_name = f"{name}{audio.suffix}"
            copy_atomic(audio, out_dir / audio_name)
            title = chapter.title if len(stored) == 1 else f"{chapter.title} ({number})"
            write_tags(out_dir / audio_name, book.tags(title, track, total))
        window = None if len(stored) == 1 else (start_ms, start_ms + duration_ms)
        tally = CaptionTally(profile.for_text(chapter.text))
        words += write_captions(
            factory,
            chapter,
            out_dir / f"{name}.vtt",
            out_dir / f"{name}.srt",
            window,
            profile=profile,
            until_ms=duration_ms,
            tally=tally,
        )
        warnings.extend(_caption_warning(f"{name}.vtt", w) for w in tally.warnings())
        captions = Captions(f"{name}.vtt", f"{name}.srt")
        files.append(FileEntry(audio_name or "", captions, start_ms, duration_ms))
    return ChapterEntry(
        index=chapter.index,
        title=chapter.title,
        audio=files[0].audio or None,
        captions=files[0].captions,
        duration_ms=chapter.duration_ms,
        words=words,
        gaps=chapter.gaps or None,
        files=files if len(files) > 1 else None,
        caption_warnings=warnings or None,
    )


def _caption_warning(captions: str, warning: CaptionWarning) -> CaptionWarningEntry:
    worst = warning.worst
    return CaptionWarningEntry(
        captions=captions,
        rule=warning.rule,
        profile=warning.profile,
        cues=warning.cues,
        total=warning.total,
        limit=warning.limit,
        worst=worst.measured,
        cue=worst.cue,
        start_ms=worst.start_ms,
        message=warning.message,
    )


def caption_warning_lines(manifest: Manifest) -> list[str]:
    """The manifest's caption warnings as lines for people, each naming its chapter."""
    return [
        f"captions of chapter {chapter.index} ({chapter.title}), {w.captions}: {w.message}"
        for chapter in manifest.chapters
        for w in chapter.caption_warnings or ()
    ]


@dataclass(frozen=True)
class _Book:
    entry: BookEntry
    #: the m4b's check against the job's profile (a mastered job)
    check: dict[str, object] | None


def _export_book(
    factory: Factory,
    storage: Storage,
    job: Job,
    out_dir: Path,
    book: StoredBook,
    profile: Profile | None,
) -> _Book:
    """The whole book as one m4b with chapter marks, tagged, and its book-level WebVTT.

    The mastered chapters are kept lossless; encoding the book raises its inter-sample
    peaks a little (AAC: about 0.5 dB), so a mastered book is measured and checked as the
    chapters are, and encoded again with a correction while it misses
    (:func:`renderer.master.encode_checked`). The m4b, its marks and its check are kept in
    storage, by what they are made of."""
    options = job.options
    fmt = AudioFormat("m4b", None, options.get("bitrate_kbps"))  # type: ignore[arg-type]
    sources = [
        BookChapter(chapter.title, storage.path(str(chapter.audio_key))) for chapter in job.chapters
    ]
    key = hashlib.sha256(
        json.dumps(
            [[c.title, c.audio.name] for c in sources]
            + [fmt.bitrate_kbps, book.title, profile.name if profile else None]
        ).encode()
    ).hexdigest()
    stored = storage.root / "books" / f"{key}.m4b"
    marks_path = stored.with_suffix(".marks.json")
    check_path = stored.with_suffix(".check.json")
    if stored.is_file() and marks_path.is_file() and (profile is None or check_path.is_file()):
        marks = [Mark(**m) for m in json.loads(marks_path.read_text())]
        book_check = json.loads(check_path.read_text()) if profile else None
    else:
        marks, book_check = _assemble_book(sources, stored, fmt, book, profile)
        if book_check is not None:
            write_text_atomic(check_path, json.dumps(book_check))
        write_text_atomic(marks_path, json.dumps([asdict(m) for m in marks]))
    slug = slugify(book.title, fallback="book")
    audio_name = f"{slug}.m4b"
    copy_atomic(stored, out_dir / audio_name)
    write_tags(out_dir / audio_name, book.tags(book.title))
    write_book_captions(
        factory,
        [(c, m.start_ms) for c, m in zip(job.chapters, marks, strict=True)],
        out_dir / f"{slug}.vtt",
        caption_profile_of(job),
    )
    entry = BookEntry(
        audio=audio_name,
        duration_ms=marks[-1].end_ms if marks else 0,
        captions=f"{slug}.vtt",
        chapters=[
            BookChapterEntry(c.index, c.title, m.start_ms)
            for c, m in zip(job.chapters, marks, strict=True)
        ],
    )
    return _Book(entry, book_check)


def _assemble_book(
    sources: Sequence[BookChapter],
    stored: Path,
    fmt: AudioFormat,
    book: StoredBook,
    profile: Profile | None,
) -> tuple[list[Mark], dict[str, object] | None]:
    """The m4b made at ``stored``, its marks, and (mastered) its check."""
    artist = "; ".join(book.authors) or None
    if profile is None:
        return assemble(sources, stored, fmt, title=book.title, artist=artist), None
    rate = sample_rate_of(sources)
    made: list[list[Mark]] = []

    def encode(gain: Gain) -> None:
        filters = filter_chain(gain, rate) if gain != Gain(0.0) else []
        marks = assemble(sources, stored, fmt, title=book.title, artist=artist, filters=filters)
        made.append(marks)

    checked = encode_checked(encode, stored, profile, Gain(0.0))
    return made[-1], {
        **checked.report.as_json(),
        "gain_db": checked.gain.gain_db,
        "limiter_dbtp": checked.gain.limit_dbtp,
        "attempts": checked.attempts,
    }


REPORT = "report.html"


def _export_report(
    job: Job,
    out_dir: Path,
    profile: Profile,
    book: StoredBook,
    storage: Storage,
    book_check: dict[str, object] | None,
) -> MasterEntry:
    """The mastering section of the manifest and ``report.html`` (with the loudness plots,
    read from the reports kept beside the chapter files)."""
    chapters: list[MasterChapter] = []
    pages: list[ChapterReport] = []
    for chapter in job.chapters:
        master = chapter.master or {}
        files = master.get("files") or []
        assert isinstance(files, list)
        full = [_full_report(storage, f) for f in files]
        first = files[0] if files else {}
        chapters.append(
            MasterChapter(
                index=chapter.index,
                passed=bool(master.get("passed")),
                measures=dict(first.get("measures") or {}),
                files=[dict(f) for f in files] if len(files) > 1 else None,
            )
        )
        pages.append(ChapterReport(chapter.index, chapter.title, full))
    if book_check is not None:
        pages.append(ChapterReport(0, "The whole book (m4b)", [book_check]))
    target = _target_window(profile)
    write_text_atomic(
        out_dir / REPORT, report_page(book.title, profile.name, profile.summary, target, pages)
    )
    passed = all(c.passed for c in chapters) and (book_check is None or bool(book_check["passed"]))
    return MasterEntry(profile.name, passed, REPORT, chapters, book_check)


def _full_report(storage: Storage, summary: Mapping[str, object]) -> Mapping[str, object]:
    """A file's report with its curve (kept in storage beside the file), else as stored."""
    key = summary.get("audio_key")
    if key:
        path = storage.path(str(key))
        kept = path.with_name(path.name.split(".")[0] + ".master.json")
        if kept.is_file():
            loaded: dict[str, object] = json.loads(kept.read_text())
            return loaded
    return summary


def _target_window(profile: Profile) -> tuple[float, float] | None:
    """The loudness window to shade in the plots, for profiles that aim at loudness."""
    rule = next((r for r in profile.rules if r.key == "loudness"), None)
    if rule is None:
        return None
    target = profile.mastering.target_db(1)
    low, high = rule.bounds(_MonoProbe())  # type: ignore[arg-type]
    return (low if low is not None else target - 1, high if high is not None else target + 1)


class _MonoProbe:
    """Stands in for a mono file's measures where a rule's bounds depend on channels."""

    channels = 1
