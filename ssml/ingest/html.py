"""HTML ingest, plus the block extraction that EPUB content documents share.

``h1``/``h2`` start chapters; ``p``, ``li``, ``blockquote``, ``dd``, ``dt``, ``td``/``th``,
``h3``-``h6`` and the loose text of a ``div`` become paragraphs. Scripts, styles,
navigation, headers, footers, asides, ``pre`` blocks, images and footnote machinery
(noterefs, backlinks, footnote/endnote sections, ``<sup>`` footnote markers) are dropped.
MathML ``<math>`` becomes LaTeX (its TeX annotation, a LaTeX ``alttext``, or a
conversion of its presentation markup: :mod:`ssml.latex.mathml`) between ``\\(...\\)``
(``\\[...\\]`` for ``display="block"``), which the annotation stage reads aloud.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ssml.document import Document
from ssml.ingest.safexml import parse_html
from ssml.ingest.text import Section, assemble, decode_utf8
from ssml.latex.mathml import math_source

EPUB_NS = "http://www.idpf.org/2007/ops"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_ALWAYS_DROPPED = _words(
    "script style noscript template nav aside footer head title meta link pre svg img "
    "picture video audio object embed iframe canvas map area button input select "
    "textarea option rt rp"
)
_BLOCKS = _words(
    "html body main article section div p ul ol li dl dt dd blockquote table thead "
    "tbody tfoot tr td th caption figure figcaption h1 h2 h3 h4 h5 h6 hgroup address "
    "center details summary fieldset legend form header hr menu"
)
_HEADINGS = {f"h{n}": n for n in range(1, 7)}
_NOTE_LINK_TYPES = _words("noteref backlink annoref pagebreak")
_NOTE_LINK_ROLES = _words("doc-noteref doc-backlink doc-pagebreak")
_NOTE_LINK_CLASSES = _words("footnote-ref footnote-backref footnoteref noteref")
NOTE_TYPES = _words("footnote footnotes endnote endnotes rearnote rearnotes note")
_NOTE_ROLES = _words("doc-footnote doc-endnote doc-endnotes")
_NOTE_CLASSES = _words("footnotes footnote endnotes")
_MARKER_RE = re.compile(r"[\[(]?\s*(?:\d{1,3}|[*†‡§¶#]{1,3})\s*[\])]?")
_LINKED_MARKER_RE = re.compile(
    r"[\[(]?\s*(?:\d{1,3}|[a-z]{1,2}|[ivxlc]{1,6}|[*†‡§¶#]{1,3})\s*[\])]?"
)
_MAX_MARKER_CHARS = 12


@dataclass(frozen=True)
class Block:
    """A paragraph-level piece of text; ``level`` is 1-6 for a heading, 0 otherwise."""

    text: str
    level: int = 0
    line: int = 0  # source line of the element, when the parser knows it


def local_name(el: Any) -> str:
    """The tag name without namespace, lower-cased ("" for comments and the like)."""
    tag = el.tag
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1].lower()


def epub_types(el: Any) -> set[str]:
    """The tokens of an element's ``epub:type`` (with or without the namespace)."""
    value = el.get(f"{{{EPUB_NS}}}type") or el.get("epub:type") or ""
    return {token.rsplit(":", 1)[-1].lower() for token in str(value).split()}


def _is_note_machinery(el: Any, name: str, drop_notes: bool) -> bool:
    """Noterefs, backlinks and footnote markers; footnote bodies too if ``drop_notes``."""
    types = epub_types(el)
    role = str(el.get("role") or "")
    classes = set(str(el.get("class") or "").split())
    if types & _NOTE_LINK_TYPES or role in _NOTE_LINK_ROLES or classes & _NOTE_LINK_CLASSES:
        return True
    if drop_notes and (types & NOTE_TYPES or role in _NOTE_ROLES or classes & _NOTE_CLASSES):
        return True
    return name == "sup" and _is_footnote_sup(el)


def is_footnote_marker(text: str, *, linked: bool = False) -> bool:
    """Whether superscript text is a footnote marker: ``1``, ``[12]``, ``*``, ``†``.

    A linked superscript may also be a letter or a small Roman numeral (``a``, ``iv``).
    """
    text = text.strip()
    if not text or len(text) > _MAX_MARKER_CHARS:
        return False
    return bool((_LINKED_MARKER_RE if linked else _MARKER_RE).fullmatch(text))


def _is_footnote_sup(el: Any) -> bool:
    text = "".join(el.itertext())
    linked = any(local_name(a) == "a" for a in el.iter())
    return is_footnote_marker(text, linked=linked)


@dataclass(frozen=True)
class Options:
    """What to leave out: ``<header>`` elements, footnote/endnote bodies."""

    drop_header: bool = True
    drop_notes: bool = True


