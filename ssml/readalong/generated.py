"""XHTML written from a chapter's text: the read-along chapters of a Markdown, text, HTML or
SSML input (and the credits of any input), plus the nav document, the stylesheet with the
active class and ``META-INF/container.xml``.

A chapter is a ``<section epub:type="chapter">``: the spoken heading (when the chapter
text starts with one) as ``<h1>``, each other block as ``<p>``; each sentence with words a
``<span id="…sN">`` and each voiced word inside it a ``<span id="…wI">`` (``I``: the
word's index in the chapter's track). The text is the chapter text itself, so every word
is placed; text the word track does not cover (a failed segment of a partial job) is
written without spans. Everything is built with lxml: the text is escaped by construction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lxml import etree

from ssml.readalong.overlay import EPUB_NS, Group, Par
from ssml.readalong.words import (
    Layout,
    MarkStats,
    SentenceWords,
    TrackWord,
    is_voiced,
    sentence_id,
    word_id,
)

XHTML_NS = "http://www.w3.org/1999/xhtml"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
CONTAINER_NS = "urn:oasis:names:tc:opendocument:xmlns:container"
DOCTYPE = "<!DOCTYPE html>"
#: the class reading systems give the element being read (``media:active-class``)
ACTIVE_CLASS = "-epub-media-overlay-active"
STYLESHEET = (
    "/* narrate read-along: the element being read aloud */\n"
    f".{ACTIVE_CLASS} {{\n"
    "  background-color: #ffe58a;\n"
    "  color: #000000;\n"
    "  border-radius: 0.15em;\n"
    "}\n"
)


def x(name: str) -> str:
    """An XHTML tag name."""
    return f"{{{XHTML_NS}}}{name}"


def xhtml_bytes(root: Any) -> bytes:
    """An XHTML document as UTF-8 with an XML declaration and the HTML doctype."""
    data: bytes = etree.tostring(
        root, encoding="utf-8", xml_declaration=True, doctype=DOCTYPE, pretty_print=False
    )
    return data + b"\n"


def _skeleton(title: str, language: str, css_href: str | None) -> tuple[Any, Any]:
    root = etree.Element(x("html"), nsmap={None: XHTML_NS, "epub": EPUB_NS})
    root.set(XML_LANG, language)
    root.set("lang", language)
    head = etree.SubElement(root, x("head"))
    etree.SubElement(head, x("meta"), charset="utf-8")
    etree.SubElement(head, x("title")).text = title
    if css_href:
        etree.SubElement(head, x("link"), rel="stylesheet", type="text/css", href=css_href)
    return root, etree.SubElement(root, x("body"))


class _Element:
    """An element being filled, and its last child (where text goes next)."""

    def __init__(self, element: Any) -> None:
        self.element = element
        self.last: Any = None

    def text(self, text: str) -> None:
        if not text:
            return
        if self.last is None:
            self.element.text = (self.element.text or "") + text
        else:
            self.last.tail = (self.last.tail or "") + text

    def child(self, tag: str, **attributes: str) -> Any:
        self.last = etree.SubElement(self.element, tag, attributes)
        return self.last


class GeneratedChapter:
    """A chapter's XHTML built from its text, one sentence (and its words) at a time."""

    def __init__(
        self, layout: Layout, *, title: str, language: str, css_href: str | None, prefix: str
    ) -> None:
        self.layout = layout
        self.text = layout.text
        self.prefix = prefix
        self.stats = MarkStats()
        self.root, body = _skeleton(title, language, css_href)
        section = etree.SubElement(body, x("section"), id=f"{prefix}chapter")
        section.set(f"{{{EPUB_NS}}}type", "chapter")
        self.section = _Element(section)
        self.cursor = 0
        self.block_index = 0
        self.block: _Element | None = None

    # --- plain text between sentences ---------------------------------------------------

    def _open_block(self) -> _Element:
        if self.block is None:
            spec = self.layout.blocks[self.block_index]
            self.block = _Element(self.section.child(x("h1" if spec.heading else "p")))
        return self.block

    def _close_block_at_end(self) -> None:
        if self.cursor >= self.layout.blocks[self.block_index].end:
            self.block = None
            self.block_index += 1

    def _plain(self, upto: int) -> None:
        """Write the text up to ``upto`` without spans, opening and closing blocks."""
        blocks = self.layout.blocks
        while self.cursor < upto and self.block_index < len(blocks):
            spec = blocks[self.block_index]
            if self.cursor < spec.start:  # the blank line between two blocks
                self.cursor = min(upto, spec.start)
                continue
            end = min(upto, spec.end)
            self._open_block().text(self.text[self.cursor : end])
            self.cursor = end
            self._close_block_at_end()

    # --- sentences --------------------------------------------------------------------

    def add(self, group: SentenceWords[TrackWord]) -> Group:
        """Write a sentence and its words; the overlay group that reads them."""
        sentence = group.sentence
        self._plain(sentence.start)
        voiced = [w for _i, w in group.words if is_voiced(w)]
        begin = min((w.start_ms for w in voiced), default=0)
        end = max((w.end_ms for w in voiced), default=0)
        self.stats.words += len(group.words)
        if self.block_index != sentence.block or self.cursor > sentence.start:
            # out of step with the text (never for a consistent track): no elements
            self.stats.unplaced += len(voiced)
            self.stats.silent += len(group.words) - len(voiced)
            return Group(None, begin, end)
        block_end = self.layout.blocks[sentence.block].end
        fragment = sentence_id(self.prefix, sentence.number)
        span = _Element(self._open_block().child(x("span"), id=fragment))
        pars: list[Par] = []
        for index, word in group.words:
            if word.char_start < self.cursor or word.char_end > block_end:
                self.stats.unplaced += is_voiced(word)
                self.stats.silent += not is_voiced(word)
                continue
            span.text(self.text[self.cursor : word.char_start])
            written = self.text[word.char_start : word.char_end]
            if is_voiced(word):
                ident = word_id(self.prefix, index)
                span.child(x("span"), id=ident).text = written
                pars.append(Par(ident, word.start_ms, word.end_ms))
                self.stats.placed += 1
            else:
                span.text(written)
                self.stats.silent += 1
            self.cursor = word.char_end
        stop = min(max(sentence.end, self.cursor), block_end)
        span.text(self.text[self.cursor : stop])
        self.cursor = stop
        self._close_block_at_end()
        return Group(fragment, begin, end, tuple(pars))

    def finish(self) -> bytes:
        """The rest of the text, and the document."""
        self._plain(len(self.text))
        return xhtml_bytes(self.root)


