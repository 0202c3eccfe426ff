"""An EPUB's own content document with ids on each sentence and word of the word track.

**The text ingest read, with where each character sits.** :class:`SourceText` walks a
content document's body exactly as ingest's block extraction does
(:func:`ssml.ingest.html.extract_blocks` with the options the EPUB reader uses for that
item): the same elements dropped (scripts, notes, footnote markers, ...), headings and
blocks in the same order. Every run of text it reads (an element's ``text`` or a child's
``tail``: a *slot*) goes into one stream, and each character of the stream knows its
slot. MathML is left out of the stream: ingest reads it as LaTeX, which becomes a caption
form ("x²") that is not in the document.

**Alignment.** The chapter text is the stream normalised (typography, whitespace,
invisible and control characters, footnote markers, formulas), so words are compared by
their letters and digits only, lower-cased (:func:`ssml.readalong.words.key_of`):
quotes, dashes, entities, spacing and ``&#160;`` do not matter. :class:`Aligner` walks
the stream's letters once: a word is placed where the stream continues, or, when it does
not, at the next place within a window where it and the words after it (about a dozen
letters) follow in order; otherwise it is not placed (it is counted, gets no ``<par>``,
and the walk stays where it was). The spoken heading ("Chapter 1", where the book writes
``<h2>I</h2>``) is tried word by word; if that fails it is given to the document's first
heading as a whole (one sentence element, no word elements).

**Marking.** A word's element runs from its first to its last letter, taking in the
punctuation attached to it in the same run of text; a sentence's from its first placed
word's start to its last placed word's end. A boundary that falls at the very start or
end of an inline element (``<em>``, ``<a>``, ...) is lifted outside it, so ``“<em>I</em>
have not,”`` is one sentence element holding the ``<em>``. A range that still crosses an
element boundary (a sentence that begins outside an ``<em>`` and ends inside it) is
wrapped in one ``<span>`` per well-formed piece, the fewest possible: the first piece
carries the id (``…s12``) and is what the overlay points at, the others get ``…s12-2``,
``…s12-3``; a piece never wraps a block-level element. Nothing else changes: no element
is moved out of its parent, no text is added or removed, attributes stay as they were.
Ids are ``ra<chapter>-s<n>`` and ``ra<chapter>-w<i>`` (``i`` the word's index in the
chapter's track), with another prefix when the document already has an id starting so.
"""

from __future__ import annotations

import bisect
from array import array
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from lxml import etree

from ssml.ingest.epub import item_types
from ssml.ingest.html import (
    NOTE_TYPES,
    Options,
    find_body,
    heading_level,
    is_block,
    is_dropped,
    local_name,
)
from ssml.ingest.safexml import refuse_entity_declarations, xml_parser
from ssml.readalong.generated import x
from ssml.readalong.overlay import Group, Par
from ssml.readalong.words import (
    Layout,
    MarkStats,
    SentenceWords,
    TrackWord,
    by_sentence,
    fold,
    is_voiced,
    key_of,
    sentence_id,
    word_id,
)

#: elements a ``<span>`` may hold (HTML phrasing content), and the only ones a boundary
#: is lifted out of
_PHRASING_NAMES = (
    "a abbr area audio b bdi bdo br button canvas cite code data datalist del dfn em embed "
    "i iframe img input ins kbd label link map mark math meta meter noscript object output "
    "picture progress q ruby s samp script select slot small span strong sub sup svg "
    "template textarea time u var video wbr"
)
PHRASING = frozenset(_PHRASING_NAMES.split())
#: letters and digits searched ahead for a word that is not where the stream continues
WINDOW_KEYS = 4000
#: letters of the following words that must follow a word found further on
CONFIRM_KEYS = 12
LOOKAHEAD_WORDS = 6


def parse_content(data: bytes, name: str) -> Any | None:
    """A content document to be marked (comments kept), or None when it is not
    well-formed XML (ingest then read it as HTML: it is left as it is). Entity
    declarations are refused as everywhere (MalformedDocumentError)."""
    refuse_entity_declarations(data, name)
    try:
        root = etree.fromstring(data, xml_parser(keep_comments=True))
    except etree.XMLSyntaxError:
        return None
    return root


