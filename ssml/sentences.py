"""Sentence and clause splitting for English-like and Chinese text (pure)."""

from __future__ import annotations

import re
from collections.abc import Sequence

_CLOSERS = "\"')]}’”»」』）"
# A sentence ends at . ! ? … (or Chinese 。！？) plus any closing quotes/brackets.
_END = re.compile(rf"(?:[.!?…]+|[。！？]+)[{re.escape(_CLOSERS)}]*")
_ABBREVIATIONS = frozenset(
    [
        "mr",
        "mrs",
        "ms",
        "dr",
        "st",
        "mt",
        "jr",
        "sr",
        "prof",
        "rev",
        "gen",
        "col",
        "capt",
        "lt",
        "sgt",
        "vs",
        "etc",
        "e.g",
        "i.e",
        "cf",
        "no",
        "vol",
        "fig",
        "approx",
        "dept",
        "est",
        "inc",
        "ltd",
        "co",
        "jan",
        "feb",
        "mar",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
    ]
)
_CLAUSE = re.compile(r"[,;:—]\s+|[，；：、]")


def merge_protected(
    spans: list[tuple[int, int]], protected: Sequence[tuple[int, int]]
) -> list[tuple[int, int]]:
    """Join neighbouring spans whose boundary would cut a ``protected`` span."""
    out: list[tuple[int, int]] = []
    for span in spans:
        if out and any(a < out[-1][1] < b or a < span[0] < b for a, b in protected):
            out[-1] = (out[-1][0], span[1])
        else:
            out.append(span)
    return out


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Spans ``(start, end)`` of the sentences of ``text`` (one paragraph, one line).

    Spans cover the text without leading/trailing spaces. A full stop after a known
    abbreviation ("Mr.", "e.g.") or a single capital initial ("H. G. Wells") does not end
    a sentence, nor does one followed by a lower-case word.
    """
    spans: list[tuple[int, int]] = []
    start = _skip_space(text, 0)
    for match in _END.finditer(text):
        end = match.end()
        if end <= start or not _is_boundary(text, match.start(), end):
            continue
        spans.append((start, end))
        start = _skip_space(text, end)
    if start < len(text.rstrip()):
        spans.append((start, len(text.rstrip())))
    return spans


def split_long(
    text: str,
    start: int,
    end: int,
    max_chars: int,
    protected: Sequence[tuple[int, int]] = (),
) -> list[tuple[int, int]]:
    """Split ``text[start:end]`` into spans of at most ``max_chars``.

    Prefers clause boundaries (, ; : —), then spaces, and cuts hard only inside a
    single word longer than ``max_chars``. A cut never falls strictly inside a
    ``protected`` span (a formula, an alias): it moves to the span's start, or to its
    end when the span starts the piece (so one piece may then be longer than the limit).
    """
    pieces: list[tuple[int, int]] = []
    while end - start > max_chars:
        limit = start + max_chars
        cut = _last_break(text, start, limit)
        for a, b in protected:
            if a < cut < b:
                cut = a if a > start else b
                break
        while cut > start and text[cut - 1].isspace():
            cut -= 1
        if cut >= end:
            break
        pieces.append((start, cut))
        start = _skip_space(text, cut)
    if end > start:
        pieces.append((start, end))
    return pieces


def _last_break(text: str, start: int, limit: int) -> int:
    window = text[start:limit]
    clause_ends = [m.end() for m in _CLAUSE.finditer(window)]
    if clause_ends and clause_ends[-1] > len(window) // 3:
        return start + len(window[: clause_ends[-1]].rstrip())
    space = window.rfind(" ")
    if space > 0:
        return start + space
    return limit


def _is_boundary(text: str, mark_start: int, end: int) -> bool:
    if text[mark_start] in "。！？":
        return True
    if end < len(text) and not text[end].isspace():
        return False
    following = text[end:].lstrip()
    if following and following[0].islower():
        return False
    if text[mark_start] == ".":
        word = text[:mark_start].rsplit(None, 1)[-1] if text[:mark_start].strip() else ""
        bare = word.lstrip(_CLOSERS + "\"'(").lower()
        if bare in _ABBREVIATIONS:
            return False
        if len(bare) == 1 and bare.isalpha() and word[-1:].isupper():
            return False
    return True


def _skip_space(text: str, index: int) -> int:
    while index < len(text) and text[index].isspace():
        index += 1
    return index