def nav_document(
    title: str, language: str, entries: Sequence[tuple[str, str]], css_href: str | None = None
) -> bytes:
    """The EPUB 3 navigation document: a table of contents of ``(title, href)``."""
    root, body = _skeleton(title, language, css_href)
    nav = etree.SubElement(body, x("nav"), id="toc")
    nav.set(f"{{{EPUB_NS}}}type", "toc")
    etree.SubElement(nav, x("h1")).text = "Contents"
    listing = etree.SubElement(nav, x("ol"))
    for name, href in entries:
        item = etree.SubElement(listing, x("li"))
        etree.SubElement(item, x("a"), href=href).text = name
    return xhtml_bytes(root)


def container_xml(package_path: str) -> bytes:
    """``META-INF/container.xml`` naming the package document."""
    root = etree.Element(f"{{{CONTAINER_NS}}}container", nsmap={None: CONTAINER_NS})
    root.set("version", "1.0")
    files = etree.SubElement(root, f"{{{CONTAINER_NS}}}rootfiles")
    etree.SubElement(
        files,
        f"{{{CONTAINER_NS}}}rootfile",
        {"full-path": package_path, "media-type": "application/oebps-package+xml"},
    )
    data: bytes = etree.tostring(root, encoding="utf-8", xml_declaration=True)
    return data + b"\n"
