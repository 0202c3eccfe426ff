"""The read-along EPUB of a finished job: ``<book-slug>.epub`` with EPUB 3 media overlays.

``write_read_along`` reads the job's chapters, word track (a batch of rows at a time) and
chapter audio, and writes one EPUB atomically:

* **EPUB input** (*book mode*): the book itself. Its own content documents get ids on each
  sentence and word the track covers (:mod:`ssml.readalong.source`), each chapter's
  document gets a SMIL overlay and the chapter audio, and the package document names them
  (:mod:`ssml.readalong.package`). Every other member (images, CSS, fonts, the front and
  back matter ingest skipped) is copied byte for byte, in the same order. Chapters the book
  does not have (credits) are added as generated documents. The book's bytes are kept in
  content-addressed storage when the job is created (:func:`store_source`), so any
  machine that shares the storage can build it (``narrate fetch --read-along``).
* **Other input**, an EPUB 2 book, or an EPUB job made before its bytes were kept
  (*generated mode*): a new EPUB whose chapters are written from the chapter text
  (:mod:`ssml.readalong.generated`), with the book's title, authors, language and cover.

The audio is the chapter files as stored (MP3), or each chapter encoded as MP3 once
(cached in storage) when the job's format is one EPUB readers do not play (WAV, FLAC,
Opus, a whole-book m4b). Words that cannot be placed in the book's text are counted, get
no ``<par>``, and are reported in a warning; they never fail the export.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import posixpath
import tempfile
import uuid
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from jobs.book import stored_book
from jobs.db import Factory
from jobs.export import iter_chapter_words, load_job
from jobs.models import Chapter, Job, JobStatus, SegmentStatus
from jobs.planning import PlannedChapter
from jobs.storage import Storage
from narrate.errors import JobFailedError, UsageError
from narrate.files import atomic_path, write_bytes_atomic
from renderer.transcode import to_mp3
from ssml.dialects import script_language
from ssml.document import Document
from ssml.ingest.archive import EPUB as EPUB_KIND
from ssml.ingest.archive import Archive
from ssml.ingest.epub import find_opf, read_package, resolve
from ssml.readalong.generated import STYLESHEET, GeneratedChapter, container_xml, nav_document
from ssml.readalong.overlay import LEVELS, AudioPart, AudioTrack, Group, write_smil
from ssml.readalong.package import (
    BookInfo,
    Item,
    Overlay,
    SpineInsert,
    amend_package,
    is_epub3,
    new_package,
    package_ids,
    unique_id,
)
from ssml.readalong.source import mark_document, parse_content
from ssml.readalong.words import MarkStats, by_sentence, is_voiced, layout
from ssml.slug import slugify

log = logging.getLogger(__name__)

EPUB_MIMETYPE = b"application/epub+zip"
#: the folder of a generated book, and the package document in it
ROOT = "EPUB"
#: already compressed: stored in the zip as they are
_STORED_SUFFIXES = frozenset({".mp3", ".m4a", ".mp4", ".jpg", ".jpeg", ".png", ".gif", ".webp"})


def check_level(level: str | None) -> str | None:
    """``level`` if it is a read-along level (or None), else UsageError (exit 2)."""
    if level is not None and level not in LEVELS:
        raise UsageError(
            f"unknown read-along level {level!r}",
            hint="use --read-along word (the default) or --read-along sentence",
        )
    return level


# --- at job creation ---------------------------------------------------------------------


def store_source(
    storage: Storage, input_path: Path, document: Document, plan: Sequence[PlannedChapter]
) -> dict[str, object] | None:
    """For an EPUB input: keep its bytes in storage (content-addressed) and note the spine
    document of each chapter, for the job's options (``source``); None for other input."""
    if document.format != "epub":
        return None
    data = input_path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    path = storage.root / "inputs" / digest[:2] / f"{digest}.epub"
    if not path.is_file():
        write_bytes_atomic(path, data)
    chapters = {
        str(planned.index): chapter.source
        for chapter, planned in zip(document.chapters, plan, strict=True)
        if chapter.source
    }
    return {"key": storage.key(path), "sha256": digest, "format": "epub", "chapters": chapters}


