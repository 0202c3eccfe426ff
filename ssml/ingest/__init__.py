"""Turn an input document (Markdown, plain text, HTML, EPUB, DOCX, SSML) into a :class:`Document`.

Public API: :func:`load`, :func:`parse_chapter_range`, :func:`select_chapters` and
:data:`FORMATS`. ``load`` does all the I/O (one read of the input file); the rest is pure.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from narrate.errors import (
    DocumentTooLargeError,
    EmptyDocumentError,
    InputError,
    MalformedDocumentError,
    UnsupportedFormatError,
    UsageError,
)
from ssml.document import Cover, Document
from ssml.ingest import docx, epub, html, markdown, ssmldoc, text
from ssml.ingest.clean import clean_text, scrub_document
from ssml.ingest.epub import image_type

__all__ = ["FORMATS", "MAX_INPUT_BYTES", "load", "parse_chapter_range", "select_chapters"]

FORMATS = ("markdown", "text", "html", "epub", "docx", "ssml")
MAX_INPUT_BYTES = 50 * 1024 * 1024

EXTENSIONS = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".txt": "text",
    ".text": "text",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
    ".epub": "epub",
    ".docx": "docx",
    ".ssml": "ssml",
}
_SNIFF_BYTES = 4096
_HTML_SNIFF_RE = re.compile(rb"<!doctype\s+html|<html[\s>]", re.IGNORECASE)

Parser = Callable[[bytes, str, str, bool], Document]

_PARSERS: dict[str, Parser] = {
    "markdown": lambda data, name, stem, _matter: markdown.parse(data, name, stem),
    "text": lambda data, name, stem, _matter: text.parse(data, name, stem),
    "html": lambda data, name, stem, _matter: html.parse(data, name, stem),
    "epub": lambda data, name, stem, matter: epub.parse(data, name, stem, include_matter=matter),
    "docx": lambda data, name, stem, matter: docx.parse(data, name, stem, include_matter=matter),
    "ssml": lambda data, name, stem, _matter: ssmldoc.parse(data, name, stem),
}


def load(path: Path, *, include_matter: bool = False, format: str | None = None) -> Document:
    """Read and parse one input document.

    The format comes from ``format`` if given, else the file extension, else the content
    (an EPUB or DOCX zip, or an HTML page). Front/back matter of EPUBs, and the notes of
    DOCX files, are skipped unless ``include_matter``. Raises an
    :class:`~narrate.errors.InputError` subclass for anything wrong with the input, and
    :class:`~narrate.errors.UsageError` for an unknown ``format``.
    """
    path = Path(path)
    forced = _check_format_name(format)
    data = _read_input(path)
    fmt = forced or detect_format(path, data)
    data, warnings = _clean(data, fmt, path.name)
    try:
        document = _PARSERS[fmt](data, path.name, path.stem, include_matter)
    except RecursionError:
        raise MalformedDocumentError(
            f"{path.name} is nested too deeply to read",
            hint="simplify the document's structure or re-export it",
        ) from None
    if not document.chapters:
        raise _empty(path, document)
    document = scrub_document(document)
    document = _with_cover_file(document, path)
    return replace(document, warnings=warnings + document.warnings)


MAX_COVER_BYTES = 10 * 1024 * 1024


def _with_cover_file(document: Document, path: Path) -> Document:
    """Read the cover a document names (a front matter's ``cover:``): a JPEG or PNG file
    beside the document or below its folder, at most 10 MB; anything else is a warning."""
    name = document.metadata.cover_file
    if not name or document.metadata.cover is not None:
        return document
    folder = path.resolve().parent
    target = (folder / name).resolve()
    problem = None
    if Path(name).is_absolute() or not target.is_relative_to(folder):
        problem = "it must be a path relative to the document, inside its folder"
    elif not target.is_file():
        problem = "there is no such file"
    elif target.stat().st_size > MAX_COVER_BYTES:
        problem = "it is larger than 10 MB"
    cover = None
    if problem is None:
        data = target.read_bytes()
        media_type = image_type(data)
        if media_type is None:
            problem = "it is not a JPEG or PNG image"
        else:
            cover = Cover(data, media_type)
    if cover is None:
        warning = f"the cover {name!r} named in {path.name} is not used: {problem}"
        return replace(document, warnings=(*document.warnings, warning))
    return replace(document, metadata=replace(document.metadata, cover=cover))


def _clean(data: bytes, fmt: str, name: str) -> tuple[bytes, tuple[str, ...]]:
    """The bytes of a UTF-8 format without characters that cannot be spoken, and a warning.

    EPUB cleans each of its members itself (:mod:`ssml.ingest.epub`).
    """
    if fmt not in _CLEANED_FORMATS:
        return data, ()
    cleaned = clean_text(text.decode_utf8(data, name), markup=fmt in ("html", "ssml"))
    warning = cleaned.warning(name)
    if warning is None:
        return data, ()
    return cleaned.text.encode("utf-8"), (warning,)


_CLEANED_FORMATS = frozenset(["markdown", "text", "html", "ssml"])


def _check_format_name(format: str | None) -> str | None:
    if format is None:
        return None
    name = format.strip().lower()
    if name not in FORMATS:
        raise UsageError(
            f"unknown input format {format!r}",
            hint=f"use one of: {', '.join(FORMATS)}",
        )
    return name


def _read_input(path: Path) -> bytes:
    """The file's bytes, after checking that it exists, is a file and is not too large."""
    try:
        if not path.exists():
            raise InputError(
                f"input file {str(path)!r} does not exist",
                hint="check the path and spelling, or give an absolute path",
            )
        if not path.is_file():
            raise InputError(
                f"input {str(path)!r} is not a regular file (is it a directory?)",
                hint="give the path of one document file, e.g. book.epub or notes.md",
            )
        size = path.stat().st_size
        if size > MAX_INPUT_BYTES:
            raise DocumentTooLargeError(
                f"{path.name} is {size / 1024 / 1024:.1f} MB; the limit is "
                f"{MAX_INPUT_BYTES // 1024 // 1024} MB",
                hint="split the document into smaller files and render them separately",
            )
        with path.open("rb") as handle:
            data = handle.read(MAX_INPUT_BYTES + 1)
    except OSError as exc:
        raise InputError(
            f"cannot read {str(path)!r}: {exc.strerror or exc}",
            hint="check the file's permissions and that it is not locked by another program",
        ) from None
    if len(data) > MAX_INPUT_BYTES:  # it grew while we looked
        raise DocumentTooLargeError(
            f"{path.name} is larger than {MAX_INPUT_BYTES // 1024 // 1024} MB",
            hint="split the document into smaller files and render them separately",
        )
    return data


def detect_format(path: Path, data: bytes) -> str:
    """The format from the extension, else from the content; UnsupportedFormatError if none."""
    by_extension = EXTENSIONS.get(path.suffix.lower())
    if by_extension in (None, "html") and ssmldoc.looks_like_ssml(data):
        return "ssml"  # an XML or HTML file whose root is <speak>
    if by_extension:
        return by_extension
    if epub.looks_like_epub(data):
        return "epub"
    if docx.looks_like_docx(data):
        return "docx"
    head = data[:_SNIFF_BYTES].lstrip(b"\xef\xbb\xbf \t\r\n")
    if _HTML_SNIFF_RE.search(head):
        return "html"
    raise UnsupportedFormatError(
        f"cannot tell what kind of document {path.name} is (extension "
        f"{path.suffix or '(none)'!r} is not one narrate knows)",
        hint="narrate reads Markdown (.md, .markdown), plain text (.txt, .text), "
        "HTML (.html, .htm, .xhtml), EPUB (.epub), Word (.docx) and SSML (.ssml, or XML "
        "whose root is "
        "<speak>); give the file the extension that "
        "matches its content",
    )


def _empty(path: Path, document: Document) -> EmptyDocumentError:
    if document.skipped:
        return EmptyDocumentError(
            f"{path.name} has no chapters with text to read once front and back matter "
            f"({', '.join(document.skipped)}) is skipped",
            hint="use --include-matter if you want front and back matter read",
        )
    return EmptyDocumentError(
        f"{path.name} contains no text to read",
        hint="check that you picked the right file and that it is not empty",
    )


# --- chapter selection ----------------------------------------------------------------

_RANGE_PART_RE = re.compile(r"(\d+)(?:\s*-\s*(\d+))?")


def parse_chapter_range(spec: str) -> list[int]:
    """Parse ``"3-5"`` -> ``[3, 4, 5]``, ``"1,3-4"`` -> ``[1, 3, 4]`` (1-based, sorted)."""
    numbers: set[int] = set()
    parts = [p.strip() for p in spec.split(",")]
    for part in parts:
        match = _RANGE_PART_RE.fullmatch(part)
        if not match:
            raise _bad_range(spec, f"{part!r} is not a chapter number or range")
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) else first
        if first < 1:
            raise _bad_range(spec, "chapters are numbered from 1")
        if last < first:
            raise _bad_range(spec, f"the range {part!r} runs backwards")
        numbers.update(range(first, last + 1))
    return sorted(numbers)


def _bad_range(spec: str, why: str) -> UsageError:
    return UsageError(
        f"invalid chapter selection {spec!r}: {why}",
        hint="use chapter numbers starting at 1 and ranges like 3-5, "
        "separated by commas: e.g. 1,3-5",
    )


def select_chapters(doc: Document, numbers: list[int]) -> Document:
    """Keep the given 1-based chapters of ``doc``, in document order."""
    count = len(doc.chapters)
    if not numbers:
        raise UsageError("no chapters were selected", hint=f"choose chapters between 1 and {count}")
    wrong = sorted({n for n in numbers if not 1 <= n <= count})
    if wrong:
        shown = ", ".join(map(str, wrong))
        missing = f"chapters {shown} do not" if len(wrong) > 1 else f"chapter {shown} does not"
        raise UsageError(
            f"{missing} exist: the document has {count} chapter"
            f"{'s' if count != 1 else ''} (valid range 1-{count})",
            hint=f"choose chapters between 1 and {count}",
        )
    chosen = sorted(set(numbers))
    return replace(doc, chapters=tuple(replace(doc.chapters[n - 1], number=n) for n in chosen))
