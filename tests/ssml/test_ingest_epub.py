"""Tests for EPUB ingest: spine, titles, matter skipping, broken and hostile archives."""

from __future__ import annotations

import struct
import time
import zipfile
from pathlib import Path

import pytest

from narrate.errors import DocumentTooLargeError, EmptyDocumentError, MalformedDocumentError
from ssml.ingest import archive as archive_module
from ssml.ingest import epub, load
from ssml.ingest.archive import ZipLimits, read_member
from ssml.ingest.epub import is_matter

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"
TIME_MACHINE = CORPUS / "h-g-wells_the-time-machine.epub"

CONTAINER = """<?xml version="1.0" encoding="utf-8"?>
<container xmlns="urn:oasis:names:tc:opendocument:xmlns:container" version="1.0">
<rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/>
</rootfiles></container>"""


def xhtml(body: str, body_type: str = "", title: str = "x") -> str:
    attr = f' epub:type="{body_type}"' if body_type else ""
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<html xmlns="http://www.w3.org/1999/xhtml" xmlns:epub="http://www.idpf.org/2007/ops">'
        f"<head><title>{title}</title></head><body{attr}>{body}</body></html>"
    )


def opf(
    items: list[str],
    *,
    extra_manifest: str = "",
    spine_attrs: str = "",
    linear_no: tuple[str, ...] = (),
    guide: str = "",
    nav: bool = True,
) -> str:
    manifest = "".join(
        f'<item id="{i}" href="{i}" media-type="application/xhtml+xml"/>' for i in items
    )
    if nav:
        manifest += (
            '<item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" properties="nav"/>'
        )
    no = ' linear="no"'
    spine = "".join(f'<itemref idref="{i}"{no if i in linear_no else ""}/>' for i in items)
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<package xmlns="http://www.idpf.org/2007/opf" version="3.0" unique-identifier="u">'
        '<metadata xmlns:dc="http://purl.org/dc/elements/1.1/">'
        "<dc:title>A Book</dc:title><dc:language>en</dc:language></metadata>"
        f"<manifest>{manifest}{extra_manifest}</manifest>"
        f"<spine{spine_attrs}>{spine}</spine>{guide}</package>"
    )


def nav_doc(toc: dict[str, str], landmarks: dict[str, str] | None = None) -> str:
    entries = "".join(f'<li><a href="{h}">{t}</a></li>' for h, t in toc.items())
    marks = "".join(
        f'<li><a href="{h}" epub:type="{t}">{t}</a></li>' for h, t in (landmarks or {}).items()
    )
    return xhtml(
        f'<nav epub:type="toc"><ol>{entries}</ol></nav>'
        f'<nav epub:type="landmarks"><ol>{marks}</ol></nav>'
    )


def write_epub(
    path: Path,
    files: dict[str, str | bytes],
    *,
    mimetype: bytes | None = b"application/epub+zip",
    container: str | None = CONTAINER,
) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        if mimetype is not None:
            archive.writestr("mimetype", mimetype, compress_type=zipfile.ZIP_STORED)
        if container is not None:
            archive.writestr("META-INF/container.xml", container)
        for name, data in files.items():
            archive.writestr(name, data, compress_type=zipfile.ZIP_DEFLATED)
    return path


def simple_book(tmp_path: Path, **chapters: str) -> dict[str, str | bytes]:
    """OEBPS files for chapters given as id=body (ids become file names)."""
    ids = list(chapters)
    files: dict[str, str | bytes] = {f"OEBPS/{i}": xhtml(b) for i, b in chapters.items()}
    files["OEBPS/content.opf"] = opf(ids)
    files["OEBPS/nav.xhtml"] = nav_doc({})
    return files


def book_path(tmp_path: Path) -> Path:
    return tmp_path / "book.epub"


# --- the Time Machine -----------------------------------------------------------------


@pytest.fixture
def time_machine(corpus: Path) -> Path:
    return corpus / TIME_MACHINE.name


ROMAN = ["I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII"]


