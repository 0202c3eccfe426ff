"""Segmentation: cut a chapter into sentence-aligned segments under an engine's size limit.

Pure: a :class:`~ssml.document.Chapter` and a :class:`SegmentPolicy` in, segments out.

* The spoken heading is a segment of its own, so the stitcher can put the heading pause
  after it.
* Body paragraphs are split into sentences and packed greedily: a segment holds whole
  sentences, possibly of several paragraphs (separated by a ``<break>``), and never more
  than ``max_chars`` characters. A sentence longer than the limit is cut at clause
  boundaries, then between words.
* Each segment's ``text`` is ``chapter.text[char_start:char_end]``; ``pause_after_ms`` is
  the silence the stitcher adds after it (heading, paragraph or sentence pause).
* Annotations (:attr:`Chapter.annotations`) go with their text: a sentence boundary or a
  cut of a long sentence never falls inside a formula, alias or other leaf annotation,
  and each segment's SSML is compiled from its blocks' annotations in the policy's
  dialect. Packing counts a leaf's spoken alias when it is longer than its display
  text, so a segment of formulas stays under the engine's limit as spoken.
* ``formulas`` lists the formulas read in the segment (source, display and spoken
  form), for ``narrate plan``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ssml.annotations import Annotation, Sub, clip, formulas_of, leaf_spans
from ssml.build import build_blocks
from ssml.document import Chapter
from ssml.latex import Formula
from ssml.sentences import merge_protected, split_long, split_sentences


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
        protected = leaf_spans(annotations)
        if number == 0 and chapter.heading:
            heading = split_long(text, 0, len(block), policy.max_chars, protected)
            spans.extend((start, end, "sentence") for start, end in heading[:-1])
            spans.append((heading[-1][0], heading[-1][1], "heading"))
        else:
            body.extend(_pieces(block, offset, number, policy.max_chars, annotations))
        offset += len(block) + 2
    spans.extend(_pack(body, policy.max_chars))
    segments = []
    for index, (start, end, kind) in enumerate(spans):
        seg_text = text[start:end]
        is_last = index == len(spans) - 1
        pause = policy.chapter_end_pause_ms if is_last else _pause(kind, policy)
        blocks = _blocks(chapter, starts, start, end)
        ssml = build_blocks(blocks, pause_ms=policy.paragraph_pause_ms, dialect=policy.dialect)
        formulas = tuple(f for _text, anns in blocks for f in formulas_of(anns))
        segments.append(Segment(index, seg_text, start, end, ssml, pause, formulas))
    return segments


def _blocks(
    chapter: Chapter, starts: list[int], start: int, end: int
) -> list[tuple[str, list[Annotation]]]:
    """The parts of blocks that ``[start, end)`` of the chapter text covers."""
    out: list[tuple[str, list[Annotation]]] = []
    for number, block in enumerate(chapter.blocks):
        block_start = starts[number]
        lo, hi = max(start, block_start), min(end, block_start + len(block))
        if lo >= hi:
            continue
        annotations = clip(chapter.block_annotations(number), lo - block_start, hi - block_start)
        out.append((block[lo - block_start : hi - block_start], annotations))
    return out


def _pieces(
    block: str, offset: int, paragraph: int, max_chars: int, annotations: tuple[Annotation, ...]
) -> list[_Piece]:
    protected = leaf_spans(annotations)
    pieces: list[_Piece] = []
    for s_start, s_end in merge_protected(split_sentences(block), protected):
        for start, end in split_long(block, s_start, s_end, max_chars, protected):
            extra = sum(
                max(0, len(a.alias) - (a.end - a.start))
                for a in annotations
                if isinstance(a, Sub) and start <= a.start and a.end <= end
            )
            pieces.append(_Piece(offset + start, offset + end, paragraph, False, extra))
    if pieces:
        last = pieces[-1]
        pieces[-1] = _Piece(last.start, last.end, last.paragraph, True, last.extra)
    return pieces


def _pack(pieces: list[_Piece], max_chars: int) -> list[tuple[int, int, str]]:
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
            spans.append(
                (start, current.end, "paragraph" if current.ends_paragraph else "sentence")
            )
        start, current, extra = piece.start, piece, piece.extra
    if current is not None:
        spans.append((start, current.end, _kind(current)))
    return spans


def _kind(piece: _Piece) -> str:
    return "paragraph" if piece.ends_paragraph else "sentence"


def _pause(kind: str, policy: SegmentPolicy) -> int:
    return {
        "heading": policy.heading_pause_ms,
        "paragraph": policy.paragraph_pause_ms,
        "sentence": policy.sentence_pause_ms,
    }[kind]
