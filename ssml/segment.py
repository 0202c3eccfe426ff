"""Segmentation: cut a chapter into sentence-aligned segments under an engine's size limit.

Pure: a :class:`~ssml.document.Chapter` and a :class:`SegmentPolicy` in, segments out.

* The spoken heading is a segment of its own, so the stitcher can put the heading pause
  after it.
* Body paragraphs are split into sentences, and each paragraph's sentences are packed
  greedily into segments of at most ``max_chars`` characters: a segment never starts or
  ends inside a paragraph's neighbour, so an edit changes only the segments of the
  paragraphs it touches (see :func:`_pack`). A sentence longer than the limit is cut at
  clause boundaries, then between words.
* Two short neighbouring paragraphs (each one segment, together under the limit) share a
  segment (separated by a ``<break>``) when their contents give them the roles
  "first" and "second" of a pair (:func:`_role`: a hash of each paragraph's own text, so a
  paragraph is never both). Pairs never chain, so whether two paragraphs pair depends
  on those two alone: an edit re-synthesizes the segments of the paragraphs it touches
  and at most one neighbouring segment on each side, which a paragraph it paired with
  before, or pairs with now, leaves or joins. About a quarter of the boundaries between
  short paragraphs pair, which saves requests on engines billed per request.
* Each segment's ``text`` is ``chapter.text[char_start:char_end]``; ``pause_after_ms`` is
  the silence the stitcher adds after it (heading, paragraph or sentence pause).
* Annotations (:attr:`Chapter.annotations`) go with their text: a sentence boundary or a
  cut of a long sentence never falls inside a formula, alias or other leaf annotation,
  and each segment's SSML is compiled from its blocks' annotations in the policy's
  dialect. Packing counts a leaf's spoken alias when it is longer than its display
  text, so a segment of formulas stays under the engine's limit as spoken.
* ``formulas`` lists the formulas read in the segment (source, display and spoken
  form), for ``narrate plan``.
* Linear in the chapter: a segment finds its blocks, and a block's annotations that
  fall in a segment, by bisection, so a chapter of one paragraph of a million
  characters with thousands of formulas is cut in one pass.
"""

from __future__ import annotations

import zlib
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, replace
from itertools import groupby

from ssml.annotations import CONTAINERS, Annotation, Break, Sub, clip, formulas_of, leaf_spans
from ssml.build import build_blocks
from ssml.document import Chapter
from ssml.latex import Formula
from ssml.sentences import ProtectedSpans, merge_protected, split_long, split_sentences


@dataclass(frozen=True)
class SegmentPolicy:
    max_chars: int
    dialect: str = "espeak"
    heading_pause_ms: int = 1200
    paragraph_pause_ms: int = 700
    sentence_pause_ms: int = 0
    chapter_end_pause_ms: int = 0


@dataclass(frozen=True)
class Segment:
    index: int  # 0-based within the chapter
    text: str
    char_start: int
    char_end: int
    ssml: str
    pause_after_ms: int
    formulas: tuple[Formula, ...] = ()

    @property
    def chars(self) -> int:
        return len(self.text)


@dataclass(frozen=True)
class _Piece:
    start: int  # offsets into the chapter text
    end: int
    paragraph: int
    ends_paragraph: bool
    extra: int = 0  # how much longer it is spoken than written (aliases)