def test_time_machine_chapters(time_machine: Path) -> None:
    doc = load(time_machine)
    assert doc.format == "epub"
    assert (doc.title, doc.language) == ("The Time Machine", "en-GB")
    assert [c.title for c in doc.chapters] == [*ROMAN, "Epilogue"]
    assert [c.heading for c in doc.chapters] == [f"Chapter {n}" for n in range(1, 13)] + [
        "Epilogue"
    ]
    assert [c.source for c in doc.chapters] == [
        *(f"text/chapter-{n}.xhtml" for n in range(1, 13)),
        "text/epilogue.xhtml",
    ]
    assert doc.skipped == ("Titlepage", "Imprint", "Endnotes", "Colophon", "Uncopyright")


def test_time_machine_text(time_machine: Path) -> None:
    doc = load(time_machine)
    first = doc.chapters[0]
    assert first.paragraphs[0].startswith("The Time Traveller (for so it will be convenient")
    assert first.paragraphs[0] != "I"  # the <h2> is the heading, not body text
    assert "this way — marking the points" in first.paragraphs[0]
    assert sum(len(c.paragraphs) for c in doc.chapters) == 308
    eighth = " ".join(doc.chapters[7].paragraphs)
    assert "sloped at all. The end I had come in at" in eighth  # noteref "1" dropped
    everything = "\n".join(p for c in doc.chapters for p in c.blocks)
    for bad in ("\u2060", "\u200a", "↩", "Standard Ebooks", "Uncopyright", "\n\n\n"):
        assert bad not in everything
    assert all(p and "\n" not in p for c in doc.chapters for p in c.paragraphs)


def test_time_machine_epub_and_markdown_agree(time_machine: Path) -> None:
    markdown = time_machine.with_suffix(".md")
    from_epub, from_md = load(time_machine), load(markdown)
    assert [c.paragraphs for c in from_epub.chapters] == [c.paragraphs for c in from_md.chapters]
    assert [c.heading for c in from_epub.chapters] == [c.heading for c in from_md.chapters]


def test_time_machine_with_matter(time_machine: Path) -> None:
    doc = load(time_machine, include_matter=True)
    titles = [c.title for c in doc.chapters]
    assert titles == [
        "Titlepage",
        "Imprint",
        *ROMAN,
        "Epilogue",
        "Endnotes",
        "Colophon",
        "Uncopyright",
    ]
    assert doc.skipped == ()
    endnotes = doc.chapters[titles.index("Endnotes")]
    assert endnotes.paragraphs == (
        "It may be, of course, that the floor did not slope, but that the museum was built "
        "into the side of a hill. — Ed.",
    )


def test_time_machine_sniffed_without_extension(time_machine: Path, tmp_path: Path) -> None:
    copy = tmp_path / "book.bin"
    copy.write_bytes(time_machine.read_bytes())
    assert len(load(copy).chapters) == 13


# --- structure, titles ----------------------------------------------------------------


def test_spine_order_and_title_fallbacks(tmp_path: Path) -> None:
    files: dict[str, str | bytes] = {
        "OEBPS/b.xhtml": xhtml("<h2>Heading B</h2><p>Bee.</p>"),
        "OEBPS/a.xhtml": xhtml("<section><h1>Ignored</h1><p>Ay.</p></section>"),
        "OEBPS/the_third-one.xhtml": xhtml("<p>No heading here.</p>"),
        "OEBPS/hidden.xhtml": xhtml("<p>Not linear.</p>"),
        "OEBPS/content.opf": opf(
            ["b.xhtml", "a.xhtml", "the_third-one.xhtml", "hidden.xhtml"],
            linear_no=("hidden.xhtml",),
        ),
        "OEBPS/nav.xhtml": nav_doc({"a.xhtml#start": "Chapter IV: The Sphinx"}),
    }
    doc = load(write_epub(book_path(tmp_path), files))
    assert [(c.title, c.heading, c.paragraphs) for c in doc.chapters] == [
        ("Heading B", "Heading B", ("Bee.",)),
        ("Chapter IV: The Sphinx", "Chapter 4: The Sphinx", ("Ignored", "Ay.")),
        # no toc entry and no heading: the continuation of a split chapter, not re-announced
        ("Chapter IV: The Sphinx", "", ("No heading here.",)),
    ]
    assert [c.source for c in doc.chapters] == ["b.xhtml", "a.xhtml", "the_third-one.xhtml"]
    assert (doc.title, doc.language) == ("A Book", "en")


