"""DOCX ingest: chapters from heading styles, runs, emphasis, lists, tables, notes, tracked
changes, what is never read, metadata, and hostile archives."""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from pathlib import Path

import docx as python_docx
import pytest

from narrate.errors import DocumentTooLargeError, MalformedDocumentError
from ssml.annotations import Emphasis
from ssml.document import Document
from ssml.ingest import load
from ssml.ingest.archive import ZipLimits
from ssml.ingest.docx import parse
from tests.conftest import need
from tests.ssml.docx_builder import (
    OFFICE,
    core,
    make_docx,
    notes_part,
    p,
    relationships,
    run,
)


def texts(document: Document) -> list[tuple[str, list[str]]]:
    return [(c.title, list(c.paragraphs)) for c in document.chapters]


def test_a_python_docx_manuscript_reads_as_its_author_wrote_it(tmp_path: Path) -> None:
    made = python_docx.Document()
    made.core_properties.title = "The Test Manuscript"
    made.core_properties.author = "Ada Writer; Bob Editor"
    made.add_paragraph("The Test Manuscript", style="Title")
    made.add_heading("Chapter One", level=1)
    para = made.add_paragraph("It was a ")
    para.add_run("very").italic = True
    para.add_run(" dark and ")
    para.add_run("stormy").bold = True
    para.add_run(" night.")
    made.add_paragraph("Bread", style="List Bullet")
    made.add_paragraph("Wash the dishes", style="List Number")
    made.add_paragraph("Dry them", style="List Number")
    table = made.add_table(rows=2, cols=2)
    for (row, col), value in {(0, 0): "Name", (0, 1): "Age", (1, 0): "Ada", (1, 1): "36"}.items():
        table.cell(row, col).text = value
    made.add_heading("Chapter Two", level=1)
    made.add_heading("A smaller heading", level=3)
    made.add_paragraph("The end came quickly.")
    path = tmp_path / "manuscript.docx"
    made.save(str(path))

    document = load(path)
    assert document.format == "docx"
    assert texts(document) == [
        (
            "Chapter One",
            [
                "It was a very dark and stormy night.",
                "Bread.",
                "1. Wash the dishes.",
                "2. Dry them.",
                "Name, Age.",
                "Ada, 36.",
            ],
        ),
        ("Chapter Two", ["A smaller heading", "The end came quickly."]),
    ]
    first = document.chapters[0]
    assert first.heading == "The Test Manuscript. Chapter 1"  # the title page is said first
    emphasis = [a for a in first.annotations[1] if isinstance(a, Emphasis)]
    paragraph = first.paragraphs[0]
    assert [(paragraph[a.start : a.end], a.level) for a in emphasis] == [
        ("very", "moderate"),
        ("stormy", "strong"),
    ]
    assert document.metadata.title == "The Test Manuscript"
    assert document.metadata.authors == ("Ada Writer", "Bob Editor")


def test_tracked_changes_are_read_as_accepted(tmp_path: Path) -> None:
    body = (
        p("Chapter 1", "Heading1")
        + "<w:p>"
        + run("The cat ")
        + '<w:del w:id="1" w:author="Ed"><w:r><w:delText>quickly </w:delText></w:r></w:del>'
        + '<w:ins w:id="2" w:author="Ed">'
        + run("slowly ")
        + "</w:ins>"
        + run("sat.")
        + "</w:p>"
        # a deleted paragraph mark: accepted, the two paragraphs are one
        + '<w:p><w:pPr><w:rPr><w:del w:id="3" w:author="Ed"/></w:rPr></w:pPr>'
        + run("It purred")
        + "</w:p>"
        + p("loudly.")
        + '<w:moveFrom w:id="4" w:author="Ed">'
        + p("Moved away.")
        + "</w:moveFrom>"
        + '<w:p><w:moveFrom w:id="5" w:author="Ed">'
        + run("Gone. ")
        + '</w:moveFrom><w:moveTo w:id="6" w:author="Ed">'
        + run("Here now.")
        + "</w:moveTo></w:p>"
    )
    document = load(make_docx(tmp_path / "tracked.docx", body))
    assert texts(document) == [
        ("Chapter 1", ["The cat slowly sat.", "It purred loudly.", "Here now."])
    ]