def _is_dropped(el: Any, name: str, options: Options) -> bool:
    if not name or name in _ALWAYS_DROPPED or (options.drop_header and name == "header"):
        return True
    return el.get("hidden") is not None or _is_note_machinery(el, name, options.drop_notes)


def is_dropped(el: Any, options: Options = Options()) -> bool:
    """Whether ingest leaves ``el`` (and all it holds, but not its tail) out of the text."""
    return _is_dropped(el, local_name(el), options)


def heading_level(el: Any) -> int:
    """1-6 for ``h1``-``h6``, else 0."""
    return _HEADINGS.get(local_name(el), 0)


def is_block(el: Any) -> bool:
    """Whether ingest reads ``el`` as a block of its own (a paragraph or a container)."""
    return local_name(el) in _BLOCKS


def inline_text(el: Any, options: Options = Options()) -> str:
    """The text of an element read as inline content (its tail not included)."""
    name = local_name(el)
    if _is_dropped(el, name, options):
        return ""
    if name == "math":
        tex = math_source(el)
        if not tex:
            return _math_text(el)
        return f"\\[{tex}\\]" if el.get("display") == "block" else f"\\({tex}\\)"
    if name == "br":
        return " "
    parts = [el.text or ""]
    for child in el:
        parts.append(inline_text(child, options))
        parts.append(child.tail or "")
    return "".join(parts)


def _math_text(el: Any) -> str:
    """MathML text content, leaving out ``<annotation>`` (TeX, MathML-content) copies."""
    if local_name(el) in ("annotation", "annotation-xml"):
        return ""
    parts = [el.text or ""]
    for child in el:
        parts.append(_math_text(child))
        parts.append(child.tail or "")
    return "".join(parts)


class _Extractor:
    def __init__(self, options: Options) -> None:
        self.options = options
        self.blocks: list[Block] = []

    def _flush(self, parts: list[str], line: int, level: int = 0) -> None:
        text = "".join(parts)
        if text.strip():
            self.blocks.append(Block(text, level, line))
        parts.clear()

    def container(self, el: Any) -> None:
        parts: list[str] = [el.text or ""]
        line = el.sourceline or 0
        for child in el:
            name = local_name(child)
            if _is_dropped(child, name, self.options):
                pass
            elif name in _HEADINGS:
                self._flush(parts, line)
                text = inline_text(child, self.options)
                self._flush([text], child.sourceline or 0, _HEADINGS[name])
            elif name in _BLOCKS:
                self._flush(parts, line)
                self.container(child)
            else:
                parts.append(inline_text(child, self.options))
            parts.append(child.tail or "")
            line = child.sourceline or line
        self._flush(parts, line)


def extract_blocks(root: Any, options: Options = Options()) -> list[Block]:
    """The paragraph-level blocks of an (X)HTML element, in document order."""
    extractor = _Extractor(options)
    extractor.container(root)
    return extractor.blocks


def find_body(root: Any) -> Any:
    """The ``<body>`` element (or the root if there is none)."""
    for el in root.iter():
        if local_name(el) == "body":
            return el
    return root


def find_title(root: Any) -> str | None:
    """The text of ``<head><title>``, whitespace-collapsed, or None."""
    for el in root.iter():
        if local_name(el) == "title":
            text = " ".join("".join(el.itertext()).split())
            return text or None
        if local_name(el) == "body":
            break
    return None


def find_language(root: Any) -> str | None:
    """The ``lang``/``xml:lang`` of the root element, or None."""
    value = root.get("lang") or root.get(XML_LANG) or root.get("xml:lang")
    return str(value).strip() or None if value else None


def sections_from_blocks(blocks: list[Block], preamble_title: str) -> list[Section]:
    """Split blocks into sections at ``h1``/``h2``; deeper headings become paragraphs."""
    sections = [Section(preamble_title, merge_if_empty=False, source="line 1", speak_heading=False)]
    for block in blocks:
        if 1 <= block.level <= 2:
            sections.append(Section(block.text, source=f"line {block.line}"))
        else:
            sections[-1].paragraphs.append(block.text)
    return sections


def parse(data: bytes, name: str, stem: str) -> Document:
    """Parse a UTF-8 HTML page into a Document."""
    if not decode_utf8(data, name).strip():  # also: a clear error for non-UTF-8 input
        return Document(chapters=(), format="html")
    root = parse_html(data, name)
    title = find_title(root)
    blocks = extract_blocks(find_body(root))
    chapters = assemble(sections_from_blocks(blocks, title or "Introduction"))
    return Document(
        chapters=tuple(chapters), title=title, language=find_language(root), format="html"
    )