def test_title_from_file_stem_without_toc(tmp_path: Path) -> None:
    files = simple_book(tmp_path, **{"the_third-one.xhtml": "<p>No heading here.</p>"})
    doc = load(write_epub(book_path(tmp_path), files))
    assert [(c.title, c.heading) for c in doc.chapters] == [("The Third One", "The Third One")]


def test_leading_headings_repeating_the_title_are_not_body(tmp_path: Path) -> None:
    files = simple_book(
        tmp_path,
        **{
            "c1.xhtml": "<header><h2>Chapter 1</h2><p epub:type='title'>Down</p></header>"
            "<p>Text.</p>",
            "c2.xhtml": "<h2>II</h2><h3>Chapter 2</h3><h3>Subtitle</h3><p>Two.</p><h3>II</h3>",
        },
    )
    files["OEBPS/nav.xhtml"] = nav_doc({"c1.xhtml": "Chapter 1: Down", "c2.xhtml": "II"})
    doc = load(write_epub(book_path(tmp_path), files))
    assert doc.chapters[0].paragraphs == ("Down", "Text.")
    assert doc.chapters[1].paragraphs == ("Subtitle", "Two.", "II")


def test_epub2_ncx_titles_and_guide(tmp_path: Path) -> None:
    def point(label: str, src: str, inner: str = "") -> str:
        return (
            f"<navPoint><navLabel><text>{label}</text></navLabel>"
            f'<content src="{src}"/>{inner}</navPoint>'
        )

    ncx = (
        '<?xml version="1.0"?><ncx xmlns="http://www.daisy.org/z3986/2005/ncx/" version="2005-1">'
        "<navMap>"
        + point("Cover", "cover.html")
        + point("Chapter I", "text/ch1.html", point("Inner", "text/ch1.html#x"))
        + point("Rights", "legal.html")
        + "</navMap></ncx>"
    )
    manifest = (
        '<item id="ncx" href="toc.ncx" media-type="application/x-dtbncx+xml"/>'
        '<item id="cover" href="cover.html" media-type="application/xhtml+xml"/>'
        '<item id="ch1" href="text/ch1.html" media-type="application/xhtml+xml"/>'
        '<item id="legal" href="legal.html" media-type="application/xhtml+xml"/>'
    )
    package = (
        '<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="2.0">'
        '<metadata xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>Old</dc:title></metadata>'
        f'<manifest>{manifest}</manifest><spine toc="ncx"><itemref idref="cover"/>'
        '<itemref idref="ch1"/><itemref idref="legal"/></spine>'
        '<guide><reference type="copyright-page" href="legal.html" title="Rights"/></guide>'
        "</package>"
    )
    files: dict[str, str | bytes] = {
        "OEBPS/content.opf": package,
        "OEBPS/toc.ncx": ncx,
        "OEBPS/cover.html": xhtml("<p>Cover words.</p>"),
        "OEBPS/text/ch1.html": xhtml("<h1>Chapter I</h1><p>Once.</p>"),
        "OEBPS/legal.html": xhtml("<p>All rights reserved.</p>"),
    }
    doc = load(write_epub(book_path(tmp_path), files))
    assert [(c.title, c.heading, c.paragraphs) for c in doc.chapters] == [
        ("Chapter I", "Chapter 1", ("Once.",))
    ]
    assert doc.skipped == ("Cover", "Rights")


def test_heading_only_item_merges_into_next(tmp_path: Path) -> None:
    files = simple_book(
        tmp_path,
        **{
            "part.xhtml": "<h1>Part II</h1>",
            "blank.xhtml": "<p><img src='x.png' alt='decoration'/></p>",
            "c.xhtml": "<h2>Chapter 5</h2><p>Body.</p>",
        },
    )
    doc = load(write_epub(book_path(tmp_path), files))
    assert [(c.title, c.heading, c.paragraphs) for c in doc.chapters] == [
        ("Chapter 5", "Part 2. Chapter 5", ("Body.",))  # the part is said before the chapter
    ]


# --- matter ---------------------------------------------------------------------------


