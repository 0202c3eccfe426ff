"""Sentence and clause splitting for English-like and Chinese text (pure).

Linear in the text: each full stop looks at the word before it and the character after
it only (never at the rest of the paragraph), and the spans a cut must not fall inside
(formulas, aliases) are looked up by bisection (:class:`ProtectedSpans`), so a paragraph
of a million characters with thousands of formulas splits in one pass.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Sequence
from itertools import accumulate

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


class ProtectedSpans:
    """Spans ``(a, b)`` no cut may fall strictly inside; which one holds a point, in O(log n)."""

    def __init__(self, spans: Sequence[tuple[int, int]] = ()) -> None:
        ordered = sorted(spans)
        self._spans = ordered
        self._starts = [a for a, _b in ordered]
        #: the furthest end of the spans up to each index (spans may overlap)
        self._reach = list(accumulate((b for _a, b in ordered), max))

    def containing(self, point: int) -> tuple[int, int] | None:
        """The first span (by start) with ``a < point < b``, or None."""
        count = bisect_left(self._starts, point)  # the spans with a < point
        if not count or self._reach[count - 1] <= point:
            return None
        first = bisect_left(self._reach, point + 1, 0, count)  # first with reach > point
        return self._spans[first]


def _protected(spans: Sequence[tuple[int, int]] | ProtectedSpans) -> ProtectedSpans:
    return spans if isinstance(spans, ProtectedSpans) else ProtectedSpans(spans)


def merge_protected(
    spans: list[tuple[int, int]], protected: Sequence[tuple[int, int]] | ProtectedSpans
) -> list[tuple[int, int]]:
    """Join neighbouring spans whose boundary would cut a ``protected`` span."""
    guard = _protected(protected)
    out: list[tuple[int, int]] = []
    for span in spans:
        if out and (guard.containing(out[-1][1]) or guard.containing(span[0])):
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
    protected: Sequence[tuple[int, int]] | ProtectedSpans = (),
) -> list[tuple[int, int]]:
    """Split ``text[start:end]`` into spans of at most ``max_chars``.

    Prefers clause boundaries (, ; : —), then spaces, and cuts hard only inside a
    single word longer than ``max_chars``. A cut never falls strictly inside a
    ``protected`` span (a formula, an alias): it moves to the span's start, or to its
    end when the span starts the piece (so one piece may then be longer than the limit).
    """
    guard = _protected(protected)
    pieces: list[tuple[int, int]] = []
    while end - start > max_chars:
        limit = start + max_chars
        cut = _last_break(text, start, limit)
        held = guard.containing(cut)
        if held is not None:
            cut = held[0] if held[0] > start else held[1]
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
    following = _skip_space(text, end)
    if following < len(text) and text[following].islower():
        return False
    if text[mark_start] == ".":
        word = _word_before(text, mark_start)
        bare = word.lstrip(_CLOSERS + "\"'(").lower()
        if bare in _ABBREVIATIONS:
            return False
        if len(bare) == 1 and bare.isalpha() and word[-1:].isupper():
            return False
    return True


def _word_before(text: str, index: int) -> str:
    """The last word of ``text[:index]`` (spaces before ``index`` skipped), or ""."""
    end = index
    while end > 0 and text[end - 1].isspace():
        end -= 1
    start = end
    while start > 0 and not text[start - 1].isspace():
        start -= 1
    return text[start:end]


def _skip_space(text: str, index: int) -> int:
    while index < len(text) and text[index].isspace():
        index += 1
    return index