def test_comments_headers_footers_hidden_text_and_field_codes_are_never_read(
    tmp_path: Path,
) -> None:
    comments = (
        '<?xml version="1.0"?><w:comments xmlns:w="http://schemas.openxmlformats.org/'
        'wordprocessingml/2006/main"><w:comment w:id="0" w:author="Ed"><w:p><w:r>'
        "<w:t>EDITOR COMMENT</w:t></w:r></w:p></w:comment></w:comments>"
    )
    header = (
        '<?xml version="1.0"?><w:hdr xmlns:w="http://schemas.openxmlformats.org/'
        'wordprocessingml/2006/main"><w:p><w:r><w:t>RUNNING HEADER</w:t></w:r></w:p></w:hdr>'
    )
    body = (
        p("Contents", "TOC1")
        + '<w:p><w:commentRangeStart w:id="0"/>'
        + run("Plain words")
        + '<w:commentRangeEnd w:id="0"/><w:r><w:commentReference w:id="0"/></w:r>'
        + run(" SECRET", "<w:vanish/>")
        + run(" page ")
        + '<w:r><w:fldChar w:fldCharType="begin"/></w:r><w:r><w:instrText> PAGE </w:instrText>'
        + '</w:r><w:r><w:fldChar w:fldCharType="separate"/></w:r>'
        + run("7")
        + '<w:r><w:fldChar w:fldCharType="end"/></w:r>'
        + '<w:hyperlink r:id="rId9">'
        + run(" and a link")
        + "</w:hyperlink>"
        + run(".")
        + "</w:p>"
        + '<w:p><w:r><w:drawing><wp:inline><wp:docPr id="1" name="Picture 1" '
        + 'descr="A lighthouse at night"/></wp:inline></w:drawing></w:r></w:p>'
    )
    rels = relationships(
        (f"{OFFICE}/hyperlink", "https://example.org/", "External"),
        (f"{OFFICE}/comments", "comments.xml", ""),
        (f"{OFFICE}/header", "header1.xml", ""),
    )
    path = make_docx(
        tmp_path / "quiet.docx",
        body,
        parts={
            "word/comments.xml": comments,
            "word/header1.xml": header,
            "word/_rels/document.xml.rels": rels,
        },
    )
    (chapter,) = load(path).chapters
    assert chapter.paragraphs == ("Plain words page 7 and a link.", "A lighthouse at night")


def test_notes_are_skipped_with_a_warning_or_read_after_their_paragraph(tmp_path: Path) -> None:
    body = (
        p("Chapter 1", "Heading1")
        + "<w:p>"
        + run("A claim.")
        + '<w:r><w:footnoteReference w:id="1"/></w:r>'
        + run(" Another.")
        + '<w:r><w:endnoteReference w:id="1"/></w:r></w:p>'
        + p("Next paragraph.")
    )
    parts = {
        "word/footnotes.xml": notes_part("footnote", {1: "Source: the archive."}),
        "word/endnotes.xml": notes_part("endnote", {1: "See also chapter 9."}),
    }
    path = make_docx(tmp_path / "notes.docx", body, parts=parts)
    skipped = load(path)
    assert texts(skipped) == [("Chapter 1", ["A claim. Another.", "Next paragraph."])]
    assert any("skipped 2 footnote(s) and endnote(s)" in w for w in skipped.warnings)
    read = load(path, include_matter=True)
    assert texts(read) == [
        (
            "Chapter 1",
            [
                "A claim. Another.",
                "Footnote 1: Source: the archive.",
                "Endnote 1: See also chapter 9.",
                "Next paragraph.",
            ],
        )
    ]