def content_options(body: Any) -> Options:
    """How the EPUB reader extracts an item's text: headers kept, notes dropped unless the
    item is itself a notes document (as :func:`ssml.ingest.epub.read_item`)."""
    return Options(drop_header=False, drop_notes=not item_types(body) & NOTE_TYPES)


# --- the spoken text of a document -------------------------------------------------------


@dataclass(eq=False)
class Slot:
    """A run of text: ``container.text`` (``gap`` -1) or the tail of its child ``gap``."""

    container: Any
    gap: int
    start: int
    text: str

    @property
    def end(self) -> int:
        return self.start + len(self.text)


@dataclass(frozen=True)
class Pos:
    """A place in a container's own text: before character ``offset`` of slot ``gap``."""

    container: Any
    gap: int
    offset: int


@dataclass(frozen=True)
class SourceBlock:
    """A block as ingest extracted it: ``[start, end)`` in the stream; ``level`` 1-6 for
    a heading."""

    start: int
    end: int
    level: int


class SourceText:
    """The text of a content document's body as ingest reads it (see the module
    docstring), with the slot of every character."""

    def __init__(self, body: Any, options: Options) -> None:
        self.options = options
        self._parts: list[str] = []
        self._length = 0
        self._block_start = 0
        self._block_part = 0
        self.slots: list[Slot] = []
        self.blocks: list[SourceBlock] = []
        self.children: dict[Any, list[Any]] = {}
        self.index: dict[Any, int] = {}  # an element's position among its parent's children
        self._slot_at: dict[tuple[Any, int], Slot] = {}
        self._container(body)
        self.stream = "".join(self._parts)
        del self._parts
        filled = [s for s in self.slots if s.text]
        self._filled = filled
        self._starts = [s.start for s in filled]
        keys: list[str] = []
        positions = array("l")
        for offset, char in enumerate(self.stream):
            if char.isalnum():
                keys.append(fold(char))
                positions.append(offset)
        self.keys = "".join(keys)
        self.key_pos = positions

    # walking, as ssml.ingest.html._Extractor and inline_text do

    def _add(self, container: Any, gap: int, text: str | None) -> None:
        slot = Slot(container, gap, self._length, text or "")
        self.slots.append(slot)
        self._slot_at[(container, gap)] = slot
        if slot.text:
            self._parts.append(slot.text)
            self._length += len(slot.text)

    def _flush(self, level: int = 0) -> None:
        if any(part.strip() for part in self._parts[self._block_part :]):
            self.blocks.append(SourceBlock(self._block_start, self._length, level))
        self._block_start = self._length
        self._block_part = len(self._parts)

    def _register(self, el: Any) -> list[Any]:
        children = list(el)
        self.children[el] = children
        for k, child in enumerate(children):
            self.index[child] = k
        return children

    def _container(self, el: Any) -> None:
        self._add(el, -1, el.text)
        for k, child in enumerate(self._register(el)):
            if is_dropped(child, self.options):
                pass
            elif heading_level(child):
                self._flush()
                self._inline(child)
                self._flush(heading_level(child))
            elif is_block(child):
                self._flush()
                self._container(child)
            else:
                self._inline(child)
            self._add(el, k, child.tail)
        self._flush()

    def _inline(self, el: Any) -> None:
        if is_dropped(el, self.options) or local_name(el) == "math":
            return
        if local_name(el) == "br":  # ingest reads a space, which no slot holds
            self._parts.append(" ")
            self._length += 1
            return
        self._add(el, -1, el.text)
        for k, child in enumerate(self._register(el)):
            self._inline(child)
            self._add(el, k, child.tail)

    # places

    def slot(self, container: Any, gap: int) -> Slot:
        return self._slot_at[(container, gap)]

    def offset(self, pos: Pos) -> int:
        """Where a place is in the stream."""
        return self.slot(pos.container, pos.gap).start + pos.offset

    def at_start(self, offset: int) -> Pos:
        """The place before the stream's character ``offset``."""
        slot = self._filled[bisect.bisect_right(self._starts, offset) - 1]
        return Pos(slot.container, slot.gap, offset - slot.start)

    def at_end(self, offset: int) -> Pos:
        """The place after the stream's character ``offset - 1``."""
        slot = self._filled[bisect.bisect_right(self._starts, offset - 1) - 1]
        return Pos(slot.container, slot.gap, offset - slot.start)

    def last_gap(self, container: Any) -> int:
        return len(self.children.get(container, ())) - 1

    def before(self, el: Any) -> Pos:
        """The place just before element ``el``, in its parent."""
        parent, gap = el.getparent(), self.index[el] - 1
        return Pos(parent, gap, len(self.slot(parent, gap).text))

    def after(self, el: Any) -> Pos:
        """The place just after element ``el`` (the start of its tail), in its parent."""
        return Pos(el.getparent(), self.index[el], 0)

    def liftable(self, container: Any) -> bool:
        return container in self.index and local_name(container) in PHRASING


