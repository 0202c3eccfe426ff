"""Word timing: turn an engine's word marks into one timed entry per word of our text.

Engines report words their own way. espeak merges some function words into the previous
word's event ("on the" gives one event), gives several events inside one number
("3.50" gives four), and reports roughly one event per Chinese character. This module
maps those marks onto *our* words, as :func:`tokenize` defines them, so that every word
of the text gets exactly one time span.

Words (:func:`tokenize`)
    A word is a maximal run of non-whitespace characters. Punctuation stays attached
    (``said,`` and ``"Hello`` are words). A run made only of punctuation (``-``, ``—``,
    ``...``) is still a word of its own, so words always cover all the non-blank text;
    it just weighs nothing when time is shared out (see below).

    Exception for scripts written without spaces: a CJK ideograph, kana or other
    character of :data:`_SPACELESS_RANGES` starts a new word, so ``你好，世界。`` is four
    words ``你`` ``好，`` ``世`` ``界。``. Punctuation after such a character stays with
    it; an opening quote or bracket stays with the character that follows it.

Times (:func:`align_words`)
    * A word is *anchored* by the earliest mark whose ``char_start`` falls inside it; a
      mark whose ``char_start`` lies in whitespace anchors the first word its span
      overlaps. Marks that hit no word are ignored.
    * An anchored word starts at its earliest mark's start. Its *group* is itself plus
      the unanchored words that follow it up to the next anchored word (that is how
      engines merge words: "on the" is reported as "on"). The group's audio runs from
      that start to the latest ``end_ms`` of the anchor's marks (or, when the engine gave
      no end, to the next anchored word's start, or the end of the audio), and is shared
      out among the group's words in proportion to their weight.
    * An anchor that starts earlier than an anchor of a preceding word is dropped (the
      word becomes unanchored): times never run backwards along the text.
    * Unanchored words before the first anchored word share ``[0, first start]``; with
      no marks at all every word shares ``[0, duration_ms]``.
    * A word's weight is its count of letters and digits (``str.isalnum`` characters,
      CJK included), so punctuation does not stretch a word. A punctuation-only word
      weighs 0 and so gets a zero-length span where it sits, unless every word of its
      group weighs 0, in which case plain character lengths are used.
    * Results are clamped so that ``0 <= start <= end <= next start <= duration_ms``.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

from renderer.engine import WordMark


@dataclass(frozen=True)
class TimedWord:
    """A word of the text with its character span and its time span.

    Offsets index into the text the word came from (segment text, or chapter text once
    placed on the chapter timeline); times are milliseconds on the matching timeline.
    """

    text: str
    char_start: int
    char_end: int
    start_ms: int
    end_ms: int


#: code point ranges of scripts written without spaces between words: each character
#: of these is a word of its own (CJK ideographs, kana, Thai, Lao, Khmer, Myanmar, ...).
_SPACELESS_RANGES: tuple[tuple[int, int], ...] = (
    (0x0E00, 0x0EFF),  # Thai, Lao
    (0x1000, 0x109F),  # Myanmar
    (0x1780, 0x17FF),  # Khmer
    (0x2E80, 0x2FDF),  # CJK radicals, Kangxi radicals
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x3100, 0x312F),  # Bopomofo
    (0x31A0, 0x31FF),  # Bopomofo extended, Katakana phonetic extensions
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0xFF66, 0xFF9D),  # halfwidth Katakana
    (0x20000, 0x3134F),  # CJK extensions B-G
)


def _is_spaceless(ch: str) -> bool:
    cp = ord(ch)
    if cp < 0x0E00:  # fast path: Latin, Greek, Cyrillic, Arabic, ...
        return False
    return any(lo <= cp <= hi for lo, hi in _SPACELESS_RANGES)


def tokenize(text: str) -> list[tuple[int, int]]:
    """Split ``text`` into words; return their ``(start, end)`` character spans.

    See the module docstring for what a word is. The spans are in order, never overlap,
    never contain whitespace, and together cover every non-whitespace character.
    """
    spans: list[tuple[int, int]] = []
    start = -1
    # Whether the current word already holds a letter/digit/CJK character; used to keep
    # an opening quote with the CJK character that follows it.
    has_content = False
    prev_spaceless = False
    for i, ch in enumerate(text):
        if ch.isspace():
            if start >= 0:
                spans.append((start, i))
                start = -1
            prev_spaceless = False
            continue
        spaceless = _is_spaceless(ch)
        if start < 0:
            start = i
            has_content = spaceless or ch.isalnum()
        elif (spaceless and has_content) or (prev_spaceless and ch.isalnum()):
            # a CJK character starts a new word, and so does a letter after one
            spans.append((start, i))
            start = i
            has_content = True
        elif spaceless or ch.isalnum():
            has_content = True
        prev_spaceless = spaceless
    if start >= 0:
        spans.append((start, len(text)))
    return spans


def _weight(word: str) -> int:
    return sum(1 for ch in word if ch.isalnum())


def _share(texts: Sequence[str], start: int, end: int) -> list[tuple[int, int]]:
    """Share ``[start, end]`` among ``texts`` in proportion to their weights."""
    weights = [_weight(t) for t in texts]
    if sum(weights) == 0:
        weights = [len(t) for t in texts]
    total = sum(weights)
    span = end - start
    out: list[tuple[int, int]] = []
    acc = 0
    for w in weights:
        a = start + (span * acc) // total if total else start
        acc += w
        b = start + (span * acc) // total if total else start
        out.append((a, b))
    return out


def align_words(text: str, marks: Sequence[WordMark], duration_ms: int) -> list[TimedWord]:
    """Give every word of ``text`` (as :func:`tokenize` splits it) a start and an end.

    ``marks`` index into ``text``; ``duration_ms`` is the length of the audio they came
    with. The rules are in the module docstring. The result has one entry per word, in
    text order, with ``0 <= start_ms <= end_ms <= next start_ms <= duration_ms``.
    """
    duration_ms = max(0, duration_ms)
    spans = tokenize(text)
    if not spans:
        return []
    n = len(spans)
    starts_of_words = [s for s, _ in spans]

    # anchor[i]: (start_ms, end_ms or None) of the earliest mark anchoring word i
    anchor_start: list[int | None] = [None] * n
    anchor_end: list[int | None] = [None] * n
    ends_known: list[bool] = [True] * n
    for mark in sorted(marks, key=lambda m: (m.start_ms, m.char_start)):
        idx = _word_for_mark(spans, starts_of_words, mark)
        if idx is None:
            continue
        mark_start = min(max(mark.start_ms, 0), duration_ms)
        cur = anchor_start[idx]
        if cur is None or mark_start < cur:
            anchor_start[idx] = mark_start
        if mark.end_ms is None:
            ends_known[idx] = False
        else:
            mark_end = min(max(mark.end_ms, mark_start), duration_ms)
            prev_end = anchor_end[idx]
            anchor_end[idx] = mark_end if prev_end is None else max(prev_end, mark_end)

    # Anchors must run forward in time along the text: drop any anchor that starts
    # before an earlier word's anchor (engines do not go back in time).
    last = 0
    for i in range(n):
        s = anchor_start[i]
        if s is None:
            continue
        if s < last:
            anchor_start[i] = None
            anchor_end[i] = None
        else:
            last = s

    anchored = [i for i in range(n) if anchor_start[i] is not None]
    times: list[tuple[int, int]] = [(0, 0)] * n
    words = [text[s:e] for s, e in spans]

    first = anchored[0] if anchored else n
    if first > 0:
        lead_end = anchor_start[first] if first < n else duration_ms
        assert lead_end is not None
        times[:first] = _share(words[:first], 0, lead_end)

    for k, i in enumerate(anchored):
        nxt = anchored[k + 1] if k + 1 < len(anchored) else n
        start = anchor_start[i]
        assert start is not None
        limit = anchor_start[nxt] if nxt < n else duration_ms
        assert limit is not None
        end = anchor_end[i]
        if end is None or not ends_known[i]:
            end = limit
        end = min(max(end, start), limit)
        times[i:nxt] = _share(words[i:nxt], start, end)

    out: list[TimedWord] = []
    prev = 0
    for (s, e), (a, b) in zip(spans, times, strict=True):
        a = min(max(a, prev), duration_ms)
        b = min(max(b, a), duration_ms)
        out.append(TimedWord(text[s:e], s, e, a, b))
        prev = b
    return out


def _word_for_mark(
    spans: Sequence[tuple[int, int]], word_starts: Sequence[int], mark: WordMark
) -> int | None:
    """The index of the word ``mark`` anchors, or ``None``."""
    pos = mark.char_start
    i = bisect.bisect_right(word_starts, pos) - 1
    if i >= 0 and spans[i][0] <= pos < spans[i][1]:
        return i
    # char_start lies in whitespace (or before the first word): the first word the
    # mark's span overlaps, if any.
    j = i + 1
    end = max(mark.char_end, pos + 1)
    if j < len(spans) and spans[j][0] < end:
        return j
    return None


def offset_words(
    words: Sequence[TimedWord], char_offset: int, time_offset_ms: int
) -> list[TimedWord]:
    """Shift words onto a larger timeline: add ``char_offset`` and ``time_offset_ms``.

    Used to place a segment's words on the chapter timeline (character offsets into the
    chapter text, times from the start of the chapter audio).
    """
    return [
        TimedWord(
            w.text,
            w.char_start + char_offset,
            w.char_end + char_offset,
            w.start_ms + time_offset_ms,
            w.end_ms + time_offset_ms,
        )
        for w in words
    ]


def place_words(
    words: Sequence[TimedWord],
    char_offset: int,
    start_ms: int,
    trimmed_ms: int = 0,
    length_ms: int | None = None,
) -> list[TimedWord]:
    """A segment's words on the chapter timeline, when its audio starts at ``start_ms``
    with its first ``trimmed_ms`` cut off (the engine's leading silence) and lasts
    ``length_ms``: times move back by the cut and stay within the kept audio."""
    shifted = offset_words(words, char_offset, start_ms - trimmed_ms)
    end_ms = None if length_ms is None else start_ms + length_ms
    return [
        TimedWord(
            w.text,
            w.char_start,
            w.char_end,
            _clamp(w.start_ms, start_ms, end_ms),
            _clamp(w.end_ms, start_ms, end_ms),
        )
        for w in shifted
    ]


def _clamp(ms: int, low: int, high: int | None) -> int:
    ms = max(ms, low)
    return ms if high is None else min(ms, high)