def test_localised_styles_outline_levels_and_character_styles(tmp_path: Path) -> None:
    body = (
        p("Erster Teil", "berschrift2")  # a German Word's "Überschrift 2": built-in name
        + "<w:p>"
        + run("Ein ")
        + run("wichtiges", '<w:rStyle w:val="Emphasis"/>')
        + run(" Wort, ")
        + run("nicht kursiv", '<w:i w:val="0"/>')
        + run(".")
        + "</w:p>"
        + '<w:p><w:pPr><w:outlineLvl w:val="0"/></w:pPr><w:r><w:t>Zweiter Teil</w:t></w:r></w:p>'
        + p("Ende.")
    )
    document = load(make_docx(tmp_path / "de.docx", body))
    assert texts(document) == [
        ("Erster Teil", ["Ein wichtiges Wort, nicht kursiv."]),
        ("Zweiter Teil", ["Ende."]),
    ]
    (emphasis,) = document.chapters[0].annotations[1]
    assert isinstance(emphasis, Emphasis)
    assert document.chapters[0].paragraphs[0][emphasis.start : emphasis.end] == "wichtiges"
    assert document.language == "en-GB"  # the styles' default language


def test_nested_lists_number_as_the_document_shows_them(tmp_path: Path) -> None:
    def item(text: str, level: int) -> str:
        return (
            f'<w:p><w:pPr><w:numPr><w:ilvl w:val="{level}"/><w:numId w:val="2"/></w:numPr>'
            f"</w:pPr>{run(text)}</w:p>"
        )

    body = item("Mix", 0) + item("flour", 1) + item("water", 1) + item("Bake!", 0) + item("eat", 1)
    (chapter,) = load(make_docx(tmp_path / "list.docx", body)).chapters
    assert chapter.paragraphs == ("1. Mix.", "a. flour.", "b. water.", "2. Bake!", "a. eat.")


def test_a_manuscript_without_heading_styles_is_cut_at_chapter_lines(tmp_path: Path) -> None:
    body = p("A preface.") + p("CHAPTER I.") + p("It began.") + p("Chapter 2") + p("It ended.")
    document = load(make_docx(tmp_path / "plain.docx", body, styles=False))
    assert [c.title for c in document.chapters] == ["Introduction", "CHAPTER I.", "Chapter 2"]


def test_core_properties_become_book_metadata(tmp_path: Path) -> None:
    path = make_docx(
        tmp_path / "meta.docx",
        p("Words."),
        parts={"docProps/core.xml": core("Harbour Lights", "Mara Quill; Tom Reed", "en-US")},
    )
    document = load(path)
    meta = document.metadata
    assert (meta.title, meta.authors, meta.language, meta.date) == (
        "Harbour Lights",
        ("Mara Quill", "Tom Reed"),
        "en-US",
        "2024-05-01",
    )
    assert document.chapters[0].title == "Harbour Lights"


# --- hostile and broken archives ------------------------------------------------------


def test_not_a_zip_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "fake.docx"
    path.write_bytes(b"this is not a word document")
    with pytest.raises(MalformedDocumentError, match="not a readable DOCX") as caught:
        load(path)
    assert caught.value.hint is not None and "save it again" in caught.value.hint


def test_entity_declarations_are_refused(tmp_path: Path) -> None:
    path = make_docx(tmp_path / "laughs.docx", "")
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE w:document [<!ENTITY a "aaaaaaaaaa">'
        '<!ENTITY b "&a;&a;&a;&a;&a;&a;">]><w:document xmlns:w="x"><w:body><w:p><w:r>'
        "<w:t>&b;</w:t></w:r></w:p></w:body></w:document>"
    )
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("word/document2.xml", bomb)
    rels = relationships((f"{OFFICE}/officeDocument", "word/document2.xml", ""))
    rewritten = tmp_path / "laughs2.docx"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(rewritten, "w") as target:
        for info in source.infolist():
            data = rels.encode() if info.filename == "_rels/.rels" else source.read(info)
            target.writestr(info.filename, data)
    with pytest.raises(MalformedDocumentError, match="declares XML entities"):
        load(rewritten)