# --- the result ------------------------------------------------------------------------


@dataclass(frozen=True)
class ReadAlongChapter:
    """One chapter in the EPUB: its content document, its overlay (None: it has none, no
    word could be placed) and how its words fared (:class:`ssml.readalong.words.MarkStats`)."""

    index: int
    title: str
    document: str
    overlay: str | None
    words: int
    placed: int
    covered: int
    unplaced: int
    silent: int
    pars: int
    clip_ms: int


@dataclass(frozen=True)
class ReadAlong:
    """The EPUB written: where, its level, ``book`` (the EPUB's own documents) or
    ``generated`` mode, per chapter, and what went less than well."""

    path: Path
    level: str
    mode: str
    chapters: tuple[ReadAlongChapter, ...]
    size_bytes: int
    warnings: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def duration_ms(self) -> int:
        return sum(c.clip_ms for c in self.chapters)

    @property
    def words(self) -> int:
        return sum(c.words for c in self.chapters)

    @property
    def placed(self) -> int:
        return sum(c.placed for c in self.chapters)

    @property
    def unplaced(self) -> int:
        return sum(c.unplaced for c in self.chapters)

    @property
    def pars(self) -> int:
        return sum(c.pars for c in self.chapters)


# --- writing -----------------------------------------------------------------------------


def write_read_along(
    factory: Factory, storage: Storage, job_id: str, out_dir: Path, level: str = "word"
) -> ReadAlong:
    """Write ``out_dir/<book-slug>.epub`` for a finished job (see the module docstring)."""
    level = check_level(level) or "word"
    job = load_job(factory, job_id)
    if job.status not in (JobStatus.DONE, JobStatus.PARTIAL):
        raise JobFailedError(
            f"job {job_id} is {job.status}: there is no audio to read along with",
            hint=f"`narrate status {job_id}` says why",
        )
    chapters = [c for c in job.chapters if c.status == SegmentStatus.DONE and c.audio_key]
    if not chapters:
        raise JobFailedError(f"job {job_id} has no rendered chapter", hint="render it again")
    book = stored_book(job.book, storage, job.title or Path(job.input_path).stem)
    target = out_dir / f"{slugify(book.title, fallback='book')}.epub"
    builder = _Builder(factory, storage, job, chapters, level)
    with tempfile.TemporaryDirectory(prefix="narrate-readalong-") as work:
        builder.work = Path(work)
        members = builder.build()
        out_dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(target) as tmp:
            _write_zip(tmp, members, builder.zip_time)
    result = ReadAlong(
        path=target,
        level=level,
        mode=builder.mode,
        chapters=tuple(builder.chapters),
        size_bytes=target.stat().st_size,
        warnings=tuple(builder.warnings),
    )
    if result.unplaced:
        log.warning(
            "read-along: %d of %d words could not be placed in the book's text and have no "
            "overlay (%s)",
            result.unplaced,
            result.words,
            ", ".join(f"chapter {c.index}: {c.unplaced}" for c in result.chapters if c.unplaced),
        )
    for warning in result.warnings:
        log.warning("read-along: %s", warning)
    return result


@dataclass
class _Member:
    """A file of the EPUB: its bytes or a file holding them."""

    name: str
    data: bytes | None = None
    path: Path | None = None
    info: zipfile.ZipInfo | None = None  # a member copied from the book: its own header

    @property
    def stored(self) -> bool:
        return posixpath.splitext(self.name)[1].lower() in _STORED_SUFFIXES


