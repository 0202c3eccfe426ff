"""DOCX ingest: a Word manuscript (as Word, LibreOffice or python-docx save it) into chapters.

The archive is read with the caps every zip input gets (:class:`~ssml.ingest.archive.Archive`:
member count, sizes, compression ratio) and its XML parts with the hardened parser (no
entities, no DTD, no network). Relationships are never followed; a document that depends
on an external one other than a hyperlink (a remote template, linked sub-document, OLE
link or linked image, the usual carriers of template-injection attacks) is refused.

What is read, in the order of ``word/document.xml``:

* **Chapters** start at paragraphs styled *Title*, *Heading 1* and *Heading 2* (by the
  style's built-in name, so localised Word files work, or its outline level); a heading
  directly followed by another (a title page's *Title*, then *Heading 1*) is said before
  it. A manuscript without heading styles is cut at "Chapter N" paragraphs, as plain
  text is. Deeper headings are read as paragraphs. Table-of-contents paragraphs and
  content controls are skipped.
* **Paragraphs** with their text runs, tabs and line breaks as spaces, the visible result
  of fields (not their codes), hyperlinks' text, and images' alt text. Hidden text and
  text boxes are not read. **Italic** and **bold** runs (directly, or through a character
  style) become :class:`~ssml.annotations.Emphasis` (moderate and strong), which engines
  that can express it speak.
* **Lists**: each item is a paragraph, numbered items with their number as the document
  shows it ("1.", "b.", "iv."); an item that ends without punctuation gets a full stop
  so it is read as a sentence.
* **Tables** are read row by row: one paragraph per row, its cells joined with commas.
* **Tracked changes** are read as if accepted: insertions and moves in, deletions out
  (a deleted paragraph mark joins the paragraph to the next).
* **Footnotes and endnotes** are skipped, like an EPUB's notes, unless matter is kept
  (``--include-matter``): then each is read after the paragraph that cites it
  ("Footnote 1: ...").
* Never read: headers, footers, comments, the document's settings and custom XML.
* **Metadata** from ``docProps/core.xml``: title, authors (``dc:creator``, several
  separated by ``;``), language, description and date become the book metadata.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from narrate.errors import MalformedDocumentError
from ssml.annotations import Annotation, Emphasis
from ssml.document import BookMetadata, Chapter, Document
from ssml.ingest.archive import DEFAULT_ZIP_LIMITS, DOCX, ZIP_MAGIC, Archive, ZipLimits
from ssml.ingest.text import Section, assemble, is_heading_line, prettify_stem

W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
REL = "http://schemas.openxmlformats.org/package/2006/relationships"
WP = "http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing"
MC = "http://schemas.openxmlformats.org/markup-compatibility/2006"
VML = "urn:schemas-microsoft-com:vml"
DC = "http://purl.org/dc/elements/1.1/"
DCTERMS = "http://purl.org/dc/terms/"
OFFICE_DOCUMENT = f"{R}/officeDocument"
MAIN_PART = "word/document.xml"
HYPERLINK = f"{R}/hyperlink"

#: private-use characters that carry emphasis through normalisation (never in a DOCX's
#: text: they are taken out of the parts before parsing if they are)
_OPEN = {"moderate": "\ue000", "strong": "\ue002"}
_CLOSE = {"moderate": "\ue001", "strong": "\ue003"}
_MARKERS = frozenset(_OPEN.values()) | frozenset(_CLOSE.values())
_MARKER_RE = re.compile("[\ue000-\ue003]")
_ENDS_SENTENCE_RE = re.compile(r"[.!?…:;。！？\"'”’)\]]\s*$")
_OFF = frozenset({"0", "false", "off", "none"})
_NOTE_SKIPPED_TYPES = frozenset({"separator", "continuationSeparator", "continuationNotice"})
_MAX_STYLE_DEPTH = 20


def w(name: str) -> str:
    return f"{{{W}}}{name}"


def looks_like_docx(data: bytes) -> bool:
    """A zip whose directory names ``word/document.xml`` (read without unpacking)."""
    return data.startswith(ZIP_MAGIC) and MAIN_PART.encode() in data[-65536:]


def parse(
    data: bytes,
    name: str,
    stem: str,
    *,
    include_matter: bool = False,
    limits: ZipLimits = DEFAULT_ZIP_LIMITS,
) -> Document:
    """Parse a DOCX archive into a Document (see the module docstring)."""
    with Archive(data, name, DOCX, limits) as archive:
        _refuse_external_relationships(archive)
        main = _main_part(archive)
        root = archive.xml(main)
        body = root.find(w("body"))
        if body is None:
            raise archive.broken(f"{main} has no <w:body>")
        styles = _Styles(archive.xml("word/styles.xml") if archive.has("word/styles.xml") else None)
        numbering = _Numbering(
            archive.xml("word/numbering.xml") if archive.has("word/numbering.xml") else None
        )
        notes = {
            kind: _read_notes(archive, f"word/{kind}s.xml") if include_matter else {}
            for kind in ("footnote", "endnote")
        }
        core = archive.xml("docProps/core.xml") if archive.has("docProps/core.xml") else None
        metadata = _metadata(core) if core is not None else BookMetadata()
        language = metadata.language or styles.language
        walker = _Walker(styles, numbering, notes)
        paragraphs = list(walker.body(body))
        warnings = list(archive.warnings)
    if walker.skipped and not include_matter:
        warnings.append(
            f"skipped {walker.skipped} footnote(s) and endnote(s) of {name}; "
            "--include-matter reads each after the paragraph that cites it"
        )
    chapters = _chapters(paragraphs, metadata.title or prettify_stem(stem))
    return Document(
        chapters=tuple(chapters),
        title=metadata.title,
        language=language,
        format="docx",
        warnings=tuple(warnings),
        metadata=replace(metadata, language=language),
    )


# --- the package ----------------------------------------------------------------------


def _refuse_external_relationships(archive: Archive) -> None:
    """Refuse a document with an external relationship other than a hyperlink."""
    for member in archive.names.values():
        if not member.endswith(".rels"):
            continue
        for rel in archive.xml(member).iter(f"{{{REL}}}Relationship"):
            if (rel.get("TargetMode") or "").lower() != "external":
                continue
            kind = (rel.get("Type") or "").rsplit("/", 1)[-1]
            if rel.get("Type") == HYPERLINK:
                continue
            target = (rel.get("Target") or "")[:200]
            raise MalformedDocumentError(
                f"{archive.name} depends on an external {kind or 'resource'} ({target!r}, "
                f"in {member}); narrate never fetches one and refuses such documents, "
                "which is how remote-template attacks start",
                hint="remove the link (in Word: File > Info > Edit Links to Files, or the "
                "template in Developer > Document Template) and save the document again",
            )


def _main_part(archive: Archive) -> str:
    """The main document part the package relationships name (usually word/document.xml)."""
    if archive.has("_rels/.rels"):
        for rel in archive.xml("_rels/.rels").iter(f"{{{REL}}}Relationship"):
            if rel.get("Type") == OFFICE_DOCUMENT and rel.get("Target"):
                path = posixpath.normpath(str(rel.get("Target")).lstrip("/"))
                if archive.has(path):
                    return path
    if archive.has(MAIN_PART):
        return MAIN_PART
    raise MalformedDocumentError(
        f"{archive.name} is not a Word document: it has no {MAIN_PART}",
        hint="give a .docx saved by Word, LibreOffice or Google Docs (not .doc, .odt or .pages)",
    )


def _metadata(core: Any) -> BookMetadata:
    def text(ns: str, name: str) -> str | None:
        el = core.find(f"{{{ns}}}{name}")
        value = " ".join((el.text or "").split()) if el is not None else ""
        return value or None

    creators = text(DC, "creator")
    authors = tuple(a.strip() for a in (creators or "").split(";") if a.strip())
    date = text(DCTERMS, "created")
    return BookMetadata(
        title=text(DC, "title"),
        authors=authors,
        language=text(DC, "language"),
        date=date[:10] if date else None,
        description=text(DC, "description"),
    )


def _read_notes(archive: Archive, path: str) -> dict[str, str]:
    """Footnote or endnote texts by id (separators left out)."""
    if not archive.has(path):
        return {}
    notes: dict[str, str] = {}
    walker = _Walker(_Styles(None), _Numbering(None), {})
    for note in archive.xml(path):
        if note.get(w("type")) in _NOTE_SKIPPED_TYPES or note.get(w("id")) is None:
            continue
        texts = [_MARKER_RE.sub("", p.text) for p in walker.body(note)]
        notes[str(note.get(w("id")))] = " ".join(t.strip() for t in texts if t.strip())
    return notes


# --- styles and numbering ---------------------------------------------------------------


@dataclass(frozen=True)
class _Style:
    name: str
    based_on: str | None
    outline_level: int | None
    numbered: tuple[str, str] | None  # (numId, ilvl)
    emphasis: str | None


class _Styles:
    """Paragraph and character styles: heading levels, list numbering, emphasis."""

    def __init__(self, root: Any) -> None:
        self.styles: dict[str, _Style] = {}
        self.language: str | None = None
        if root is None:
            return
        for style in root.iter(w("style")):
            style_id = style.get(w("styleId"))
            if not style_id:
                continue
            name_el = style.find(w("name"))
            based = style.find(w("basedOn"))
            ppr = style.find(w("pPr"))
            self.styles[style_id] = _Style(
                name=str(name_el.get(w("val")) or "").lower() if name_el is not None else "",
                based_on=based.get(w("val")) if based is not None else None,
                outline_level=_outline_level(ppr),
                numbered=_num_pr(ppr),
                emphasis=_emphasis_of(style.find(w("rPr"))),
            )
        lang = root.find(f"{w('docDefaults')}/{w('rPrDefault')}/{w('rPr')}/{w('lang')}")
        if lang is not None and lang.get(w("val")):
            self.language = str(lang.get(w("val")))

    def chain(self, style_id: str | None) -> Iterator[_Style]:
        """The style and those it is based on (bounded: a cycle cannot loop)."""
        for _ in range(_MAX_STYLE_DEPTH):
            style = self.styles.get(style_id or "")
            if style is None:
                return
            yield style
            style_id = style.based_on

    def heading_level(self, style_id: str | None) -> int:
        """1 for Title and Heading 1, 2 for Heading 2, ...; 0 for body text."""
        for style in self.chain(style_id):
            if style.name == "title":
                return 1
            match = re.fullmatch(r"heading (\d)", style.name)
            if match:
                return int(match.group(1))
            if style.outline_level is not None:
                return style.outline_level + 1
        return 0

    def is_contents(self, style_id: str | None) -> bool:
        """A table-of-contents paragraph (TOC 1..9, TOC Heading)."""
        return any(s.name.startswith("toc") for s in self.chain(style_id))

    def numbered(self, style_id: str | None) -> tuple[str, str] | None:
        return next((s.numbered for s in self.chain(style_id) if s.numbered), None)

    def emphasis(self, style_id: str | None) -> str | None:
        return next((s.emphasis for s in self.chain(style_id) if s.emphasis), None)


def _outline_level(ppr: Any) -> int | None:
    el = ppr.find(w("outlineLvl")) if ppr is not None else None
    value = el.get(w("val")) if el is not None else None
    return int(value) if value is not None and value.isdigit() and int(value) < 9 else None


def _num_pr(ppr: Any) -> tuple[str, str] | None:
    num = ppr.find(w("numPr")) if ppr is not None else None
    if num is None:
        return None
    num_id, ilvl = num.find(w("numId")), num.find(w("ilvl"))
    if num_id is None or num_id.get(w("val")) in (None, "0"):
        return None
    level = ilvl.get(w("val")) if ilvl is not None else "0"
    return str(num_id.get(w("val"))), str(level or "0")


def _emphasis_of(rpr: Any) -> str | None:
    """``strong`` for bold, ``moderate`` for italic (or an East Asian emphasis mark)."""
    if rpr is None:
        return None

    def on(name: str) -> bool:
        el = rpr.find(w(name))
        return el is not None and str(el.get(w("val")) or "true").lower() not in _OFF

    if on("b") or on("bCs"):
        return "strong"
    if on("i") or on("iCs") or (rpr.find(w("em")) is not None and on("em")):
        return "moderate"
    return None


class _Numbering:
    """List labels as the document shows them: counters per list and level."""

    def __init__(self, root: Any) -> None:
        self.formats: dict[tuple[str, str], tuple[str, int]] = {}
        self.counters: dict[str, list[int]] = {}
        if root is None:
            return
        abstract: dict[str, dict[str, tuple[str, int]]] = {}
        for node in root.iter(w("abstractNum")):
            levels = {}
            for lvl in node.iter(w("lvl")):
                fmt, start = lvl.find(w("numFmt")), lvl.find(w("start"))
                levels[str(lvl.get(w("ilvl")) or "0")] = (
                    str(fmt.get(w("val")) or "decimal") if fmt is not None else "decimal",
                    _int(start.get(w("val")) if start is not None else None, 1),
                )
            abstract[str(node.get(w("abstractNumId")))] = levels
        for num in root.iter(w("num")):
            ref = num.find(w("abstractNumId"))
            if ref is None:
                continue
            for level, spec in abstract.get(str(ref.get(w("val"))), {}).items():
                self.formats[(str(num.get(w("numId"))), level)] = spec

    def label(self, num_id: str, ilvl: str) -> str:
        """The next item's label in list ``num_id`` at level ``ilvl`` ("" for bullets)."""
        fmt, start = self.formats.get((num_id, ilvl), ("bullet", 1))
        level = _int(ilvl, 0)
        counters = self.counters.setdefault(num_id, [])
        while len(counters) <= level:
            counters.append(0)
        del counters[level + 1 :]  # a shallower item restarts deeper levels
        counters[level] += 1
        number = start + counters[level] - 1
        return _format_number(fmt, number)