def test_matter_by_epub_type_landmarks_and_file_name(tmp_path: Path) -> None:
    chapters = {
        "a.xhtml": ("frontmatter", "<section epub:type='titlepage'><h1>A Book</h1></section>"),
        "b.xhtml": (
            "frontmatter",
            "<section epub:type='preface'><h2>Preface</h2><p>Why.</p></section>",
        ),
        "c.xhtml": (
            "bodymatter",
            "<section epub:type='prologue'><h2>Prologue</h2><p>Pro.</p></section>",
        ),
        "d.xhtml": (
            "bodymatter",
            "<section epub:type='halftitlepage'><h2>Half</h2><p>Half.</p></section>",
        ),
        "e.xhtml": (
            "",
            "<h2>Chapter 1</h2><p>One.<a epub:type='noteref' href='n.xhtml#n1'>1</a></p>",
        ),
        "n.xhtml": ("", "<h2>Notes</h2><ol><li id='n1'><p>A note.</p></li></ol>"),
        "copyright.xhtml": ("", "<p>Copyright 2024.</p>"),
        "g.xhtml": (
            "backmatter",
            "<section epub:type='acknowledgments'><h2>Thanks</h2><p>Ta.</p></section>",
        ),
        "h.xhtml": ("backmatter", "<section epub:type='index'><h2>Index</h2><p>a, 1</p></section>"),
    }
    files: dict[str, str | bytes] = {
        f"OEBPS/{name}": xhtml(body, kind) for name, (kind, body) in chapters.items()
    }
    files["OEBPS/content.opf"] = opf(list(chapters))
    files["OEBPS/nav.xhtml"] = nav_doc(
        {"a.xhtml": "Title Page", "copyright.xhtml": "Legal", "n.xhtml": "Notes"},
        landmarks={"n.xhtml": "backmatter endnotes", "e.xhtml": "bodymatter"},
    )
    path = write_epub(book_path(tmp_path), files)
    doc = load(path)
    assert [c.title for c in doc.chapters] == ["Preface", "Prologue", "Chapter 1", "Thanks"]
    assert doc.chapters[2].paragraphs == ("One.",)
    assert doc.skipped == ("Title Page", "Half", "Notes", "Legal", "Index")
    everything = load(path, include_matter=True)
    assert [c.title for c in everything.chapters] == [
        "Title Page",
        "Preface",
        "Prologue",
        "Half",
        "Chapter 1",
        "Notes",
        "Legal",
        "Thanks",
        "Index",
    ]
    assert everything.chapters[0].paragraphs == ("A Book",)  # differs from the toc title
    assert everything.chapters[5].paragraphs == ("A note.",)


@pytest.mark.parametrize(
    ("types", "signals", "path", "title", "matter"),
    [
        ({"bodymatter", "chapter"}, set(), "text/chapter-1.xhtml", "I", False),
        ({"frontmatter"}, set(), "text/foreword.xhtml", "Foreword", False),
        ({"frontmatter", "titlepage"}, set(), "x.xhtml", "x", True),
        ({"backmatter", "copyright-page"}, set(), "text/uncopyright.xhtml", "Uncopyright", True),
        (set(), {"endnotes"}, "x.xhtml", "x", True),
        (set(), {"titlepage"}, "x.xhtml", "x", True),  # EPUB 2 guide "title-page"
        ({"chapter"}, {"endnotes"}, "x.xhtml", "x", False),
        (set(), set(), "OEBPS/cover.xhtml", "x", True),
        (set(), set(), "OEBPS/colophon.html", "x", True),
        (set(), set(), "OEBPS/part0001.html", "Table of Contents", True),
        (set(), set(), "OEBPS/index_split_000.html", "Chapter 1", False),
        (set(), set(), "OEBPS/epilogue.xhtml", "Epilogue", False),
    ],
)
def test_is_matter(types: set[str], signals: set[str], path: str, title: str, matter: bool) -> None:
    assert is_matter(types, signals, path, title) is matter


def test_only_matter_is_empty_with_hint(tmp_path: Path) -> None:
    files = simple_book(tmp_path, **{"cover.xhtml": "<p>Cover text.</p>"})
    with pytest.raises(EmptyDocumentError, match="Cover") as info:
        load(write_epub(book_path(tmp_path), files))
    assert "--include-matter" in str(info.value)


