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
"""

from __future__ import annotations

from dataclasses import dataclass

from ssml.build import build_ssml
from ssml.document import Chapter
from ssml.sentences import split_long, split_sentences


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

    @property
    def chars(self) -> int:
        return len(self.text)


@dataclass(frozen=True)
class _Piece:
    start: int  # offsets into the chapter text
    end: int
    paragraph: int
    ends_paragraph: bool


def segment_chapter(chapter: Chapter, policy: SegmentPolicy) -> list[Segment]:
    """Cut ``chapter`` into segments (see the module docstring)."""
    if policy.max_chars < 20:
        raise ValueError("max_chars must be at least 20")
    text = chapter.text
    spans: list[tuple[int, int, str]] = []  # (start, end, what the pause after it is for)
    body: list[_Piece] = []
    offset = 0
    for number, block in enumerate(chapter.blocks):
        if number == 0 and chapter.heading:
            heading = split_long(text, 0, len(block), policy.max_chars)
            spans.extend((start, end, "sentence") for start, end in heading[:-1])
            spans.append((heading[-1][0], heading[-1][1], "heading"))
        else:
            body.extend(_pieces(block, offset, number, policy.max_chars))
        offset += len(block) + 2
    spans.extend(_pack(body, policy.max_chars))
    segments = []
    for index, (start, end, kind) in enumerate(spans):
        seg_text = text[start:end]
        is_last = index == len(spans) - 1
        pause = policy.chapter_end_pause_ms if is_last else _pause(kind, policy)
        ssml = build_ssml(
            seg_text.split("\n\n"), pause_ms=policy.paragraph_pause_ms, dialect=policy.dialect
        )
        segments.append(Segment(index, seg_text, start, end, ssml, pause))
    return segments


def _pieces(block: str, offset: int, paragraph: int, max_chars: int) -> list[_Piece]:
    pieces: list[_Piece] = []
    for s_start, s_end in split_sentences(block):
        for start, end in split_long(block, s_start, s_end, max_chars):
            pieces.append(_Piece(offset + start, offset + end, paragraph, False))
    if pieces:
        last = pieces[-1]
        pieces[-1] = _Piece(last.start, last.end, last.paragraph, True)
    return pieces


def _pack(pieces: list[_Piece], max_chars: int) -> list[tuple[int, int, str]]:
    spans: list[tuple[int, int, str]] = []
    current: _Piece | None = None
    start = 0
    for piece in pieces:
        if current is not None and piece.end - start <= max_chars:
            current = piece
            continue
        if current is not None:
            spans.append(
                (start, current.end, "paragraph" if current.ends_paragraph else "sentence")
            )
        start, current = piece.start, piece
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