# --- alignment -----------------------------------------------------------------------


@dataclass(frozen=True)
class Aligned:
    """A word of the track and where its letters are in the stream (None: not found)."""

    text: str
    char_start: int
    char_end: int
    start_ms: int
    end_ms: int
    core: tuple[int, int] | None = None


class Aligner:
    """Places the words of a track in a :class:`SourceText`, in one walk."""

    def __init__(self, source: SourceText) -> None:
        self.source = source
        self.keys = source.keys
        self.at = 0  # the next letter of the stream not yet taken by a word
        #: the stream range given to the spoken heading as a whole, if it came to that
        self.heading: tuple[int, int] | None = None

    def find(self, key: str, following: list[str]) -> int | None:
        """Where ``key`` starts in the letters, from the walk's position, or None."""
        keys = self.keys
        if keys.startswith(key, self.at):
            return self.at
        limit = min(len(keys), self.at + WINDOW_KEYS)
        found = keys.find(key, self.at, limit)
        while found >= 0:
            if self._confirmed(found, key, following):
                return found
            found = keys.find(key, found + 1, limit)
        return None

    def _confirmed(self, found: int, key: str, following: list[str]) -> bool:
        at = found + len(key)
        checked = 0
        for nxt in following:
            if not self.keys.startswith(nxt, at):
                return False
            at += len(nxt)
            checked += len(nxt)
            if checked >= CONFIRM_KEYS:
                return True
        # the end of the chapter: nothing (or little) left to confirm with
        return checked > 0 or len(key) >= 4 or found - self.at <= 64

    def take(self, found: int, key: str) -> tuple[int, int]:
        """The stream range of the letters ``found``..``found + len(key)``; the walk
        moves past them."""
        positions = self.source.key_pos
        self.at = found + len(key)
        return positions[found], positions[found + len(key) - 1] + 1

    def align(self, words: Iterable[TrackWord], layout: Layout) -> Iterator[Aligned]:
        """The words in order, each with its place (a generator holding a few words)."""
        heading_end = layout.blocks[0].end if layout.blocks and layout.blocks[0].heading else -1
        pending: deque[tuple[TrackWord, str]] = deque()
        stream = iter(words)

        def fill() -> None:
            while len(pending) <= LOOKAHEAD_WORDS:
                word = next(stream, None)
                if word is None:
                    return
                pending.append((word, key_of(word.text) if is_voiced(word) else ""))

        fill()
        heading: list[tuple[TrackWord, str]] = []
        while pending and pending[0][0].char_start < heading_end:
            heading.append(pending.popleft())
            fill()
        if heading:
            yield from self._heading(heading, [k for _w, k in pending if k], layout)
        while pending:
            word, key = pending.popleft()
            fill()
            core = None
            if key:
                found = self.find(key, [k for _w, k in pending if k][:LOOKAHEAD_WORDS])
                if found is not None:
                    core = self.take(found, key)
            yield _aligned(word, core)

    def _heading(
        self, words: list[tuple[TrackWord, str]], after: list[str], layout: Layout
    ) -> Iterator[Aligned]:
        start = self.at
        keys = [k for _w, k in words if k]
        cores: list[tuple[int, int] | None] = []
        for position, (_word, key) in enumerate(words):
            following = [k for _w, k in words[position + 1 :] if k] + after
            found = self.find(key, following[:LOOKAHEAD_WORDS]) if key else None
            cores.append(self.take(found, key) if found is not None else None)
        if not keys or all(c is not None for c, (_w, k) in zip(cores, words, strict=True) if k):
            for (word, _key), core in zip(words, cores, strict=True):
                yield _aligned(word, core)
            return
        self.at = start
        self.heading = self._first_heading(layout)
        if self.heading is not None:
            self.at = bisect.bisect_left(self.source.key_pos, self.heading[1])
        for word, _key in words:
            yield _aligned(word, None)

    def _first_heading(self, layout: Layout) -> tuple[int, int] | None:
        """The document's first block, when it is a heading that the chapter text does not
        read as a paragraph of its own (then the spoken heading stands for it)."""
        blocks = self.source.blocks
        if not blocks or not blocks[0].level:
            return None
        text = self.source.stream[blocks[0].start : blocks[0].end]
        own = key_of(text)
        if len(layout.blocks) > 1:
            second = layout.blocks[1]
            if own and key_of(layout.text[second.start : second.end]).startswith(own):
                return None
        start = blocks[0].start + len(text) - len(text.lstrip())
        end = blocks[0].start + len(text.rstrip())
        return (start, end) if end > start else None


