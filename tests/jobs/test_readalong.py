"""The read-along EPUB of a job (stub engine, embedded render): valid for epubcheck, its
clips the word track's, the book's own documents marked and everything else unchanged,
asked for at render or only at fetch, and MP3 in it whatever the job's format."""

from __future__ import annotations

import json
import posixpath
import zipfile
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from jobs import context as worker_context
from jobs.export import export_job, word_track
from jobs.readalong import write_read_along
from jobs.render import RenderRequest, render
from jobs.serialize import to_data
from jobs.storage import Storage
from narrate.errors import UsageError
from narrate.settings import Settings
from renderer.stitch import AudioFormat
from ssml.readalong.words import parse_clock
from tests.conftest import SAMPLE
from tests.epub_checks import (
    check_clips_match_track,
    epubcheck,
    overlays,
    small_book_files,
    write_small_book,
    zip_names,
)

OPF = "{http://www.idpf.org/2007/opf}"


def rendered(settings: Settings, tmp_path: Path, source: Path, **request: Any) -> tuple[str, Path]:
    out = tmp_path / "out"
    report = render(settings, RenderRequest(source, engine="stub", **request), out, quiet=True)
    assert report.status == "done", report.failures
    return report.job_id, out


def track_of(settings: Settings, job_id: str) -> dict[str, Any]:
    ctx = worker_context.configure(settings)
    data: dict[str, Any] = to_data(word_track(ctx.factory, job_id))
    return data


def test_a_markdown_render_writes_a_valid_read_along_epub(
    settings: Settings, tmp_path: Path
) -> None:
    job_id, out = rendered(settings, tmp_path, SAMPLE, read_along="word")
    manifest = json.loads((out / "manifest.json").read_text())
    epub = out / manifest["read_along"]
    assert manifest["read_along"] == "the-lighthouse-keeper-s-clock.epub" and epub.is_file()
    verdict = epubcheck(epub)
    assert verdict.errors == [] and verdict.returncode == 0
    assert verdict.of("WARNING") == []
    track = track_of(settings, job_id)
    placed = check_clips_match_track(epub, track, "word")
    assert sum(placed.values()) == sum(
        1
        for c in track["chapters"]
        for w in c["words"]
        if w["end_ms"] > w["start_ms"] and any(ch.isalnum() for ch in w["text"])
    )
    assert_durations_are_the_clips(epub)
    names = zip_names(epub)
    assert names[0] == "mimetype"
    with zipfile.ZipFile(epub) as archive:
        assert archive.getinfo("mimetype").compress_type == zipfile.ZIP_STORED
        assert archive.read("mimetype") == b"application/epub+zip"


def test_an_epub_render_marks_the_books_own_documents(settings: Settings, tmp_path: Path) -> None:
    book = write_small_book(tmp_path / "small.epub")
    job_id, out = rendered(settings, tmp_path, book, read_along="sentence", book=_credits())
    epub = out / json.loads((out / "manifest.json").read_text())["read_along"]
    verdict = epubcheck(epub)
    assert verdict.errors == [] and verdict.of("WARNING") == []
    check_clips_match_track(epub, track_of(settings, job_id), "sentence")
    original = small_book_files()
    with zipfile.ZipFile(epub) as archive:
        for name in ("epub/css/book.css", "epub/images/dot.png", "epub/text/notes.xhtml"):
            assert archive.read(name) == original[name], name  # not spoken: unchanged
        assert archive.read("epub/toc.xhtml") == original["epub/toc.xhtml"]
        marked = archive.read("epub/text/chapter-4.xhtml").decode()
        package = archive.read("epub/content.opf").decode()
    assert 'id="ra1-s1"' in marked and 'id="ra1-w2"' in marked
    assert 'media-overlay="' in package and "readalong/00-opening-credits.xhtml" in package
    assert_durations_are_the_clips(epub)
    assert_ids_unique_across_the_book(epub)
    smils = overlays(epub)
    documents = {pars[0].document for pars in smils.values()}
    assert {"epub/text/chapter-4.xhtml", "epub/text/chapter-5.xhtml"} <= documents
    assert "epub/readalong/00-opening-credits.xhtml" in documents  # credits: written anew


