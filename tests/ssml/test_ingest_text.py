"""Tests for plain-text ingest and the format-independent ``ssml.ingest`` API."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from narrate.errors import (
    DocumentTooLargeError,
    EmptyDocumentError,
    InputError,
    MalformedDocumentError,
    UnsupportedFormatError,
    UsageError,
)
from ssml.document import Chapter, Document
from ssml.ingest import FORMATS, load, parse_chapter_range, select_chapters
from ssml.ingest.text import is_heading_line

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return path


# --- plain text -----------------------------------------------------------------------

BOOK = """\
THE LITTLE BOOK
by Somebody

Chapter 1

It was a dark
and stormy night.

The rain fell.

CHAPTER IV.

Then morning came.

Chapter One: The Beginning
A heading with its first paragraph right under it.

Epilogue

The end.
"""


def test_text_headings_start_chapters(tmp_path: Path) -> None:
    doc = load(write(tmp_path, "book.txt", BOOK))
    assert doc.format == "text"
    assert [c.title for c in doc.chapters] == [
        "Introduction",
        "Chapter 1",
        "CHAPTER IV.",
        "Chapter One: The Beginning",
        "Epilogue",
    ]
    assert [c.heading for c in doc.chapters] == [
        "",  # a made-up title is not read aloud
        "Chapter 1",
        "Chapter 4",
        "Chapter 1: The Beginning",
        "Epilogue",
    ]
    assert doc.chapters[0].paragraphs == ("THE LITTLE BOOK by Somebody",)
    assert doc.chapters[1].paragraphs == ("It was a dark and stormy night.", "The rain fell.")
    assert doc.chapters[3].paragraphs == ("A heading with its first paragraph right under it.",)
    assert doc.chapters[1].source == "line 4"
    assert doc.chapters[4].source == "line 18"


def test_text_without_headings_is_one_chapter_titled_from_file_name(tmp_path: Path) -> None:
    doc = load(write(tmp_path, "my_great-story.txt", "One\nparagraph.\n\n\nTwo.\n"))
    assert len(doc.chapters) == 1
    chapter = doc.chapters[0]
    assert chapter.title == "My Great Story"
    assert chapter.paragraphs == ("One paragraph.", "Two.")
    assert chapter.source == "line 1"


def test_text_consecutive_headings_merge_into_next_chapter(tmp_path: Path) -> None:
    doc = load(write(tmp_path, "b.txt", "Part II\n\nChapter 3\n\nBody.\n"))
    assert [c.title for c in doc.chapters] == ["Chapter 3"]
    assert doc.chapters[0].heading == "Part 2. Chapter 3"
    assert doc.chapters[0].paragraphs == ("Body.",)


def test_text_heading_like_sentences_are_body(tmp_path: Path) -> None:
    text = "Chapter 1\n\nPart 2 of the plan was simple.\n\nChapter and verse.\n"
    doc = load(write(tmp_path, "b.txt", text))
    assert [c.title for c in doc.chapters] == ["Chapter 1"]
    assert doc.chapters[0].paragraphs == ("Part 2 of the plan was simple.", "Chapter and verse.")


def test_text_normalises_paragraphs(tmp_path: Path) -> None:
    doc = load(write(tmp_path, "b.txt", "“Well,”\u2060—he said\u00a0…\n"))
    assert doc.chapters[0].paragraphs == ('"Well," — he said ...',)


def test_text_cjk_lines_join_without_space(tmp_path: Path) -> None:
    doc = load(write(tmp_path, "zh.txt", "子曰：学而\n时习之。\n"))
    assert doc.chapters[0].paragraphs == ("子曰：学而时习之。",)


def test_text_crlf_and_bom(tmp_path: Path) -> None:
    doc = load(write(tmp_path, "b.txt", b"\xef\xbb\xbfHello\r\nworld.\r\n\r\nBye.\r\n"))
    assert doc.chapters[0].paragraphs == ("Hello world.", "Bye.")


def test_text_not_utf8_names_offset_and_fix(tmp_path: Path) -> None:
    path = write(tmp_path, "latin1.txt", "Café au lait".encode("latin-1"))
    with pytest.raises(MalformedDocumentError) as info:
        load(path)
    message = str(info.value)
    assert "byte offset 3" in message
    assert "UTF-8" in message
    assert "save the file as UTF-8" in message
    assert "Traceback" not in message


def test_text_not_utf8_offset_counts_the_bom(tmp_path: Path) -> None:
    path = write(tmp_path, "b.txt", b"\xef\xbb\xbfab\xff")
    with pytest.raises(MalformedDocumentError, match="byte offset 5"):
        load(path)


@pytest.mark.parametrize("content", ["", "   \n\n\t\n", "\u2060\u200b\n"])
def test_empty_text_is_an_empty_document(tmp_path: Path, content: str) -> None:
    with pytest.raises(EmptyDocumentError, match="no text"):
        load(write(tmp_path, "empty.txt", content))


def test_lunyu_is_cut_at_its_book_names(tmp_path: Path, corpus: Path) -> None:
    path = corpus / "lunyu_ch1-8_zh.txt"
    doc = load(path)
    titles = ["学而篇", "为政篇", "八佾篇", "里仁篇", "公冶长篇", "雍也篇", "述而篇", "泰伯篇"]
    assert [c.title for c in doc.chapters] == titles
    assert [c.heading for c in doc.chapters] == titles  # spoken as they are
    assert sum(len(c.paragraphs) for c in doc.chapters) == 209
    first = doc.chapters[0].paragraphs[0]
    assert first.startswith("子曰：“学而时习之，不亦说乎？")  # quotes kept
    assert all("\n" not in p and p == p.strip() for c in doc.chapters for p in c.paragraphs)


@pytest.mark.parametrize(
    ("line", "heading"),
    [
        ("第一章", True),
        ("第十二回　宝玉挨打", True),
        ("第3章: 风雪", True),
        ("卷三", True),
        ("第1話", True),
        ("学而篇", True),
        ("第一章讲的是什么。", False),  # a sentence, not a heading
        ("子曰：“巧言令色，鲜矣仁！”", False),
        ("这是一篇很长的文章讲了很多事情的篇", False),
    ],
)
def test_chinese_and_japanese_chapter_headings(line: str, heading: bool) -> None:
    assert is_heading_line(line) is heading


# --- load: paths, sizes, formats ------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist") as info:
        load(tmp_path / "nope.md")
    assert "check the path" in str(info.value)


def test_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a regular file"):
        load(tmp_path)


def test_too_large_input(tmp_path: Path) -> None:
    path = tmp_path / "huge.txt"
    with path.open("wb") as handle:
        handle.truncate(50 * 1024 * 1024 + 1)  # sparse: instant
    with pytest.raises(DocumentTooLargeError, match="limit is 50 MB") as info:
        load(path)
    assert "split the document" in str(info.value)


def test_unknown_extension_is_unsupported(tmp_path: Path) -> None:
    path = write(tmp_path, "notes.rtf", "{\\rtf1 hello}")
    with pytest.raises(UnsupportedFormatError) as info:
        load(path)
    message = str(info.value)
    assert "notes.rtf" in message
    for fmt in ("Markdown", "plain text", "HTML", "EPUB", ".md", ".txt", ".html", ".epub"):
        assert fmt in message
    assert "extension" in message


def test_format_override(tmp_path: Path) -> None:
    path = write(tmp_path, "notes.rtf", "# Title\n\nBody *text*.\n")
    doc = load(path, format="markdown")
    assert doc.format == "markdown"
    assert doc.chapters[0].paragraphs == ("Body text.",)
    assert load(path, format="text").chapters[0].paragraphs == ("# Title", "Body text.")


def test_unknown_format_name_is_usage_error(tmp_path: Path) -> None:
    path = write(tmp_path, "a.txt", "x")
    with pytest.raises(UsageError, match="unknown input format 'pdf'") as info:
        load(path, format="pdf")
    assert ", ".join(FORMATS) in str(info.value)


def test_html_is_sniffed_without_extension(tmp_path: Path) -> None:
    path = write(tmp_path, "page", "<!DOCTYPE html><html><body><h1>T</h1><p>Hi.</p></body></html>")
    doc = load(path)
    assert doc.format == "html"
    assert doc.chapters[0].paragraphs == ("Hi.",)


@pytest.mark.parametrize(
    ("name", "fmt"),
    [("a.md", "markdown"), ("a.MARKDOWN", "markdown"), ("a.text", "text"), ("a.htm", "html")],
)
def test_extension_detection(tmp_path: Path, name: str, fmt: str) -> None:
    assert load(write(tmp_path, name, "Hello there.\n")).format == fmt


def test_load_is_fast_on_a_big_text(tmp_path: Path) -> None:
    path = write(tmp_path, "big.txt", ("Chapter 1\n\n" + "Word " * 200 + "\n\n") * 500)
    start = time.perf_counter()
    doc = load(path)
    assert time.perf_counter() - start < 2
    assert len(doc.chapters) == 500


# --- chapter selection ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "numbers"),
    [
        ("3", [3]),
        ("3-5", [3, 4, 5]),
        ("1,3-4", [1, 3, 4]),
        (" 2 , 1 ", [1, 2]),
        ("4-4,2", [2, 4]),
        ("1-3,2-4", [1, 2, 3, 4]),
    ],
)
def test_parse_chapter_range(spec: str, numbers: list[int]) -> None:
    assert parse_chapter_range(spec) == numbers


@pytest.mark.parametrize(
    ("spec", "why"),
    [
        ("5-3", "runs backwards"),
        ("0", "numbered from 1"),
        ("0-2", "numbered from 1"),
        ("x", "not a chapter number"),
        ("", "not a chapter number"),
        ("1,,2", "not a chapter number"),
        ("-3", "not a chapter number"),
        ("1-2-3", "not a chapter number"),
    ],
)
def test_parse_chapter_range_rejects_nonsense(spec: str, why: str) -> None:
    with pytest.raises(UsageError, match=why) as info:
        parse_chapter_range(spec)
    assert "e.g. 1,3-5" in str(info.value)


def _doc(n: int) -> Document:
    chapters = tuple(Chapter(title=f"C{i}", paragraphs=(f"p{i}",)) for i in range(1, n + 1))
    return Document(chapters=chapters, title="T", format="text", skipped=("Cover",))


def test_select_chapters_keeps_document_order() -> None:
    doc = select_chapters(_doc(5), [4, 2])
    assert [c.title for c in doc.chapters] == ["C2", "C4"]
    assert (doc.title, doc.format, doc.skipped) == ("T", "text", ("Cover",))


def test_select_chapters_out_of_range_names_valid_range() -> None:
    with pytest.raises(UsageError, match=r"chapter 4 does not exist.*valid range 1-3"):
        select_chapters(_doc(3), [2, 4])
    with pytest.raises(UsageError, match=r"chapters 0, 9 do not exist.*has 1 chapter \("):
        select_chapters(_doc(1), [9, 0, 1])


def test_select_chapters_needs_a_number() -> None:
    with pytest.raises(UsageError, match="no chapters"):
        select_chapters(_doc(3), [])