@pytest.mark.parametrize(
    ("kind", "part"),
    [
        ("attachedTemplate", "word/_rels/settings.xml.rels"),
        ("subDocument", "word/_rels/document.xml.rels"),
        ("image", "word/_rels/document.xml.rels"),
    ],
)
def test_external_relationships_other_than_hyperlinks_are_refused(
    tmp_path: Path, kind: str, part: str
) -> None:
    rels = relationships((f"{OFFICE}/{kind}", "http://attacker.example/t.dotm", "External"))
    path = make_docx(tmp_path / "remote.docx", p("Hello."), parts={part: rels})
    with pytest.raises(MalformedDocumentError, match=f"external {kind}") as caught:
        load(path)
    assert caught.value.hint is not None and "save the document again" in caught.value.hint


def test_a_zip_bomb_is_refused_before_it_is_unpacked(tmp_path: Path) -> None:
    path = make_docx(tmp_path / "bomb.docx", p("Hello."))
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/media/huge.bin", b"\0" * 5_000_000)
    with pytest.raises(DocumentTooLargeError, match="zip bomb"):
        load(path)
    with pytest.raises(DocumentTooLargeError, match="files inside"):
        parse(path.read_bytes(), "bomb.docx", "bomb", limits=ZipLimits(max_members=3))


def test_a_zip_without_a_document_part_says_what_it_is_not(tmp_path: Path) -> None:
    path = tmp_path / "other.docx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("content.xml", "<office/>")
    with pytest.raises(MalformedDocumentError, match="not a Word document"):
        load(path)


# --- a file LibreOffice saved ----------------------------------------------------------


def test_a_document_libreoffice_saved_reads_like_its_source(tmp_path: Path, corpus: Path) -> None:
    soffice = shutil.which("soffice")
    need(soffice is not None, "LibreOffice (Debian: libreoffice-writer-nogui) is not installed")
    assert soffice is not None
    chapters = (corpus / "h-g-wells_the-time-machine.md").read_text().split("\n# ")[:2]
    html = ['<html><head><meta charset="utf-8"><title>The Time Machine</title></head><body>']
    expected: list[tuple[str, list[str]]] = []
    for chapter in chapters:
        title, *paragraphs = [b.strip() for b in chapter.lstrip("# ").split("\n\n") if b.strip()]
        html.append(f"<h1>{title}</h1>")
        html += [f"<p>{text}</p>" for text in paragraphs[:4]]
        expected.append((title, paragraphs[:4]))
    html.append("<p>He said it <em>slowly</em>.</p></body></html>")
    source = tmp_path / "tm.html"
    source.write_text("\n".join(html), encoding="utf-8")
    subprocess.run(
        [
            soffice,
            f"-env:UserInstallation=file://{tmp_path / 'profile'}",
            "--headless",
            "--infilter=HTML (StarWriter)",
            "--convert-to",
            "docx:MS Word 2007 XML",
            "--outdir",
            str(tmp_path),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=180,
    )
    document = load(tmp_path / "tm.docx")
    from_markdown = load(corpus / "h-g-wells_the-time-machine.md")
    assert [c.title for c in document.chapters] == [t for t, _ in expected]
    for chapter, twin in zip(document.chapters, from_markdown.chapters, strict=False):
        # the same words as the Markdown edition's first paragraphs
        assert chapter.paragraphs[:4] == twin.paragraphs[:4]
    last = document.chapters[-1]
    (emphasis,) = [a for a in last.annotations[-1] if isinstance(a, Emphasis)]
    assert last.paragraphs[-1][emphasis.start : emphasis.end] == "slowly"
