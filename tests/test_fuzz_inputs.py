"""Fuzzing every input format through the ``narrate`` command: exit 0 or 2, never 1.

Random bytes and random text full of control characters, surrogate and noncharacter
references and markup-looking punctuation go to ``narrate plan`` (ingest, annotation,
segmentation and SSML building, in process, many examples) and, for one hostile document
per format, to ``narrate render --engine stub`` (the whole pipeline, as a user runs it).
A bad document may be refused (exit 2, with a message); it may never be an internal error
(exit 1) or a traceback.
"""

from __future__ import annotations

import contextlib
import io
import json
import signal
import sys
import zipfile
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.ssml.docx_builder import core, make_docx, p
from tests.ssml.test_clean import CONTROLS, xml_safe
from tests.ssml.test_ingest_epub import CONTAINER, nav_doc, opf, xhtml
from tests.test_cli import check_output_folder, narrate

TEXT_FORMATS = ("md", "txt", "html", "xhtml", "ssml")
NASTY = CONTROLS + "\ufffe\uffff\ufdd0\U0001fffe\ufeff\u200b\u2028\u2029"
MARKUP = "#*_`$\\{}^[]()<>&;/=\"' \n\n.,!?-"
REFERENCES = ["&#0;", "&#7;", "&#x1b;", "&#xD800;", "&#xFFFE;", "&#150;", "&#x110000;", "&amp;"]

fuzz_text = st.lists(
    st.one_of(
        st.text(alphabet=st.sampled_from(NASTY + MARKUP + "abc xyz"), max_size=40),
        st.text(max_size=20),  # any code point, lone surrogates included
        st.sampled_from(REFERENCES),
        st.sampled_from(["Hello there.", "x^2 + y^2", "$a$", "\\(b\\)", "# Head", "<p>p</p>"]),
    ),
    max_size=12,
).map("".join)

FUZZ = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def run_narrate(*args: str | Path) -> tuple[int, str]:
    """Run the ``narrate`` command in this process: (exit code, stderr)."""
    from narrate.cli import main

    stderr = io.StringIO()
    handler = signal.getsignal(signal.SIGTERM)
    argv = ["narrate", *map(str, args)]
    try:
        with (
            mock.patch.object(sys, "argv", argv),
            contextlib.redirect_stderr(stderr),
            contextlib.redirect_stdout(io.StringIO()),
        ):
            try:
                main()
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
    finally:
        signal.signal(signal.SIGTERM, handler)
    return code, stderr.getvalue()


def assert_handled(code: int, stderr: str) -> None:
    assert code in (0, 2), stderr
    assert "internal error" not in stderr
    assert "Traceback" not in stderr


def wrap(fmt: str, text: str) -> str:
    if fmt in ("html", "xhtml"):
        head = f"<head><title>T{text[:5]}</title></head>"
        return f"<html>{head}<body><h1>H</h1><p>{text}</p></body></html>"
    if fmt == "ssml":
        return f"<speak><p>{text}</p><s>The end.</s></speak>"
    if fmt == "md":
        return f"# Chapter\n\n{text}\n\n## Two\n\n{text}"
    return f"Chapter 1\n\n{text}"


def encode(text: str) -> bytes:
    """UTF-8, with lone surrogates written as their (invalid) UTF-8 bytes."""
    return text.encode("utf-8", "surrogatepass")


def make_docx_of(path: Path, text: str, *, raw: bool) -> Path:
    body = text if raw else text.replace("&", "&amp;").replace("<", "&lt;")
    return make_docx(
        path,
        p("One", "Heading1") + p(body) + p("Two", "Heading1") + p(f"{body} end."),
        parts={"docProps/core.xml": encode(core(body[:9], body[:5]))},
    )


def make_epub(path: Path, text: str, *, raw: bool) -> Path:
    body = text if raw else text.replace("&", "&amp;").replace("<", "&lt;")
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mimetype", "application/epub+zip")
        archive.writestr("META-INF/container.xml", CONTAINER)
        archive.writestr("OEBPS/content.opf", encode(opf(["c1.xhtml"]).replace("A Book", body[:9])))
        archive.writestr("OEBPS/nav.xhtml", encode(nav_doc({"c1.xhtml": body[:7] or "One"})))
        archive.writestr("OEBPS/c1.xhtml", encode(xhtml(f"<h1>One</h1><p>{body} end.</p>")))
    return path


