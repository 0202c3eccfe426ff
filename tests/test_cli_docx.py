"""A Word manuscript through ``narrate render`` as an author would give it, and hostile
DOCX files through the command (exit 2 with a message, never a traceback)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from tests.ssml.docx_builder import OFFICE, core, make_docx, notes_part, p, relationships, run
from tests.test_cli import check_output_folder, narrate

COMMENTS = (
    '<?xml version="1.0"?><w:comments xmlns:w="http://schemas.openxmlformats.org/'
    'wordprocessingml/2006/main"><w:comment w:id="0" w:author="Ed"><w:p><w:r>'
    "<w:t>Cut this?</w:t></w:r></w:p></w:comment></w:comments>"
)


def manuscript(path: Path) -> Path:
    """Headings, italics, a list, a table, a footnote, a comment and tracked changes."""
    body = (
        p("Harbour Lights", "Title")
        + p("The Storm", "Heading1")
        + "<w:p>"
        + run("The keeper climbed ")
        + run("slowly", "<w:i/>")
        + '<w:del w:id="1" w:author="Ed"><w:r><w:delText> and sadly</w:delText></w:r></w:del>'
        + '<w:ins w:id="2" w:author="Ed">'
        + run(" up the stairs")
        + "</w:ins>"
        + run(".")
        + '<w:r><w:footnoteReference w:id="1"/></w:r>'
        + '<w:commentRangeStart w:id="0"/>'
        + run(" The lamp was lit.")
        + '<w:commentRangeEnd w:id="0"/><w:r><w:commentReference w:id="0"/></w:r>'
        + "</w:p>"
        + p("Oil", "ListBullet")
        + p("Wicks", "ListBullet")
        + "<w:tbl><w:tr><w:tc>"
        + p("Night")
        + "</w:tc><w:tc>"
        + p("Calm")
        + "</w:tc></w:tr></w:tbl>"
        + p("The Calm", "Heading1")
        + p("Morning came, and the sea was still.")
    )
    parts = {
        "word/footnotes.xml": notes_part("footnote", {1: "Ninety steps."}),
        "word/comments.xml": COMMENTS,
        "docProps/core.xml": core("Harbour Lights", "Mara Quill"),
    }
    return make_docx(path, body, parts=parts)


def test_a_word_manuscript_renders_to_its_chapters_with_every_word_captioned(
    env: dict[str, str], tmp_path: Path
) -> None:
    source = manuscript(tmp_path / "harbour.docx")
    out = tmp_path / "out"
    result = narrate(env, "render", source, "--out", out, "--include-matter", "--json")
    assert result.returncode == 0, result.stderr
    manifest = check_output_folder(out)
    assert [c["title"] for c in manifest["chapters"]] == ["The Storm", "The Calm"]  # type: ignore[index]
    assert manifest["title"] == "Harbour Lights" and manifest["authors"] == ["Mara Quill"]
    track = json.loads(narrate(env, "captions", manifest["job"], "--format", "json").stdout)
    spoken = [[w["text"] for w in c["words"]] for c in track["chapters"]]
    expected = [
        "Harbour Lights. The Storm The keeper climbed slowly up the stairs. The lamp was lit. "
        "Footnote 1: Ninety steps. Oil. Wicks. Night, Calm.",
        "The Calm Morning came, and the sea was still.",
    ]
    assert spoken == [words.split(" ") for words in expected]
    for chapter in track["chapters"]:
        starts = [w["start_ms"] for w in chapter["words"]]
        assert starts == sorted(starts)


def hostile(kind: str, path: Path) -> Path:
    if kind == "not a zip":
        path.write_bytes(b"%PDF-1.7 not a word file")
        return path
    if kind == "zip bomb":
        make_docx(path, p("Hello."))
        with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("word/media/image1.png", b"\0" * 8_000_000)
        return path
    if kind == "entities":
        return make_docx(
            path, "", parts={"word/document.xml": '<!DOCTYPE d [<!ENTITY x "y">]><d>&x;</d>'}
        )
    rels = relationships((f"{OFFICE}/attachedTemplate", "http://evil.example/t.dotm", "External"))
    return make_docx(path, p("Hello."), parts={"word/_rels/settings.xml.rels": rels})


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("not a zip", "not a readable DOCX"),
        ("zip bomb", "zip bomb"),
        ("entities", "declares XML entities"),
        ("external relationship", "external attachedTemplate"),
    ],
)
def test_hostile_docx_files_exit_2_with_a_clear_message(
    env: dict[str, str], tmp_path: Path, kind: str, message: str
) -> None:
    path = hostile(kind, tmp_path / "hostile.docx")
    result = narrate(env, "render", path, "--out", tmp_path / "out")
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    assert not (tmp_path / "out" / "manifest.json").exists()