def segment_chapter(chapter: Chapter, policy: SegmentPolicy) -> list[Segment]:
    """Cut ``chapter`` into segments (see the module docstring)."""
    if policy.max_chars < 20:
        raise ValueError("max_chars must be at least 20")
    text = chapter.text
    spans: list[tuple[int, int, str]] = []  # (start, end, what the pause after it is for)
    body: list[_Piece] = []
    offset = 0
    starts: list[int] = []
    for number, block in enumerate(chapter.blocks):
        starts.append(offset)
        annotations = chapter.block_annotations(number)
        protected = ProtectedSpans(leaf_spans(annotations))
        if number == 0 and chapter.heading:
            heading = split_long(text, 0, len(block), policy.max_chars, protected)
            spans.extend((start, end, "sentence") for start, end in heading[:-1])
            spans.append((heading[-1][0], heading[-1][1], "heading"))
        else:
            body.extend(_pieces(block, offset, number, policy.max_chars, annotations))
        offset += len(block) + 2
    spans.extend(_pack(body, policy.max_chars, text))
    segments: list[Segment] = []
    indexes = [_Index(chapter.block_annotations(n)) for n in range(len(chapter.blocks))]
    for index, (start, end, kind) in enumerate(spans):
        seg_text = text[start:end]
        is_last = index == len(spans) - 1
        pause = policy.chapter_end_pause_ms if is_last else _pause(kind, policy)
        blocks = _blocks(chapter, starts, indexes, start, end)
        blocks, leading_ms, trailing_ms = _edge_breaks(blocks)
        if leading_ms and segments:  # silence before the first word: the pause before it
            before = segments[-1]
            segments[-1] = replace(before, pause_after_ms=before.pause_after_ms + leading_ms)
        ssml = build_blocks(blocks, pause_ms=policy.paragraph_pause_ms, dialect=policy.dialect)
        formulas = tuple(f for _text, anns in blocks for f in formulas_of(anns))
        segments.append(Segment(index, seg_text, start, end, ssml, pause + trailing_ms, formulas))
    return segments


def _edge_breaks(
    blocks: list[tuple[str, list[Annotation]]],
) -> tuple[list[tuple[str, list[Annotation]]], int, int]:
    """Breaks before a segment's first word or after its last one, taken out of its SSML:
    ``(blocks, leading ms, trailing ms)``. The stitch trims each segment to its speech, so
    silence at a segment's edge must be the stitcher's pause, or it would be cut."""
    if not blocks:
        return blocks, 0, 0
    first_text, first = blocks[0]
    last_text, last = blocks[-1]
    lead = first_text[: len(first_text) - len(first_text.lstrip())]
    trail_from = len(last_text.rstrip())
    leading = [a for a in first if isinstance(a, Break) and a.start <= len(lead)]
    trailing = [a for a in last if isinstance(a, Break) and a.start >= trail_from]
    if len(blocks) == 1:
        trailing = [a for a in trailing if a not in leading]
    if not leading and not trailing:
        return blocks, 0, 0
    out = list(blocks)
    out[0] = (first_text, [a for a in first if a not in leading])
    last_kept = out[-1][1]
    out[-1] = (out[-1][0], [a for a in last_kept if a not in trailing])
    return out, sum(a.ms for a in leading), sum(a.ms for a in trailing)


class _Index:
    """A block's annotations, for picking those a segment may need without a full scan."""

    def __init__(self, annotations: tuple[Annotation, ...]) -> None:
        self.annotations = annotations
        self.containers = [k for k, a in enumerate(annotations) if isinstance(a, CONTAINERS)]
        points = sorted(
            (a.start, k) for k, a in enumerate(annotations) if not isinstance(a, CONTAINERS)
        )
        self.starts = [start for start, _k in points]
        self.order = [k for _start, k in points]

    def within(self, lo: int, hi: int) -> list[Annotation]:
        """The annotations that may apply to ``[lo, hi)``, in their original order.

        Leaves and breaks start inside it (:func:`~ssml.annotations.clip` then decides);
        containers are few and always passed.
        """
        first, last = bisect_left(self.starts, lo), bisect_right(self.starts, hi)
        picked = sorted(self.containers + self.order[first:last])
        return [self.annotations[k] for k in picked]


def _blocks(
    chapter: Chapter, starts: list[int], indexes: list[_Index], start: int, end: int
) -> list[tuple[str, list[Annotation]]]:
    """The parts of blocks that ``[start, end)`` of the chapter text covers."""
    out: list[tuple[str, list[Annotation]]] = []
    blocks = chapter.blocks
    number = max(0, bisect_right(starts, start) - 1)
    while number < len(blocks) and starts[number] < end:
        block, block_start = blocks[number], starts[number]
        lo, hi = max(start, block_start), min(end, block_start + len(block))
        if lo < hi:
            candidates = indexes[number].within(lo - block_start, hi - block_start)
            annotations = clip(candidates, lo - block_start, hi - block_start)
            out.append((block[lo - block_start : hi - block_start], annotations))
        number += 1
    return out


