"""Characters a document may hold but speech and XML cannot: found, removed, and reported.

Every input passes through here before its parser sees it (:func:`clean_text` on the
decoded text of Markdown, plain text, HTML and SSML, :func:`clean_markup_bytes` on each
XML/XHTML member of an EPUB), and every parsed :class:`~ssml.document.Document` once more
after it (:func:`scrub_document`), because a parser may decode a character reference into
one. Pure functions: text in, text and a report out.

What is unsafe, and what becomes of it:

* **Breaks:** FORM FEED (U+000C), VERTICAL TAB (U+000B) and NEXT LINE (U+0085) are line
  breaks in the writer's intent (a page break, a line feed from another system): they
  become ``"\\n"`` in text and Markdown (where a break on a line of its own ends the
  paragraph) and a space in markup (where both are whitespace and a space keeps the
  line numbers of later messages right). No warning: nothing is lost.
* **Removed, with a warning** naming each character and its line and column: the other
  C0 controls (U+0000-U+001F but TAB, LF and CR), DELETE and the C1 controls
  (U+007F-U+009F), lone surrogates (U+D800-U+DFFF) and the noncharacters (U+FDD0-U+FDEF and
  U+xFFFE/U+xFFFF of every plane): XML 1.0 cannot carry the controls, surrogates and
  U+FFFE/U+FFFF at all, and none of them is ever text to be spoken.
* In markup, a **character reference** to such a character (``&#7;``, ``&#x1B;``,
  ``&#xFFFE;``) is removed the same way, since the parser would either refuse the document
  or decode the reference into the character. HTML's references to U+0080-U+009F are left
  to the HTML parser, which reads them as Windows-1252 (``&#150;`` is an en dash), as
  browsers do.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace

from ssml.document import Document

UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_BREAKS = "\x0b\x0c\x85"
_NONCHARACTERS = "\ufdd0-\ufdef" + "".join(
    f"{chr(plane << 16 | 0xFFFE)}{chr(plane << 16 | 0xFFFF)}" for plane in range(17)
)
_UNSAFE_CLASS = f"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff{_NONCHARACTERS}"
_UNSAFE_RE = re.compile(f"[{_UNSAFE_CLASS}]")
_CHAR_REF_RE = re.compile(r"&#(?:[xX]([0-9a-fA-F]{1,8})|([0-9]{1,10}));?")
_MAX_LOCATIONS = 5
_C0_NAMES = tuple(
    [
        "NUL",
        "SOH",
        "STX",
        "ETX",
        "EOT",
        "ENQ",
        "ACK",
        "BEL",
        "BS",
        "TAB",
        "LF",
        "VT",
        "FF",
        "CR",
        "SO",
        "SI",
        "DLE",
        "DC1",
        "DC2",
        "DC3",
        "DC4",
        "NAK",
        "SYN",
        "ETB",
        "CAN",
        "EM",
        "SUB",
        "ESC",
        "FS",
        "GS",
        "RS",
        "US",
    ]
)


@dataclass(frozen=True)
class Removal:
    """One removed character (or character reference) and where it was (1-based)."""

    code_point: int
    line: int
    column: int
    reference: bool = False  # written as a character reference such as ``&#7;``


@dataclass(frozen=True)
class Cleaned:
    """Clean text and what was removed from it."""

    text: str
    removed: tuple[Removal, ...] = ()

    def warning(self, where: str) -> str | None:
        """One warning naming what was removed from ``where`` and where, or None."""
        return removal_warning(self.removed, where)


def is_unsafe(code_point: int) -> bool:
    """Whether a code point is one this module removes (or turns into a break)."""
    return code_point > 0x10FFFF or bool(_UNSAFE_RE.match(chr(code_point)))


def clean_text(text: str, *, markup: bool = False) -> Cleaned:
    """``text`` without unsafe characters (see the module docstring); linear time."""
    pattern = _UNSAFE_OR_REFERENCE_RE if markup else _UNSAFE_RE
    if not pattern.search(text):
        return Cleaned(text)
    removed: list[Removal] = []
    lines = _LineCounter(text)
    break_with = " " if markup else "\n"

    def replace_one(match: re.Match[str]) -> str:
        found = match.group()
        if found[0] == "&":
            code_point = _reference_value(match)
            if code_point is None:
                return found
            removed.append(Removal(code_point, *lines.at(match.start()), reference=True))
            return ""
        if found in _BREAKS:
            return break_with
        removed.append(Removal(ord(found), *lines.at(match.start())))
        return ""

    return Cleaned(pattern.sub(replace_one, text), tuple(removed))


_UNSAFE_OR_REFERENCE_RE = re.compile(f"{_CHAR_REF_RE.pattern}|[{_UNSAFE_CLASS}]")


def _reference_value(match: re.Match[str]) -> int | None:
    """The code point of an unsafe character reference, or None to keep the reference."""
    digits_hex, digits_dec = match.group(1), match.group(2)
    value = int(digits_hex, 16) if digits_hex else int(digits_dec)
    if 0x80 <= value <= 0x9F:
        return None  # Windows-1252 in HTML; in XML a C1 control the scrub removes later
    return value if value == 0 or is_unsafe(value) else None


class _LineCounter:
    """1-based line and column of offsets given in increasing order, in linear time."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.offset = 0
        self.line = 1
        self.line_start = 0

    def at(self, offset: int) -> tuple[int, int]:
        while (newline := self.text.find("\n", self.offset, offset)) != -1:
            self.line += 1
            self.line_start = newline + 1
            self.offset = newline + 1
        self.offset = max(self.offset, offset)
        return self.line, offset - self.line_start + 1