# --- broken archives ------------------------------------------------------------------


def broken_message(path: Path) -> str:
    with pytest.raises(MalformedDocumentError) as info:
        load(path)
    message = str(info.value)
    assert "EPUB" in message or ".epub" in message  # says it is the EPUB, or names it
    assert "epubcheck" in message  # and says how to find what is wrong
    assert "Traceback" not in message
    return message


def test_corrupt_zip(tmp_path: Path) -> None:
    path = tmp_path / "bad.epub"
    path.write_bytes(b"PK\x03\x04 this is not really a zip file")
    assert "bad.epub is not a readable EPUB (not a zip archive" in broken_message(path)


def test_truncated_zip(tmp_path: Path, time_machine: Path) -> None:
    path = tmp_path / "cut.epub"
    path.write_bytes(time_machine.read_bytes()[:50_000])
    broken_message(path)


def test_missing_container(tmp_path: Path) -> None:
    path = write_epub(
        book_path(tmp_path), simple_book(tmp_path, **{"c.xhtml": "<p>x</p>"}), container=None
    )
    assert "META-INF/container.xml is missing" in broken_message(path)


def test_missing_opf(tmp_path: Path) -> None:
    files = simple_book(tmp_path, **{"c.xhtml": "<p>x</p>"})
    del files["OEBPS/content.opf"]
    assert "OEBPS/content.opf" in broken_message(write_epub(book_path(tmp_path), files))


def test_spine_item_missing_from_archive(tmp_path: Path) -> None:
    files = simple_book(tmp_path, **{"c.xhtml": "<p>x</p>", "d.xhtml": "<p>y</p>"})
    del files["OEBPS/d.xhtml"]
    assert "OEBPS/d.xhtml is missing" in broken_message(write_epub(book_path(tmp_path), files))


def test_spine_idref_not_in_manifest(tmp_path: Path) -> None:
    files = simple_book(tmp_path, **{"c.xhtml": "<p>x</p>"})
    files["OEBPS/content.opf"] = str(files["OEBPS/content.opf"]).replace(
        "</spine>", '<itemref idref="ghost"/></spine>'
    )
    assert "'ghost'" in broken_message(write_epub(book_path(tmp_path), files))


def test_wrong_mimetype(tmp_path: Path) -> None:
    files = simple_book(tmp_path, **{"c.xhtml": "<p>x</p>"})
    path = write_epub(book_path(tmp_path), files, mimetype=b"application/zip")
    assert "mimetype" in broken_message(path)


def test_malformed_opf(tmp_path: Path) -> None:
    files = simple_book(tmp_path, **{"c.xhtml": "<p>x</p>"})
    files["OEBPS/content.opf"] = "<package><manifest></package>"
    assert "not well-formed" in broken_message(write_epub(book_path(tmp_path), files))


def test_tag_soup_chapter_is_read_leniently(tmp_path: Path) -> None:
    files = simple_book(tmp_path, **{"c.xhtml": "x"})
    files["OEBPS/c.xhtml"] = "<html><body><h1>Soup</h1><p>Unclosed <b>bold<p>Next</body></html>"
    doc = load(write_epub(book_path(tmp_path), files))
    assert doc.chapters[0].paragraphs == ("Unclosed bold", "Next")


def test_plain_zip_without_extension_is_unsupported(tmp_path: Path) -> None:
    from narrate.errors import UnsupportedFormatError

    path = tmp_path / "archive.bin"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "hello")
    with pytest.raises(UnsupportedFormatError):
        load(path)


# --- hostile archives -----------------------------------------------------------------

XXE_CHAPTER = """<?xml version="1.0"?>
<!DOCTYPE html [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<html xmlns="http://www.w3.org/1999/xhtml"><body><p>&xxe;</p></body></html>"""

LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE package [<!ENTITY a "aaaaaaaaaa">'
    + "".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(9))
    + ']><package xmlns="http://www.idpf.org/2007/opf"><metadata><title>&j;</title></metadata>'
    "</package>"
)