@pytest.mark.parametrize("fmt", TEXT_FORMATS)
@FUZZ
@given(text=fuzz_text)
def test_text_formats_with_control_characters(tmp_path: Path, fmt: str, text: str) -> None:
    path = tmp_path / f"doc.{fmt}"
    path.write_bytes(encode(wrap(fmt, text)))
    assert_handled(*run_narrate("plan", path, "--json"))


@pytest.mark.parametrize("fmt", (*TEXT_FORMATS, "epub", "docx"))
@FUZZ
@given(data=st.binary(max_size=600))
def test_random_bytes(tmp_path: Path, fmt: str, data: bytes) -> None:
    path = tmp_path / f"doc.{fmt}"
    path.write_bytes(data)
    assert_handled(*run_narrate("plan", path))


@FUZZ
@given(text=fuzz_text, raw=st.booleans())
def test_epub_with_control_characters(tmp_path: Path, text: str, raw: bool) -> None:
    path = make_epub(tmp_path / "book.epub", text, raw=raw)
    assert_handled(*run_narrate("plan", path, "--json"))


@FUZZ
@given(text=fuzz_text, raw=st.booleans())
def test_docx_with_control_characters(tmp_path: Path, text: str, raw: bool) -> None:
    path = make_docx_of(tmp_path / "book.docx", text, raw=raw)
    assert_handled(*run_narrate("plan", path, "--json"))


ARCHIVES = {"epub": make_epub, "docx": make_docx_of}


@pytest.mark.parametrize("fmt", ARCHIVES)
@FUZZ
@given(flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)), max_size=8))
def test_archives_with_flipped_bytes(
    tmp_path: Path, fmt: str, flips: list[tuple[int, int]]
) -> None:
    good = ARCHIVES[fmt](tmp_path / f"good.{fmt}", "It was a dark night.", raw=False)
    data = bytearray(good.read_bytes())
    for at, mask in flips:
        data[at % len(data)] ^= mask
    path = tmp_path / f"flipped.{fmt}"
    path.write_bytes(bytes(data))
    assert_handled(*run_narrate("plan", path))


@FUZZ
@given(text=fuzz_text)
def test_lexicon_with_control_characters(tmp_path: Path, text: str) -> None:
    document = tmp_path / "doc.md"
    document.write_text("# One\n\nNguyen said hello.\n")
    lexicon = tmp_path / "lexicon.txt"
    lexicon.write_bytes(encode(f"Nguyen = {text or 'win'}\n{text} = word\n"))
    assert_handled(*run_narrate("plan", document, "--lexicon", lexicon))


ALL_NASTY = "".join(NASTY) + "".join(REFERENCES)


@pytest.mark.parametrize("fmt", (*TEXT_FORMATS, *ARCHIVES))
def test_render_of_a_hostile_document_completes(
    env: dict[str, str], tmp_path: Path, fmt: str
) -> None:
    """Every control character in one document: the render finishes, warns, and speaks."""
    text = f"Bell {ALL_NASTY} and escape.\x0cA new page."
    if fmt in ARCHIVES:
        path = ARCHIVES[fmt](tmp_path / f"book.{fmt}", text.replace("&", "&amp;"), raw=True)
    else:
        path = tmp_path / f"doc.{fmt}"
        path.write_bytes(encode(wrap(fmt, text)))
    out = tmp_path / "out"
    result = narrate(env, "render", path, "--engine", "stub", "--out", out, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert any("cannot be spoken" in w for w in report["warnings"])
    manifest = check_output_folder(out)
    vtt = "".join((out / c["captions"]["vtt"]).read_text() for c in manifest["chapters"])  # type: ignore[index, union-attr]
    assert "Bell" in vtt
    assert "escape" in vtt
    assert xml_safe(vtt)