def _aligned(word: TrackWord, core: tuple[int, int] | None) -> Aligned:
    return Aligned(word.text, word.char_start, word.char_end, word.start_ms, word.end_ms, core)


# --- marking -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Piece:
    container: Any
    start: tuple[int, int]  # (gap, offset)
    end: tuple[int, int]


class MarkedDocument:
    """A content document being marked, one sentence at a time; :meth:`finish` puts the
    elements in and serialises it."""

    def __init__(self, root: Any, prefix: str, source: SourceText, aligner: Aligner) -> None:
        self.root = root
        self.prefix = prefix
        self.source = source
        self.aligner = aligner
        self.stats = MarkStats()
        #: container -> [(gap, offset, phase, rank, serial, attributes)]; phase 0 closes
        self._events: dict[Any, list[tuple[int, int, int, int, int, dict[str, str]]]] = {}
        self._serial = 0
        self._floor = 0  # where the previous word's element ended, in the stream

    def add(self, group: SentenceWords[Aligned]) -> Group:
        """Mark a sentence and its words; the overlay group that reads them."""
        words = [w for _i, w in group.words]
        voiced = [w for w in words if is_voiced(w)]
        begin = min((w.start_ms for w in voiced), default=0)
        end = max((w.end_ms for w in voiced), default=0)
        self.stats.words += len(words)
        self.stats.silent += len(words) - len(voiced)
        fragment = sentence_id(self.prefix, group.sentence.number)
        heading = self.aligner.heading
        if group.sentence.heading and heading is not None and all(w.core is None for w in words):
            start = self._lift_start(self.source.at_start(heading[0]))
            stop = self._lift_end(self.source.at_end(heading[1]))
            self._mark(start, stop, fragment, depth=0)
            self.stats.covered += len(voiced)
            return Group(fragment, begin, end)
        pars: list[Par] = []
        first: Pos | None = None
        last: Pos | None = None
        for index, word in group.words:
            if not is_voiced(word):
                continue
            if word.core is None:
                self.stats.unplaced += 1
                continue
            start, stop = self._word_range(word.core)
            ident = word_id(self.prefix, index)
            self._mark(start, stop, ident, depth=1)
            pars.append(Par(ident, word.start_ms, word.end_ms))
            first = first or start
            last = stop
            self.stats.placed += 1
        if first is None or last is None:
            return Group(None, begin, end)
        self._mark(first, last, fragment, depth=0)
        return Group(fragment, begin, end, tuple(pars))

    # ranges

    def _word_range(self, core: tuple[int, int]) -> tuple[Pos, Pos]:
        source = self.source
        start = self._extend_left(source.at_start(core[0]))
        start = self._extend_left(self._lift_start(start))
        stop = self._extend_right(source.at_end(core[1]))
        stop = self._extend_right(self._lift_end(stop))
        self._floor = source.offset(stop)
        return start, stop

    def _extend_left(self, pos: Pos) -> Pos:
        slot = self.source.slot(pos.container, pos.gap)
        offset = pos.offset
        while offset > 0 and slot.start + offset - 1 >= self._floor:
            char = slot.text[offset - 1]
            if char.isspace() or char.isalnum():
                break
            offset -= 1
        return Pos(pos.container, pos.gap, offset)

    def _extend_right(self, pos: Pos) -> Pos:
        text = self.source.slot(pos.container, pos.gap).text
        offset = pos.offset
        while offset < len(text) and not (text[offset].isspace() or text[offset].isalnum()):
            offset += 1
        return Pos(pos.container, pos.gap, offset)

    def _lift_start(self, pos: Pos) -> Pos:
        source = self.source
        while (
            pos.gap == -1
            and source.liftable(pos.container)
            and not source.slot(pos.container, -1).text[: pos.offset].strip()
        ):
            pos = source.before(pos.container)
        return pos

    def _lift_end(self, pos: Pos) -> Pos:
        source = self.source
        while (
            source.liftable(pos.container)
            and pos.gap == source.last_gap(pos.container)
            and not source.slot(pos.container, pos.gap).text[pos.offset :].strip()
        ):
            pos = source.after(pos.container)
        return pos

    def _mark(self, start: Pos, stop: Pos, ident: str, depth: int) -> None:
        pieces = [p for p in self._pieces(start, stop) if self._has_text(p)]
        for number, piece in enumerate(pieces, start=1):
            name = ident if number == 1 else f"{ident}-{number}"
            events = self._events.setdefault(piece.container, [])
            self._serial += 1
            events.append((*piece.start, 1, depth, self._serial, {"id": name}))
            events.append((*piece.end, 0, -depth, self._serial, {}))

    def _pieces(self, start: Pos, stop: Pos) -> list[_Piece]:
        """The fewest well-formed pieces that cover ``start``..``stop``."""
        source = self.source
        ancestors = {}
        element = stop.container
        while element is not None:
            ancestors[element] = True
            element = element.getparent()
        lca = start.container
        while lca not in ancestors:
            lca = lca.getparent()
        left: list[_Piece] = []
        cur = start
        while cur.container is not lca:
            container = cur.container
            last = source.last_gap(container)
            length = len(source.slot(container, last).text)
            left.append(_Piece(container, (cur.gap, cur.offset), (last, length)))
            cur = source.after(container)
        right: list[_Piece] = []
        end = stop
        while end.container is not lca:
            container = end.container
            right.append(_Piece(container, (-1, 0), (end.gap, end.offset)))
            end = source.before(container)
        middle = _Piece(lca, (cur.gap, cur.offset), (end.gap, end.offset))
        pieces: list[_Piece] = []
        for piece in [*left, middle, *reversed(right)]:
            pieces.extend(self._split_at_blocks(piece))
        return pieces

    def _split_at_blocks(self, piece: _Piece) -> list[_Piece]:
        """A piece cut around the children a ``<span>`` may not hold."""
        if piece.start > piece.end:
            return []
        children = self.source.children.get(piece.container, [])
        out: list[_Piece] = []
        start = piece.start
        for k in range(piece.start[0] + 1, piece.end[0] + 1):
            child = children[k]
            if isinstance(child.tag, str) and local_name(child) not in PHRASING:
                before = len(self.source.slot(piece.container, k - 1).text)
                out.append(_Piece(piece.container, start, (k - 1, before)))
                start = (k, 0)
        out.append(_Piece(piece.container, start, piece.end))
        return [p for p in out if p.start <= p.end]

    def _has_text(self, piece: _Piece) -> bool:
        source = self.source
        first = source.offset(Pos(piece.container, *piece.start))
        last = source.offset(Pos(piece.container, *piece.end))
        return bool(source.stream[first:last].strip())

    # the document

    def finish(self, css_href: str | None) -> bytes:
        """Put the elements in (each container rewritten once) and serialise."""
        for container, events in self._events.items():
            _rewrite(container, sorted(events, key=lambda e: e[:5]))
        if css_href:
            _link_stylesheet(self.root, css_href)
        data: bytes = etree.tostring(
            self.root.getroottree(), encoding="utf-8", xml_declaration=True
        )
        return data + b"\n"