def _pieces(
    block: str, offset: int, paragraph: int, max_chars: int, annotations: tuple[Annotation, ...]
) -> list[_Piece]:
    protected = ProtectedSpans(leaf_spans(annotations))
    aliases = sorted(
        (a.start, a.end, max(0, len(a.alias) - (a.end - a.start)))
        for a in annotations
        if isinstance(a, Sub)
    )
    alias_starts = [a for a, _b, _extra in aliases]
    pieces: list[_Piece] = []
    for s_start, s_end in merge_protected(split_sentences(block), protected):
        for start, end in split_long(block, s_start, s_end, max_chars, protected):
            first, stop = bisect_left(alias_starts, start), bisect_right(alias_starts, end)
            extra = sum(more for _a, b, more in aliases[first:stop] if b <= end)
            pieces.append(_Piece(offset + start, offset + end, paragraph, False, extra))
    if pieces:
        last = pieces[-1]
        pieces[-1] = _Piece(last.start, last.end, last.paragraph, True, last.extra)
    return pieces


def _pack(pieces: list[_Piece], max_chars: int, text: str) -> list[tuple[int, int, str]]:
    """Each paragraph's pieces packed on their own; pairs of short paragraphs joined."""
    paragraphs = [list(group) for _number, group in groupby(pieces, key=lambda p: p.paragraph)]
    packed = [_pack_paragraph(group, max_chars) for group in paragraphs]
    spans: list[tuple[int, int, str]] = []
    number = 0
    while number < len(paragraphs):
        if number + 1 < len(paragraphs) and _pairs(
            paragraphs[number], packed[number], paragraphs[number + 1], packed[number + 1],
            max_chars, text,
        ):  # fmt: skip
            spans.append((packed[number][0][0], packed[number + 1][0][1], "paragraph"))
            number += 2
            continue
        spans.extend(packed[number])
        number += 1
    return spans


def _pack_paragraph(pieces: list[_Piece], max_chars: int) -> list[tuple[int, int, str]]:
    """One paragraph's sentences packed greedily into spans of at most ``max_chars``."""
    spans: list[tuple[int, int, str]] = []
    current: _Piece | None = None
    start = 0
    extra = 0
    for piece in pieces:
        if current is not None and piece.end - start + extra + piece.extra <= max_chars:
            current = piece
            extra += piece.extra
            continue
        if current is not None:
            spans.append((start, current.end, _kind(current)))
        start, current, extra = piece.start, piece, piece.extra
    if current is not None:
        spans.append((start, current.end, _kind(current)))
    return spans


def _pairs(
    first: list[_Piece],
    first_spans: list[tuple[int, int, str]],
    second: list[_Piece],
    second_spans: list[tuple[int, int, str]],
    max_chars: int,
    text: str,
) -> bool:
    """Whether two neighbouring paragraphs share one segment: each fits one on its own,
    both fit one together, and their own texts make them a pair (first, second)."""
    if len(first_spans) != 1 or len(second_spans) != 1:
        return False
    extra = sum(p.extra for p in first) + sum(p.extra for p in second)
    if second_spans[0][1] - first_spans[0][0] + extra > max_chars:
        return False
    first_text = text[first_spans[0][0] : first_spans[0][1]]
    second_text = text[second_spans[0][0] : second_spans[0][1]]
    return _role(first_text) == 0 and _role(second_text) == 1


def _role(paragraph: str) -> int:
    """A paragraph's role in a pair, from its own text only: 0 first, 1 second (stable
    across runs and machines, unlike ``hash``)."""
    return zlib.crc32(paragraph.encode("utf-8")) & 1


def _kind(piece: _Piece) -> str:
    return "paragraph" if piece.ends_paragraph else "sentence"


def _pause(kind: str, policy: SegmentPolicy) -> int:
    return {
        "heading": policy.heading_pause_ms,
        "paragraph": policy.paragraph_pause_ms,
        "sentence": policy.sentence_pause_ms,
    }[kind]
