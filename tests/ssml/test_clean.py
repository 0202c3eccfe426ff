"""Characters that cannot be spoken: removed in normalisation, with a warning, in every format."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from ssml.document import Chapter, Document
from ssml.ingest import load
from ssml.ingest.clean import clean_markup_bytes, clean_text, is_unsafe, scrub_document
from ssml.lexicon import load_lexicon
from tests.ssml.test_ingest_epub import CONTAINER, nav_doc, opf, xhtml

CONTROLS = "".join(chr(c) for c in [*range(0x20), 0x7F, *range(0x80, 0xA0)] if c not in (9, 10, 13))


def xml_safe(text: str) -> bool:
    """Whether lxml takes ``text`` as element text (what SSML building needs)."""
    try:
        etree.Element("p").text = text
    except ValueError:
        return False
    return True


def test_bel_and_esc_are_removed_with_their_place() -> None:
    cleaned = clean_text("Hello\x07 world\nline \x1b[31mtwo")
    assert cleaned.text == "Hello world\nline [31mtwo"
    warning = cleaned.warning("a.md")
    assert warning is not None
    assert "U+0007 BEL at line 1, column 6" in warning
    assert "U+001B ESC at line 2, column 6" in warning
    assert warning.startswith("removed 2 characters that cannot be spoken from a.md")


def test_form_feed_and_vertical_tab_are_breaks_not_removals() -> None:
    cleaned = clean_text("page one\x0cpage two\x0bthree\x85four")
    assert cleaned.text == "page one\npage two\nthree\nfour"
    assert cleaned.removed == ()
    assert cleaned.warning("x") is None
    assert clean_text("<p>a\x0cb</p>", markup=True).text == "<p>a b</p>"


def test_surrogates_and_noncharacters_are_removed() -> None:
    cleaned = clean_text("a\ud800b\udfffc\ufffed\uffffe\ufdd0f\U0001fffeg")
    assert cleaned.text == "abcdefg"
    assert [r.code_point for r in cleaned.removed] == [
        0xD800,
        0xDFFF,
        0xFFFE,
        0xFFFF,
        0xFDD0,
        0x1FFFE,
    ]


def test_character_references_to_unsafe_characters_are_removed_in_markup() -> None:
    cleaned = clean_text("<p>a&#7;b&#x1B;c&#0;d&#xFFFE;e&#65;f&#150;g&amp;</p>", markup=True)
    assert cleaned.text == "<p>abcde&#65;f&#150;g&amp;</p>"
    assert all(r.reference for r in cleaned.removed)
    assert clean_text("a&#7;b").text == "a&#7;b", "text formats have no references"


def test_the_warning_lists_a_few_places_then_counts_the_rest() -> None:
    cleaned = clean_text("\x01" * 12)
    warning = cleaned.warning("big.txt")
    assert warning is not None
    assert warning.count("U+0001 SOH") == 5
    assert warning.endswith("(and 7 more)")


@given(st.text())
def test_clean_text_is_always_xml_safe_and_keeps_every_safe_character(text: str) -> None:
    cleaned = clean_text(text)
    assert xml_safe(cleaned.text)
    safe = [c for c in text if not is_unsafe(ord(c)) or c in "\x0b\x0c\x85"]
    assert len(cleaned.text) == len(safe)


def test_utf16_markup_is_cleaned_in_its_own_encoding() -> None:
    data = '<?xml version="1.0" encoding="UTF-16"?><p>a\x07b</p>'.encode("utf-16")
    cleaned_bytes, cleaned = clean_markup_bytes(data)
    assert cleaned_bytes.decode("utf-16") == '<?xml version="1.0" encoding="UTF-16"?><p>ab</p>'
    assert len(cleaned.removed) == 1


def test_scrub_removes_what_a_parser_decoded_and_keeps_annotation_offsets() -> None:
    from ssml.annotations import Sub

    plain = Chapter(title="T\x07", paragraphs=("one\x1btwo",))
    annotated = Chapter(
        title="S", paragraphs=("x\x07y z",), annotations=((Sub(4, 5, "zed", origin="ssml"),),)
    )
    scrubbed = scrub_document(Document(chapters=(plain, annotated), title="Bo\x00ok"))
    assert scrubbed.chapters[0].title == "T"
    assert scrubbed.chapters[0].paragraphs == ("onetwo",)
    assert scrubbed.chapters[1].paragraphs == ("x y z",), "a space keeps the offsets"
    assert scrubbed.title == "Book"
    assert len(scrubbed.warnings) == 3


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("a.md", "# Title\n\nHello\x07 there. Bell\x1b[0m.\n\nPage\x0cbreak.\n"),
        ("a.txt", "Hello\x07 there. Bell\x1b[0m.\n\nPage\x0cbreak.\n"),
        (
            "a.html",
            "<html><body><h1>Title</h1><p>Hello\x07 &#27;there. Bell\x1b.</p></body></html>",
        ),
        (
            "a.ssml",
            "<speak><p>Hello\x07 &#x1b;there. <sub alias='b\x07'>Bell</sub>\x1b.</p></speak>",
        ),
    ],
)
def test_every_text_format_is_cleaned_on_load(tmp_path: Path, name: str, body: str) -> None:
    path = tmp_path / name
    path.write_text(body, encoding="utf-8")
    document = load(path)
    text = " ".join(p for c in document.chapters for p in c.blocks)
    assert "Hello" in text
    assert "there" in text
    assert xml_safe(text)
    assert not any(c in text for c in CONTROLS)
    assert any(w.startswith("removed ") and name in w for w in document.warnings)


def test_epub_members_are_cleaned_with_the_member_named(tmp_path: Path) -> None:
    path = tmp_path / "book.epub"
    chapter = xhtml("<h1>One\x07</h1><p>It was\x1b a dark &#7;night.</p>", title="One")
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mimetype", "application/epub+zip")
        archive.writestr("META-INF/container.xml", CONTAINER)
        archive.writestr("OEBPS/content.opf", opf(["c1.xhtml"]).replace("A Book", "A\x08 Book"))
        archive.writestr("OEBPS/nav.xhtml", nav_doc({"c1.xhtml": "One"}))
        archive.writestr("OEBPS/c1.xhtml", chapter)
    document = load(path)
    assert document.title == "A Book"
    assert document.chapters[0].paragraphs == ("It was a dark night.",)
    warnings = "\n".join(document.warnings)
    assert "OEBPS/c1.xhtml in book.epub" in warnings
    assert "OEBPS/content.opf in book.epub" in warnings


def test_lexicon_control_characters_are_removed_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "names.txt"
    path.write_text("Ngu\x07yen = win\x1b\n", encoding="utf-8")
    lexicon = load_lexicon(path)
    assert lexicon.entries[0].graphemes == ("Nguyen",)
    assert lexicon.entries[0].alias == "win"
    assert lexicon.warnings and "the lexicon names.txt" in lexicon.warnings[0]