def _rewrite(container: Any, events: list[tuple[int, int, int, int, int, dict[str, str]]]) -> None:
    """Rebuild a container's own content with ``<span>`` start and end events inserted at
    (gap, offset) places; its children (and what they hold) move, unchanged, into them."""
    children = list(container)
    texts = [container.text or ""] + [child.tail or "" for child in children]
    for child in children:
        container.remove(child)
        child.tail = None
    container.text = None
    stack = [container]
    lasts: list[Any] = [None]

    def put(text: str) -> None:
        if not text:
            return
        if lasts[-1] is None:
            stack[-1].text = (stack[-1].text or "") + text
        else:
            lasts[-1].tail = (lasts[-1].tail or "") + text

    at = 0
    for gap in range(-1, len(children)):
        if gap >= 0:
            stack[-1].append(children[gap])
            lasts[-1] = children[gap]
        text = texts[gap + 1]
        cursor = 0
        while at < len(events) and events[at][0] == gap:
            _gap, offset, phase, _rank, _serial, attributes = events[at]
            put(text[cursor:offset])
            cursor = offset
            if phase == 1:
                span = etree.SubElement(stack[-1], x("span"), attributes)
                lasts[-1] = span
                stack.append(span)
                lasts.append(None)
            else:
                stack.pop()
                lasts.pop()
            at += 1
        put(text[cursor:])
    if len(stack) != 1:  # an event without its pair: never for well-formed pieces
        raise ValueError("unbalanced read-along marks")