def clean_markup_bytes(data: bytes) -> tuple[bytes, Cleaned]:
    """XML or XHTML bytes without unsafe characters or references, in their own encoding.

    UTF-8 (with or without a BOM) and UTF-16 with a BOM are cleaned; bytes in any other
    encoding come back as they are, for the parser to judge.
    """
    if data[:2] in _UTF16_BOMS:
        encoding = "utf-16"
        bom = b""
    else:
        encoding = "utf-8"
        bom = UTF8_BOM if data.startswith(UTF8_BOM) else b""
    try:
        text = data[len(bom) :].decode(encoding)
    except UnicodeDecodeError:
        return data, Cleaned("")
    cleaned = clean_text(text, markup=True)
    if cleaned.text is text:
        return data, cleaned
    return bom + cleaned.text.encode(encoding), cleaned


def removal_warning(removed: Iterable[Removal], where: str) -> str | None:
    """``"removed 3 characters that cannot be spoken from a.md: U+0007 BEL at line 3,
    column 7; ..."`` (the first few places, then how many more), or None."""
    removed = list(removed)
    if not removed:
        return None
    shown = "; ".join(_describe(r) for r in removed[:_MAX_LOCATIONS])
    more = len(removed) - _MAX_LOCATIONS
    tail = f" (and {more} more)" if more > 0 else ""
    noun = "character" if len(removed) == 1 else "characters"
    return f"removed {len(removed)} {noun} that cannot be spoken from {where}: {shown}{tail}"


def _describe(removal: Removal) -> str:
    what = f"U+{removal.code_point:04X} {character_name(removal.code_point)}"
    if removal.reference:
        what += " (a character reference)"
    return f"{what} at line {removal.line}, column {removal.column}"


def character_name(code_point: int) -> str:
    """A short name for an unsafe character: ``BEL``, ``C1 control``, ``lone surrogate``."""
    if code_point < 0x20:
        return _C0_NAMES[code_point]
    if code_point == 0x7F:
        return "DEL"
    if 0x80 <= code_point <= 0x9F:
        return "C1 control"
    if 0xD800 <= code_point <= 0xDFFF:
        return "lone surrogate"
    if code_point > 0x10FFFF:
        return "beyond Unicode"
    return "noncharacter"


# --- the last line of defence: a parsed document -------------------------------------


def scrub_document(document: Document) -> Document:
    """``document`` with any unsafe character a parser left in it taken out, with a warning.

    Chapters that carry annotations (offsets into their text, from SSML input) get a space
    for each such character instead, so that every offset stays right.
    """
    warnings: list[str] = []
    chapters = []
    for chapter in document.chapters:
        scrub = _Scrubber(keep_offsets=bool(chapter.annotations))
        cleaned = replace(
            chapter,
            title=scrub(chapter.title),
            heading=scrub(chapter.heading),
            paragraphs=tuple(map(scrub, chapter.paragraphs)),
        )
        if scrub.removed:
            warnings.append(
                f"removed {scrub.removed} character{'s' if scrub.removed != 1 else ''} that "
                f"cannot be spoken from chapter {cleaned.title!r} (written as character "
                "references, or in the file name)"
            )
        chapters.append(cleaned if scrub.changed else chapter)
    scrub = _Scrubber(keep_offsets=False)
    title = scrub(document.title) if document.title is not None else None
    skipped = tuple(map(scrub, document.skipped))
    if scrub.removed:
        warnings.append(f"removed {scrub.removed} character(s) that cannot be spoken from titles")
    if not warnings and not scrub.changed and chapters == list(document.chapters):
        return document
    return replace(
        document,
        chapters=tuple(chapters),
        title=title,
        skipped=skipped,
        warnings=document.warnings + tuple(warnings),
    )


class _Scrubber:
    """Takes unsafe characters out of strings (breaks become spaces) and counts them."""

    def __init__(self, *, keep_offsets: bool) -> None:
        self.keep_offsets = keep_offsets
        self.removed = 0
        self.changed = False

    def __call__(self, text: str) -> str:
        if not _UNSAFE_RE.search(text):
            return text
        self.changed = True
        return _UNSAFE_RE.sub(self._one, text)

    def _one(self, match: re.Match[str]) -> str:
        if match.group() in _BREAKS:
            return " "
        self.removed += 1
        return " " if self.keep_offsets else ""