def test_xxe_in_chapter_refused(tmp_path: Path) -> None:
    files = simple_book(tmp_path, **{"c.xhtml": "x"})
    files["OEBPS/c.xhtml"] = XXE_CHAPTER
    with pytest.raises(MalformedDocumentError, match="entities") as info:
        load(write_epub(book_path(tmp_path), files))
    assert "root:" not in str(info.value)


def test_xxe_in_container_refused(tmp_path: Path) -> None:
    container = CONTAINER.replace(
        "<container", '<!DOCTYPE c [<!ENTITY e SYSTEM "file:///etc/passwd">]><container'
    )
    files = simple_book(tmp_path, **{"c.xhtml": "<p>x</p>"})
    with pytest.raises(MalformedDocumentError, match="entities"):
        load(write_epub(book_path(tmp_path), files, container=container))


def test_billion_laughs_opf_refused_quickly(tmp_path: Path) -> None:
    files = simple_book(tmp_path, **{"c.xhtml": "<p>x</p>"})
    files["OEBPS/content.opf"] = LAUGHS
    start = time.perf_counter()
    with pytest.raises(MalformedDocumentError, match="billion laughs"):
        load(write_epub(book_path(tmp_path), files))
    assert time.perf_counter() - start < 1


def test_zip_bomb_member_refused(tmp_path: Path) -> None:
    files = simple_book(tmp_path, **{"c.xhtml": "<p>x</p>"})
    files["OEBPS/c.xhtml"] = xhtml("<p>" + " " * (8 * 1024 * 1024) + "</p>")  # ~1000:1
    start = time.perf_counter()
    with pytest.raises(DocumentTooLargeError, match="zip bomb") as info:
        load(write_epub(book_path(tmp_path), files))
    assert time.perf_counter() - start < 2
    assert "OEBPS/c.xhtml" in str(info.value)


def _patch_sizes(data: bytes, member: str, size: int) -> bytes:
    """Rewrite the declared uncompressed size of ``member`` in both zip headers."""
    out = bytearray(data)
    name = member.encode()
    for signature, field_offset, name_offset in ((b"PK\x03\x04", 22, 30), (b"PK\x01\x02", 24, 46)):
        start = 0
        while (at := out.find(signature, start)) != -1:
            if out[at + name_offset : at + name_offset + len(name)] == name:
                struct.pack_into("<I", out, at + field_offset, size)
            start = at + 4
    return bytes(out)


def test_zip_bomb_with_lying_header_expands_nothing(tmp_path: Path) -> None:
    files = simple_book(tmp_path, **{"c.xhtml": "<p>x</p>"})
    files["OEBPS/c.xhtml"] = xhtml("<p>" + " " * (8 * 1024 * 1024) + "</p>")
    path = write_epub(book_path(tmp_path), files)
    path.write_bytes(_patch_sizes(path.read_bytes(), "OEBPS/c.xhtml", 2000))
    start = time.perf_counter()
    with pytest.raises(MalformedDocumentError, match="cannot be unpacked"):
        load(path)
    assert time.perf_counter() - start < 2


def test_read_member_stops_at_actual_size_cap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "z.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("big", b"\0" * 3_000_000)
    # Pretend the directory's declared sizes passed the check: the stream cap must still hold.
    monkeypatch.setattr(archive_module, "_check_declared", lambda *args: None)
    limits = ZipLimits(max_member_size=1_000_000, ratio_floor=10, chunk_size=4096)
    with zipfile.ZipFile(path) as archive, pytest.raises(DocumentTooLargeError):
        read_member(archive, "big", "z.zip", limits)


@pytest.mark.parametrize(
    ("limits", "match"),
    [
        (ZipLimits(max_members=3), "files inside; the limit is 3"),
        (ZipLimits(max_member_size=100), "larger than the 0 MB limit"),
        (ZipLimits(max_total_size=1000), "would unpack to more than"),
    ],
)
def test_zip_caps(tmp_path: Path, limits: ZipLimits, match: str) -> None:
    files = simple_book(tmp_path, **{"c.xhtml": "<p>" + "word " * 300 + "</p>"})
    data = write_epub(book_path(tmp_path), files).read_bytes()
    with pytest.raises(DocumentTooLargeError, match=match):
        epub.parse(data, "book.epub", "book", limits=limits)