def _int(value: str | None, default: int) -> int:
    return int(value) if value is not None and value.lstrip("-").isdigit() else default


def _format_number(fmt: str, number: int) -> str:
    if fmt in ("decimal", "decimalZero", "ordinal", "cardinalText", "ordinalText"):
        return f"{number}."
    if fmt in ("lowerLetter", "upperLetter") and 1 <= number <= 26:
        letter = chr(ord("a") + number - 1)
        return f"{letter.upper() if fmt == 'upperLetter' else letter}."
    if fmt in ("lowerRoman", "upperRoman") and 1 <= number < 4000:
        roman = _roman(number)
        return f"{roman if fmt == 'upperRoman' else roman.lower()}."
    return ""  # bullet, none, and formats with no spoken label


def _roman(number: int) -> str:
    out = []
    for value, letters in (
        (1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"),
        (50, "L"), (40, "XL"), (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I"),
    ):  # fmt: skip
        count, number = divmod(number, value)
        out.append(letters * count)
    return "".join(out)


# --- the body -----------------------------------------------------------------------------


@dataclass
class _Paragraph:
    """A paragraph's text (emphasis marked by private-use characters) and its kind."""

    text: str
    level: int = 0  # heading level, 0 for body text
    #: its paragraph mark was deleted (a tracked change): it joins the next paragraph
    joins_next: bool = False
    notes: list[str] = field(default_factory=list)


class _Walker:
    """Walks a body (``w:body``, a table cell, a note) into paragraphs."""

    def __init__(
        self, styles: _Styles, numbering: _Numbering, notes: dict[str, dict[str, str]]
    ) -> None:
        self.styles = styles
        self.numbering = numbering
        self.notes = notes
        self.counts = {"footnote": 0, "endnote": 0}
        #: notes cited but not read (matter not kept)
        self.skipped = 0

    def body(self, container: Any) -> Iterator[_Paragraph]:
        pending: _Paragraph | None = None
        for paragraph in self._blocks(container):
            if pending is not None:
                paragraph = _Paragraph(
                    f"{pending.text} {paragraph.text}".strip(),
                    pending.level or paragraph.level,
                    paragraph.joins_next,
                    pending.notes + paragraph.notes,
                )
                pending = None
            if paragraph.joins_next:
                pending = paragraph
                continue
            yield paragraph
        if pending is not None:
            yield pending

    def _blocks(self, container: Any) -> Iterator[_Paragraph]:
        for child in container:
            tag = child.tag
            if tag == w("p"):
                paragraph = self.paragraph(child)
                if paragraph is not None:
                    yield paragraph
            elif tag == w("tbl"):
                yield from self.table(child)
            elif tag == w("sdt"):
                if not _is_contents_control(child):
                    content = child.find(w("sdtContent"))
                    if content is not None:
                        yield from self._blocks(content)
            elif tag in (w("ins"), w("moveTo"), w("customXml"), w("smartTag")):
                yield from self._blocks(child)
            elif tag == f"{{{MC}}}AlternateContent":
                choice = _first_choice(child)
                if choice is not None:
                    yield from self._blocks(choice)

    def table(self, table: Any) -> Iterator[_Paragraph]:
        """One paragraph per row, its cells' texts joined by commas (a nested table's
        text is read inside its cell)."""
        for row in table.findall(w("tr")):
            cells = []
            for cell in row.findall(w("tc")):
                texts = [p.text.rstrip(".") for p in self.body(cell) if _visible(p.text)]
                if texts:
                    cells.append(" ".join(texts))
            if not cells:
                continue
            text = ", ".join(cells)
            if not _ENDS_SENTENCE_RE.search(_MARKER_RE.sub("", text)):
                text += "."
            yield _Paragraph(text)

    def paragraph(self, p: Any) -> _Paragraph | None:
        ppr = p.find(w("pPr"))
        style_el = ppr.find(w("pStyle")) if ppr is not None else None
        style = style_el.get(w("val")) if style_el is not None else None
        if self.styles.is_contents(style):
            return None
        level = _outline_level(ppr)
        heading = level + 1 if level is not None else self.styles.heading_level(style)
        mark = ppr.find(f"{w('rPr')}/{w('del')}") if ppr is not None else None
        cited: list[str] = []
        parts = list(self._inline(p, self.styles.emphasis(None), cited))
        text = " ".join("".join(parts).split())
        if heading:
            text = _MARKER_RE.sub("", text)
        else:
            numbered = _num_pr(ppr) or self.styles.numbered(style)
            if numbered is not None and _visible(text):
                label = self.numbering.label(*numbered)
                text = f"{label} {text}" if label else text
                if not _ENDS_SENTENCE_RE.search(_MARKER_RE.sub("", text)):
                    text += "."
        if not _visible(text) and not cited:
            return None if mark is None else _Paragraph("", 0, True)
        return _Paragraph(text, heading if heading <= 9 else 0, mark is not None, cited)

    def _inline(self, el: Any, emphasis: str | None, cited: list[str]) -> Iterator[str]:
        """The text of a paragraph's content, emphasised runs between markers."""
        for child in el:
            tag = child.tag
            if tag == w("r"):
                yield from self._run(child, cited)
            elif tag in (w("del"), w("moveFrom"), w("pPr"), w("rPr")):
                continue  # deleted in a tracked change, or properties
            elif tag == w("fldSimple") or tag in (
                w("hyperlink"), w("ins"), w("moveTo"), w("smartTag"), w("customXml"), w("bdo"),
                w("dir"),
            ):  # fmt: skip
                yield from self._inline(child, emphasis, cited)
            elif tag == w("sdt"):
                content = child.find(w("sdtContent"))
                if content is not None:
                    yield from self._inline(content, emphasis, cited)
            elif tag == f"{{{MC}}}AlternateContent":
                choice = _first_choice(child)
                if choice is not None:
                    yield from self._inline(choice, emphasis, cited)

    def _run(self, run: Any, cited: list[str]) -> Iterator[str]:
        rpr = run.find(w("rPr"))
        if rpr is not None and any(rpr.find(w(h)) is not None for h in ("vanish", "webHidden")):
            return
        style_el = rpr.find(w("rStyle")) if rpr is not None else None
        emphasis = _emphasis_of(rpr) or self.styles.emphasis(
            style_el.get(w("val")) if style_el is not None else None
        )
        pieces: list[str] = []
        for child in run:
            tag = child.tag
            if tag == w("t"):
                pieces.append(_MARKER_RE.sub("", child.text or ""))
            elif tag in (w("tab"), w("br"), w("cr"), w("ptab")):
                pieces.append(" ")
            elif tag == w("noBreakHyphen"):
                pieces.append("-")
            elif tag in (w("footnoteReference"), w("endnoteReference")):
                kind = "footnote" if tag == w("footnoteReference") else "endnote"
                self.counts[kind] += 1
                note = self.notes.get(kind, {}).get(str(child.get(w("id"))))
                if note:
                    cited.append(f"{kind.capitalize()} {self.counts[kind]}: {note}")
                else:
                    self.skipped += 1
            elif tag in (w("drawing"), w("pict"), f"{{{MC}}}AlternateContent"):
                alt = _alt_text(child)
                if alt:
                    pieces.append(f" {alt} ")
        text = "".join(pieces)
        if emphasis and text.strip():
            inner = text.strip()
            lead = text[: len(text) - len(text.lstrip())]
            trail = text[len(text.rstrip()) :]
            text = f"{lead}{_OPEN[emphasis]}{inner}{_CLOSE[emphasis]}{trail}"
        yield text


def _is_contents_control(sdt: Any) -> bool:
    gallery = sdt.find(f"{w('sdtPr')}/{w('docPartObj')}/{w('docPartGallery')}")
    return gallery is not None and "contents" in str(gallery.get(w("val")) or "").lower()


def _first_choice(alternate: Any) -> Any:
    """The first ``mc:Choice`` of an ``mc:AlternateContent`` (else its fallback)."""
    choice = alternate.find(f"{{{MC}}}Choice")
    return choice if choice is not None else alternate.find(f"{{{MC}}}Fallback")


def _alt_text(el: Any) -> str:
    """An image's alt text (its description, else its title), never a text box's text."""
    for doc_pr in el.iter(f"{{{WP}}}docPr"):
        text = doc_pr.get("descr") or doc_pr.get("title") or ""
        return " ".join(_MARKER_RE.sub("", text).split())
    for shape in el.iter(f"{{{VML}}}shape", f"{{{VML}}}imagedata"):
        text = shape.get("alt") or shape.get("title") or ""
        if text:
            return " ".join(_MARKER_RE.sub("", text).split())
    return ""


def _visible(text: str) -> bool:
    return bool(_MARKER_RE.sub("", text).strip())


# --- chapters -----------------------------------------------------------------------------


def _chapters(paragraphs: list[_Paragraph], title: str) -> list[Chapter]:
    """Sections at headings 1-2 (or "Chapter N" lines), normalised, emphasis annotated."""
    styled = any(1 <= p.level <= 2 for p in paragraphs)
    preamble = Section(title, source="paragraph 1", merge_if_empty=False, speak_heading=False)
    sections = [preamble]
    for number, paragraph in enumerate(paragraphs, start=1):
        plain = _MARKER_RE.sub("", paragraph.text)
        starts = 1 <= paragraph.level <= 2 if styled else is_heading_line(plain)
        if starts:
            sections.append(Section(plain, source=f"paragraph {number}"))
            continue
        sections[-1].paragraphs.append(paragraph.text)
        sections[-1].paragraphs.extend(paragraph.notes)
    if len(sections) > 1 and preamble.paragraphs and not styled:
        preamble.title = "Introduction"
    return [_annotated(chapter) for chapter in assemble(sections)]


def _annotated(chapter: Chapter) -> Chapter:
    """The chapter with its emphasis markers turned into annotations."""
    if not any(ch in _MARKERS for p in chapter.paragraphs for ch in p):
        return chapter
    paragraphs: list[str] = []
    annotations: list[tuple[Annotation, ...]] = [()] if chapter.heading else []
    for paragraph in chapter.paragraphs:
        text, found = _emphases(paragraph)
        paragraphs.append(text)
        annotations.append(found)
    return replace(chapter, paragraphs=tuple(paragraphs), annotations=tuple(annotations))


def _emphases(marked: str) -> tuple[str, tuple[Annotation, ...]]:
    """Text without markers, and an Emphasis per marked span (adjacent ones merged)."""
    out: list[str] = []
    spans: list[Emphasis] = []
    opened: dict[str, int] = {}
    length = 0
    for ch in marked:
        level = next((lv for lv, c in _OPEN.items() if c == ch), None)
        if level is not None:
            opened.setdefault(level, length)
            continue
        level = next((lv for lv, c in _CLOSE.items() if c == ch), None)
        if level is not None:
            start = opened.pop(level, None)
            if start is not None and length > start:
                last = spans[-1] if spans else None
                if last is not None and last.level == level and last.end >= start - 1:
                    spans[-1] = Emphasis(last.start, length, level)
                else:
                    spans.append(Emphasis(start, length, level))
            continue
        out.append(ch)
        length += 1
    text = "".join(out)
    kept = tuple(
        Emphasis(s.start, s.end, s.level)
        for s in sorted(spans, key=lambda s: (s.start, -s.end))
        if text[s.start : s.end].strip()
    )
    return text, _non_overlapping(kept)


def _non_overlapping(spans: tuple[Emphasis, ...]) -> tuple[Annotation, ...]:
    """Emphasis spans that nest or are disjoint (a crossing one is dropped)."""
    kept: list[Emphasis] = []
    for span in spans:
        if all(_apart_or_inside(span, k) for k in kept):
            kept.append(span)
    return tuple(kept)


def _apart_or_inside(span: Emphasis, other: Emphasis) -> bool:
    disjoint = span.end <= other.start or span.start >= other.end
    return disjoint or (other.start <= span.start and span.end <= other.end)