def assert_durations_are_the_clips(epub: Path) -> None:
    """Each overlay's ``media:duration`` is the sum of its clips; the book's, their sum."""
    with zipfile.ZipFile(epub) as archive:
        opf_name = next(n for n in archive.namelist() if n.endswith(".opf"))
        package = etree.fromstring(archive.read(opf_name))
    hrefs = {
        i.get("id"): posixpath.normpath(posixpath.join(posixpath.dirname(opf_name), i.get("href")))
        for i in package.iter(f"{OPF}item")
    }
    declared = {
        m.get("refines"): parse_clock(m.text)
        for m in package.iter(f"{OPF}meta")
        if m.get("property") == "media:duration"
    }
    total = declared.pop(None)
    clips = {
        smil: sum(p.end_ms - p.begin_ms for p in pars) for smil, pars in overlays(epub).items()
    }
    assert {hrefs[ref.removeprefix("#")]: ms for ref, ms in declared.items()} == clips
    assert total == sum(clips.values())


def assert_ids_unique_across_the_book(epub: Path) -> None:
    with zipfile.ZipFile(epub) as archive:
        ours = [
            el.get("id")
            for name in archive.namelist()
            if name.endswith(".xhtml")
            for el in etree.fromstring(archive.read(name)).iter()
            if (el.get("id") or "").startswith("ra")
        ]
    assert ours and len(ours) == len(set(ours))


def _credits() -> Any:
    from jobs.book import BookOptions

    return BookOptions(credits=True)


def test_fetch_asks_for_it_for_a_job_made_without(settings: Settings, tmp_path: Path) -> None:
    book = write_small_book(tmp_path / "small.epub")
    job_id, out = rendered(settings, tmp_path, book)
    assert "read_along" not in json.loads((out / "manifest.json").read_text())
    assert not list(out.glob("*.epub"))
    ctx = worker_context.configure(settings)
    fetched = tmp_path / "fetched"
    manifest = export_job(ctx.factory, ctx.storage, job_id, fetched, read_along="word")
    assert manifest.read_along == "a-small-book.epub"
    epub = fetched / "a-small-book.epub"
    assert epubcheck(epub).errors == []
    check_clips_match_track(epub, track_of(settings, job_id), "word")
    result = write_read_along(ctx.factory, ctx.storage, job_id, tmp_path / "again", "word")
    assert result.mode == "book" and result.level == "word"
    assert result.unplaced == 1  # "x²" is MathML in the book
    assert result.placed + sum(c.covered + c.silent for c in result.chapters) + 1 == result.words
    assert result.duration_ms == sum(c.clip_ms for c in result.chapters) > 0
    with pytest.raises(UsageError):
        write_read_along(ctx.factory, ctx.storage, job_id, tmp_path / "x", "paragraph")


def test_without_the_books_bytes_the_chapters_are_written_anew(
    settings: Settings, tmp_path: Path
) -> None:
    book = write_small_book(tmp_path / "small.epub")
    job_id, _out = rendered(settings, tmp_path, book)
    ctx = worker_context.configure(settings)
    storage: Storage = ctx.storage
    for kept in (storage.root / "inputs").rglob("*.epub"):
        kept.unlink()  # a job made before the bytes were kept, or storage lost them
    result = write_read_along(ctx.factory, storage, job_id, tmp_path / "anew", "word")
    assert result.mode == "generated" and result.unplaced == 0
    assert any("written anew" in w for w in result.warnings)
    assert epubcheck(result.path).errors == []


def test_an_m4b_job_carries_mp3_chapters(settings: Settings, tmp_path: Path) -> None:
    job_id, out = rendered(settings, tmp_path, SAMPLE, read_along="word", audio=AudioFormat("m4b"))
    epub = out / json.loads((out / "manifest.json").read_text())["read_along"]
    audio = [n for n in zip_names(epub) if n.startswith("EPUB/audio/")]
    assert audio and all(n.endswith(".mp3") for n in audio)
    assert epubcheck(epub).errors == []
    check_clips_match_track(epub, track_of(settings, job_id), "word")


def test_the_source_is_kept_content_addressed(settings: Settings, tmp_path: Path) -> None:
    book = write_small_book(tmp_path / "small.epub")
    job_id, _out = rendered(settings, tmp_path, book)
    ctx = worker_context.configure(settings)
    from jobs.export import load_job

    source = load_job(ctx.factory, job_id).options["source"]
    assert isinstance(source, dict)
    assert (ctx.storage.path(source["key"])).read_bytes() == book.read_bytes()
    assert source["chapters"] == {"1": "text/chapter-4.xhtml", "2": "text/chapter-5.xhtml"}
    job_id, _out = rendered(settings, tmp_path / "md", SAMPLE)
    assert load_job(ctx.factory, job_id).options["source"] is None
