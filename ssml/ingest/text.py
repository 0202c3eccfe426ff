"""Plain-text ingest, plus the helpers every format shares (decoding, chapter assembly).

Paragraphs are separated by blank lines; the line breaks inside a paragraph become spaces
(or nothing between two CJK characters). A line on its own that looks like a chapter
heading (``Chapter 1``, ``CHAPTER IV.``, ``Chapter One: The Beginning``, ``Part 2``,
``Prologue``, ``Epilogue`` ...; in Chinese and Japanese ``第一章``, ``第十二回 风雪``,
``卷三``, ``第1話``, or a short name ending in 篇 as classics title their books, ``学而篇``)
starts a chapter. With no such line the whole text is one chapter titled from the file
name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from narrate.errors import MalformedDocumentError
from ssml.document import Chapter, Document
from ssml.normalize import NUMBER_PATTERN, chapter_heading, normalize_text, parse_number

UTF8_BOM = b"\xef\xbb\xbf"


@dataclass
class Section:
    """A chapter before normalisation: a title and raw paragraph texts.

    ``merge_if_empty``: a section with no body is not a chapter; if this is set its title
    becomes the leading paragraph of the next chapter (``# Linear Algebra`` directly
    followed by ``## Scalars``), otherwise it is dropped. ``speak_heading``: whether the
    chapter gets a spoken heading (not for the continuation of a split chapter).
    """

    title: str
    paragraphs: list[str] = field(default_factory=list)
    source: str = ""
    merge_if_empty: bool = True
    speak_heading: bool = True


def assemble(sections: Iterable[Section]) -> list[Chapter]:
    """Normalise sections into chapters, dropping or merging the ones without body text."""
    chapters: list[Chapter] = []
    carried: list[str] = []
    for section in sections:
        title = normalize_text(section.title)
        paragraphs = [p for p in map(normalize_text, section.paragraphs) if p]
        if not paragraphs:
            if section.merge_if_empty and title:
                carried.append(chapter_heading(title))
            continue
        own = chapter_heading(title) if title and section.speak_heading else ""
        # headings of empty sections before it (a book title, a part) are said first
        spoken = [h.rstrip(".") for h in (*carried, own) if h]
        chapters.append(
            Chapter(
                title=title or "Untitled",
                paragraphs=tuple(paragraphs),
                heading=". ".join(spoken),
                source=section.source,
            )
        )
        carried = []
    return chapters


def decode_utf8(data: bytes, name: str) -> str:
    """Decode UTF-8 (dropping a BOM), or raise MalformedDocumentError naming the offset."""
    body = data[len(UTF8_BOM) :] if data.startswith(UTF8_BOM) else data
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = exc.start + (len(data) - len(body))
        raise MalformedDocumentError(
            f"{name} is not valid UTF-8 text: byte 0x{body[exc.start]:02x} at byte offset "
            f"{offset} cannot be decoded",
            hint="save the file as UTF-8 (most editors offer this under 'Save As' / "
            "'Encoding') and try again",
        ) from None


def prettify_stem(stem: str) -> str:
    """A display title from a file name stem: ``the_time-machine`` -> ``The Time Machine``."""
    words = re.sub(r"(?<!\d)-|-(?!\d)|_", " ", stem).split()
    title = " ".join(words)
    if title == title.lower():
        title = " ".join(w[:1].upper() + w[1:] for w in words)
    return title or "Untitled"


# --- plain text -----------------------------------------------------------------------

_HEADING_SEPARATOR = r"(?:\s*[:.\u2014\u2013-]\s*\S.*)?"
_LABELLED_HEADING_RE = re.compile(
    rf"(?:chapter|part|book)\s+(?P<num>{NUMBER_PATTERN})\.?{_HEADING_SEPARATOR}",
    re.IGNORECASE,
)
_NAMED_HEADING_RE = re.compile(
    rf"(?:prologue|epilogue|preface|foreword|afterword|introduction)\.?{_HEADING_SEPARATOR}",
    re.IGNORECASE,
)
_MAX_HEADING_CHARS = 100
_CJK_NUMERALS = "一二三四五六七八九十百千万零〇两壹贰叁肆伍陆柒捌玖拾佰仟0-9０-９"
#: 第一章, 第十二回 风雪, 卷三, 第1話: a numbered division, then perhaps a title that is
#: not a sentence (no full stop, question or exclamation mark)
_CJK_NUMBERED_HEADING_RE = re.compile(
    rf"(?:第[{_CJK_NUMERALS}]+[章回节節卷篇部集话話幕]|卷[{_CJK_NUMERALS}]+)"
    r"(?:[\s\u3000:：·．.、—-]*[^\s。！？!?][^。！？!?]{0,39})?"
)
#: 学而篇, 为政篇: the name of a classic's book
_CJK_NAMED_HEADING_RE = re.compile(r"[\u4e00-\u9fff]{1,8}篇")
_CJK = r"\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef"
_CJK_JOIN_RE = re.compile(rf"(?<=[{_CJK}])\n(?=[{_CJK}])")


def is_heading_line(line: str) -> bool:
    """Whether a line standing on its own looks like a chapter heading."""
    line = line.strip()
    if not line or len(line) > _MAX_HEADING_CHARS:
        return False
    if _NAMED_HEADING_RE.fullmatch(line):
        return True
    if _CJK_NUMBERED_HEADING_RE.fullmatch(line) or _CJK_NAMED_HEADING_RE.fullmatch(line):
        return True
    match = _LABELLED_HEADING_RE.fullmatch(line)
    return bool(match and parse_number(match.group("num")))


def _blocks(text: str) -> list[tuple[int, list[str]]]:
    """Runs of non-blank lines with the 1-based number of their first line."""
    blocks: list[tuple[int, list[str]]] = []
    current: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            if not current:
                blocks.append((number, current))
            current.append(line.strip())
        else:
            current = []
    return blocks


def _join_lines(lines: list[str]) -> str:
    return _CJK_JOIN_RE.sub("", "\n".join(lines)).replace("\n", " ")


def split_sections(text: str, fallback_title: str) -> list[Section]:
    """Split plain text into sections at heading lines."""
    # the title of text before any heading is made up (file name, "Introduction"): not spoken
    preamble = Section(fallback_title, source="line 1", merge_if_empty=False, speak_heading=False)
    sections = [preamble]
    for number, lines in _blocks(text):
        if is_heading_line(lines[0]):
            sections.append(Section(lines[0], source=f"line {number}"))
            lines = lines[1:]
        if lines:
            sections[-1].paragraphs.append(_join_lines(lines))
    if len(sections) > 1 and preamble.paragraphs:
        preamble.title = "Introduction"
    return sections


def parse(data: bytes, name: str, stem: str) -> Document:
    """Parse UTF-8 plain text into a Document."""
    text = decode_utf8(data, name)
    chapters = assemble(split_sections(text, prettify_stem(stem)))
    return Document(chapters=tuple(chapters), format="text")