def _write_zip(target: Path, members: Sequence[_Member], when: tuple[int, ...]) -> None:
    """The EPUB's zip: ``mimetype`` first and stored, then every member in order."""
    with zipfile.ZipFile(target, "w") as archive:
        mimetype = zipfile.ZipInfo("mimetype", date_time=when)  # type: ignore[arg-type]
        archive.writestr(mimetype, EPUB_MIMETYPE, compress_type=zipfile.ZIP_STORED)
        for member in members:
            if member.info is not None:
                info = zipfile.ZipInfo(member.name, date_time=member.info.date_time)
                info.compress_type = member.info.compress_type
                info.external_attr = member.info.external_attr
            else:
                info = zipfile.ZipInfo(member.name, date_time=when)  # type: ignore[arg-type]
                info.compress_type = zipfile.ZIP_STORED if member.stored else zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
            if member.path is not None:
                with member.path.open("rb") as source, archive.open(info, "w") as sink:
                    while chunk := source.read(1 << 20):
                        sink.write(chunk)
            else:
                archive.writestr(info, member.data or b"")


@dataclass
class _Place:
    """Where a chapter's files go in the EPUB (zip paths)."""

    document: str
    smil: str
    audio_stem: str


class _Builder:
    """Builds the members of one read-along EPUB (book or generated mode)."""

    def __init__(
        self, factory: Factory, storage: Storage, job: Job, chapters: list[Chapter], level: str
    ) -> None:
        self.factory = factory
        self.storage = storage
        self.job = job
        self.chapters_in = chapters
        self.level = level
        self.book = stored_book(job.book, storage, job.title or Path(job.input_path).stem)
        self.info: Mapping[str, Any] = job.book or {}
        self.work = Path(tempfile.gettempdir())
        self.mode = "generated"
        self.chapters: list[ReadAlongChapter] = []
        self.warnings: list[str] = []
        finished = job.finished_at_ms or int(job.created_at.timestamp() * 1000)
        self.when = dt.datetime.fromtimestamp(finished / 1000, dt.UTC)
        self.zip_time = max(self.when, dt.datetime(1980, 1, 1, tzinfo=dt.UTC)).timetuple()[:6]
        width = max(2, *(len(str(c.index)) for c in chapters))
        self.stems = {c.id: f"{c.index:0{width}d}-{c.slug}" for c in chapters}

    # shared

    def build(self) -> list[_Member]:
        source = self._source()
        if source is not None:
            with Archive(source, Path(self.job.input_path).name, EPUB_KIND) as archive:
                members = self._book(archive)
                if members is not None:
                    self.mode = "book"
                    return members
        return self._generated()

    def _source(self) -> bytes | None:
        """The book's EPUB bytes from storage, when the job kept them intact."""
        source = self.job.options.get("source")
        if not isinstance(source, Mapping) or source.get("format") != "epub":
            if self.job.input_format == "epub":
                self.warnings.append(
                    "the job's EPUB was not kept (the job is older than read-along): "
                    "its chapters are written anew rather than marked in the book"
                )
            return None
        path = self.storage.path(str(source.get("key")))
        data = path.read_bytes() if path.is_file() else None
        if data is None or hashlib.sha256(data).hexdigest() != source.get("sha256"):
            self.warnings.append(
                f"the job's EPUB is missing or changed in storage ({path}): its chapters are "
                "written anew rather than marked in the book"
            )
            return None
        return data

    def _language(self) -> str:
        declared = self.info.get("language")
        if declared:
            return str(declared)
        first = self.chapters_in[0]
        return script_language(first.text[:5000]) or "und"

    def _words(self, chapter: Chapter) -> Iterator[Any]:
        return iter_chapter_words(self.factory, chapter.id)

    def _audio(
        self, chapter: Chapter, audio_dir: str, smil_path: str
    ) -> tuple[AudioTrack, list[_Member], list[Item]]:
        """The chapter's audio files as MP3 (converted once, cached), their members and
        manifest items (``audio_dir`` and hrefs relative to the package's folder)."""
        stored = chapter.files or [
            {"audio_key": chapter.audio_key, "start_ms": 0, "duration_ms": chapter.duration_ms}
        ]
        stem = self.stems[chapter.id]
        parts: list[AudioPart] = []
        members: list[_Member] = []
        items: list[Item] = []
        for number, entry in enumerate(stored, start=1):
            path = self._mp3(str(entry["audio_key"]))
            name = f"{stem}.mp3" if len(stored) == 1 else f"{stem}-{number}.mp3"
            zip_path = posixpath.join(audio_dir, name)
            members.append(_Member(zip_path, path=path))
            items.append(Item("", zip_path, "audio/mpeg"))
            href = posixpath.relpath(zip_path, posixpath.dirname(smil_path))
            start, duration = int(str(entry["start_ms"])), int(str(entry["duration_ms"]))
            parts.append(AudioPart(href, start, duration))
        return AudioTrack(tuple(parts)), members, items

    def _mp3(self, key: str) -> Path:
        path = self.storage.path(key)
        if path.suffix.lower() == ".mp3":
            return path
        digest = hashlib.sha256(key.encode()).hexdigest()
        converted = self.storage.root / "readalong" / f"{digest}.mp3"
        if not converted.is_file():
            to_mp3(path, converted)
        return converted

    def _overlay(
        self, chapter: Chapter, groups: Iterator[Group], document: str, smil: str, audio: AudioTrack
    ) -> tuple[Path, int, int]:
        """Write a chapter's SMIL to a work file: (path, pars, clip ms)."""
        path = self.work / f"{chapter.id}.smil"
        with path.open("wb") as out:
            stats = write_smil(
                out,
                groups,
                text_href=posixpath.relpath(document, posixpath.dirname(smil)),
                audio=audio,
                level=self.level,
            )
        return path, stats.pars, stats.clip_ms

    def _record(
        self,
        chapter: Chapter,
        document: str,
        overlay: str | None,
        stats: MarkStats,
        pars: int,
        clip_ms: int,
    ) -> None:
        self.chapters.append(
            ReadAlongChapter(
                chapter.index,
                chapter.title,
                document,
                overlay,
                stats.words,
                stats.placed,
                stats.covered,
                stats.unplaced,
                stats.silent,
                pars,
                clip_ms,
            )
        )

    def _generated_chapter(
        self, chapter: Chapter, place: _Place, css: str, audio: AudioTrack
    ) -> tuple[bytes, Path, int, int, MarkStats]:
        text_layout = layout(chapter.text, chapter.title)
        writer = GeneratedChapter(
            text_layout,
            title=chapter.title,
            language=self._language(),
            css_href=posixpath.relpath(css, posixpath.dirname(place.document)),
            prefix=f"ra{chapter.index}-",
        )
        groups = (writer.add(g) for g in by_sentence(self._words(chapter), text_layout.sentences))
        smil, pars, clip_ms = self._overlay(chapter, groups, place.document, place.smil, audio)
        return writer.finish(), smil, pars, clip_ms, writer.stats

    # generated mode

    def _generated(self) -> list[_Member]:
        self.chapters = []
        package_path = f"{ROOT}/package.opf"
        css = f"{ROOT}/readalong.css"
        members = [
            _Member("META-INF/container.xml", container_xml(package_path)),
            _Member(css, STYLESHEET.encode()),
        ]
        items = [Item("css", "readalong.css", "text/css")]
        spine: list[str] = []
        overlays: list[Overlay] = []
        toc: list[tuple[str, str]] = []
        for number, chapter in enumerate(self.chapters_in, start=1):
            stem = self.stems[chapter.id]
            place = _Place(f"{ROOT}/text/{stem}.xhtml", f"{ROOT}/smil/{stem}.smil", stem)
            audio, audio_members, audio_items = self._audio(chapter, f"{ROOT}/audio", place.smil)
            xhtml, smil, pars, clip_ms, stats = self._generated_chapter(chapter, place, css, audio)
            doc_id, smil_id = f"chapter-{number}", f"overlay-{number}"
            members.append(_Member(place.document, xhtml))
            href = posixpath.relpath(place.document, ROOT)
            toc.append((chapter.title, href))
            spine.append(doc_id)
            if pars:
                members.append(_Member(place.smil, path=smil))
                members.extend(audio_members)
                items.append(Item(doc_id, href, "application/xhtml+xml", overlay=smil_id))
                items.append(
                    Item(smil_id, posixpath.relpath(place.smil, ROOT), "application/smil+xml")
                )
                items.extend(
                    Item(f"audio-{number}-{k}", posixpath.relpath(i.href, ROOT), i.media_type)
                    for k, i in enumerate(audio_items, start=1)
                )
                overlays.append(Overlay(smil_id, clip_ms))
            else:
                items.append(Item(doc_id, href, "application/xhtml+xml"))
            self._record(
                chapter, place.document, place.smil if pars else None, stats, pars, clip_ms
            )
        language = self._language()
        members.append(
            _Member(f"{ROOT}/nav.xhtml", nav_document(self.book.title, language, toc, None))
        )
        items.insert(0, Item("nav", "nav.xhtml", "application/xhtml+xml", properties="nav"))
        if self.book.cover:
            suffix = "png" if self.book.cover_type == "image/png" else "jpg"
            members.append(_Member(f"{ROOT}/cover.{suffix}", self.book.cover))
            items.append(
                Item("cover-image", f"cover.{suffix}", self.book.cover_type, "cover-image")
            )
        info = BookInfo(
            identifier=f"urn:uuid:{uuid.UUID(self.job.id)}",
            title=self.book.title,
            language=language,
            modified=self.when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            authors=self.book.authors,
            narrator=self.book.narrator,
            date=self.book.date,
            description=str(self.info["description"]) if self.info.get("description") else None,
        )
        members.insert(0, _Member(package_path, new_package(info, items, spine, overlays)))
        return members

    # book mode

    def _book(self, archive: Archive) -> list[_Member] | None:
        """The book's members with the overlays added, or None when the book cannot carry
        them (EPUB 2: generated mode instead)."""
        opf_path = find_opf(cast(Any, archive))  # duck-typed: has() and xml()
        opf_root = archive.xml(opf_path)
        if not is_epub3(opf_root):
            self.warnings.append(
                "the book is an EPUB 2: media overlays need EPUB 3, so its chapters are "
                "written anew rather than marked in the book"
            )
            return None
        package = read_package(opf_root, opf_path)
        base = posixpath.dirname(opf_path)
        item_of = {item.path.casefold(): ident for ident, item in package.manifest.items()}
        names = [info.filename for info in archive.zip.infolist()]
        folder = _free_folder(base, names)
        css = posixpath.join(folder, "readalong.css")
        taken = package_ids(opf_root)
        source = self.job.options.get("source")
        listed = source.get("chapters") if isinstance(source, Mapping) else None
        by_chapter: Mapping[str, Any] = listed if isinstance(listed, Mapping) else {}
        replaced: dict[str, bytes] = {}
        added: list[_Member] = []
        items: list[Item] = [Item(unique_id("readalong-css", taken), _rel(css, base), "text/css")]
        overlays: list[Overlay] = []
        links: dict[str, str] = {}
        spine: list[SpineInsert] = []
        pending_generated: list[str] = []
        last_content: str | None = None
        for chapter in self.chapters_in:
            stem = self.stems[chapter.id]
            smil_path = posixpath.join(folder, f"{stem}.smil")
            audio, audio_members, audio_items = self._audio(chapter, folder, smil_path)
            href = by_chapter.get(str(chapter.index))
            member = resolve(opf_path, str(href)) if href else None
            content_id = item_of.get(member.casefold()) if member else None
            smil_id = unique_id(f"readalong-{stem}-smil", taken)
            if member is not None and content_id is not None and member not in replaced:
                result = self._mark(archive, chapter, member, smil_path, css, audio)
                data, smil, pars, clip_ms, stats = result
                document = member
                if pars and data is not None:
                    replaced[member] = data
                    links[content_id] = smil_id
                # a generated chapter waiting to be placed goes before this one
                spine.extend(SpineInsert(g, content_id) for g in pending_generated)
                pending_generated = []
                last_content = content_id
            else:
                document = posixpath.join(folder, f"{stem}.xhtml")
                place = _Place(document, smil_path, stem)
                xhtml, smil, pars, clip_ms, stats = self._generated_chapter(
                    chapter, place, css, audio
                )
                doc_id = unique_id(f"readalong-{stem}", taken)
                added.append(_Member(document, xhtml))
                items.append(
                    Item(
                        doc_id,
                        _rel(document, base),
                        "application/xhtml+xml",
                        overlay=smil_id if pars else None,
                    )
                )
                pending_generated.append(doc_id)
            if pars:
                added.append(_Member(smil_path, path=smil))
                added.extend(audio_members)
                items.append(Item(smil_id, _rel(smil_path, base), "application/smil+xml"))
                items.extend(
                    Item(
                        unique_id(f"readalong-{stem}-audio", taken),
                        _rel(i.href, base),
                        i.media_type,
                    )
                    for i in audio_items
                )
                overlays.append(Overlay(smil_id, clip_ms))
            self._record(chapter, document, smil_path if pars else None, stats, pars, clip_ms)
        # and after the last of the book's chapters read, the ones that follow it
        for idref in pending_generated:
            spine.append(SpineInsert(idref, last_content, after=True))
            last_content = idref
        if not overlays:
            self.warnings.append("no word of the track could be placed in the book's text")
        opf = amend_package(
            opf_root,
            items=items,
            overlays=overlays,
            links=links,
            spine=spine,
            narrator=self.book.narrator,
        )
        replaced[opf_path] = opf
        members: list[_Member] = []
        for info in archive.zip.infolist():
            if info.filename == "mimetype":
                continue
            if info.filename in replaced:
                members.append(_Member(info.filename, replaced[info.filename], info=info))
            elif info.is_dir():
                members.append(_Member(info.filename, b"", info=info))
            else:
                members.append(_Member(info.filename, archive.read(info.filename), info=info))
        members.append(_Member(css, STYLESHEET.encode()))
        return members + added

    def _mark(
        self,
        archive: Archive,
        chapter: Chapter,
        member: str,
        smil: str,
        css: str,
        audio: AudioTrack,
    ) -> tuple[bytes | None, Path, int, int, MarkStats]:
        """Mark one of the book's documents with a chapter's words: (its new bytes or None,
        the SMIL file, pars, clip ms, stats)."""
        text_layout = layout(chapter.text, chapter.title)
        root = parse_content(archive.markup(member), f"{member} in {archive.name}")
        if root is None:
            stats = MarkStats()
            for word in self._words(chapter):
                stats.words += 1
                if is_voiced(word):
                    stats.unplaced += 1
                else:
                    stats.silent += 1
            self.warnings.append(
                f"{member} is not well-formed XHTML: chapter {chapter.index} has no overlay"
            )
            return None, self.work / "none.smil", 0, 0, stats
        document, groups = mark_document(
            root, self._words(chapter), text_layout, f"ra{chapter.index}-"
        )
        path, pars, clip_ms = self._overlay(chapter, groups, member, smil, audio)
        data = document.finish(posixpath.relpath(css, posixpath.dirname(member))) if pars else None
        return data, path, pars, clip_ms, document.stats


def _rel(path: str, base: str) -> str:
    """A zip path as an href relative to the folder ``base``."""
    return posixpath.relpath(path, base or ".")


def _free_folder(base: str, names: Sequence[str]) -> str:
    """A folder beside the package document that the book does not use: ``readalong``,
    else ``readalong-2`` ..."""
    used = {n.casefold() for n in names}
    candidate, number = "readalong", 1
    while any(n.startswith(posixpath.join(base, candidate).casefold() + "/") for n in used):
        number += 1
        candidate = f"readalong-{number}"
    return posixpath.join(base, candidate) if base else candidate


__all__ = [
    "ReadAlong",
    "ReadAlongChapter",
    "check_level",
    "store_source",
    "write_read_along",
]