def _link_stylesheet(root: Any, href: str) -> None:
    head = next((el for el in root if local_name(el) == "head"), None)
    if head is None:
        return
    children = list(head)
    link = etree.SubElement(head, x("link"), rel="stylesheet", type="text/css", href=href)
    if children:  # indent it as the element before it
        previous = children[-1]
        link.tail = previous.tail
        previous.tail = children[-2].tail if len(children) > 1 else head.text


def choose_prefix(root: Any, base: str) -> str:
    """``base`` (``ra3-``), or ``ra3n1-``, ``ra3n2-`` ... when an id of the document already
    starts with it."""
    existing = [
        str(value)
        for el in root.iter()
        for value in (el.get("id"), el.get("{http://www.w3.org/XML/1998/namespace}id"))
        if value
    ]
    prefix, number = base, 0
    while any(ident.startswith(prefix) for ident in existing):
        number += 1
        prefix = f"{base.rstrip('-')}n{number}-"
    return prefix


def mark_document(
    root: Any, words: Iterable[TrackWord], layout: Layout, prefix: str
) -> tuple[MarkedDocument, Iterator[Group]]:
    """Start marking a parsed content document with a chapter's word track: the document
    and the overlay groups, produced as they are consumed (call
    :meth:`MarkedDocument.finish` after the last)."""
    body = find_body(root)
    source = SourceText(body, content_options(body))
    aligner = Aligner(source)
    document = MarkedDocument(root, choose_prefix(root, prefix), source, aligner)
    groups = (document.add(g) for g in by_sentence(aligner.align(words, layout), layout.sentences))
    return document, groups
