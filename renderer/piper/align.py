"""Word marks from Piper's phoneme alignments, mapped onto narrate's own words.

Piper phonemizes a whole run with espeak-ng and reports how many samples each phoneme
took. espeak's phoneme words are not the text's words: it joins function words ("was
the" is one group), may read a word differently in context, and splits sentences its own
way. So each unit (a written word, an alias, an inline IPA block; see
:mod:`renderer.piper.text`) is phonemized *alone*, the letters of those phonemes are
lined up against the run's phoneme stream with a sequence matcher, and a unit's mark
runs from its first to its last matched phoneme. Stress and length marks, punctuation
and word gaps are left out of the matching (they differ with context) but keep their
durations: a stress mark before a word's first phoneme is the start of the word.

A unit none of whose phonemes match (a lone "a" alone is the letter's name, in a
sentence the article) gets no mark; :func:`renderer.timing.align_words` interpolates it
between its neighbours. Pure: the phonemizer is passed in.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher

from renderer.engine import WordMark
from renderer.piper.text import Unit

#: a unit's phonemes when spoken alone (Piper's symbols: NFD code points)
Phonemize = Callable[[Unit], Sequence[str]]


@dataclass(frozen=True)
class Timed:
    """A phoneme symbol of the spoken stream and its samples ``[start, end)``."""

    symbol: str
    start: int
    end: int


def is_core(symbol: str) -> bool:
    """Whether a symbol is a sound to match on (not a stress or length mark, a combining
    diacritic, punctuation or a space)."""
    return any(unicodedata.category(ch) in ("Ll", "Lu", "Lo") for ch in symbol)


def _is_modifier(symbol: str) -> bool:
    """Stress and length marks, diacritics: they belong to the sound next to them."""
    return bool(symbol) and all(
        unicodedata.category(ch) in ("Lm", "Mn", "Mc", "Sk") for ch in symbol
    )


def unit_marks(
    units: Sequence[Unit],
    stream: Sequence[Timed],
    phonemize: Phonemize,
    *,
    offset_samples: int,
    sample_rate_hz: int,
) -> list[WordMark]:
    """One mark per unit whose phonemes are found in ``stream`` (times in ms of the
    whole audio: ``offset_samples`` is where the stream's audio starts in it)."""
    wanted: list[str] = []  # core letters of every unit spoken alone
    owner: list[int] = []
    for k, unit in enumerate(units):
        for symbol in phonemize(unit):
            if is_core(symbol):
                for ch in symbol:
                    wanted.append(ch)
                    owner.append(k)
    heard: list[str] = []  # core letters of the stream
    source: list[int] = []  # index into stream
    for i, timed in enumerate(stream):
        if is_core(timed.symbol):
            for ch in timed.symbol:
                heard.append(ch)
                source.append(i)
    first: list[int | None] = [None] * len(units)
    last: list[int | None] = [None] * len(units)
    matcher = SequenceMatcher(None, "".join(wanted), "".join(heard), autojunk=False)
    for a, b, size in matcher.get_matching_blocks():
        for j in range(size):
            k, i = owner[a + j], source[b + j]
            first_k = first[k]
            if first_k is None or i < first_k:
                first[k] = i
            last_k = last[k]
            if last_k is None or i > last_k:
                last[k] = i
    spans = [(lo, hi) for lo, hi in zip(first, last, strict=True)]
    spans += _gaps(units, first, last, stream)
    marks: list[WordMark] = []
    for (lo, hi), unit in zip(spans, list(units) + _gap_units(units, first), strict=True):
        if lo is None or hi is None:
            continue
        while lo > 0 and _is_modifier(stream[lo - 1].symbol):  # a stress mark before it
            lo -= 1
        while hi + 1 < len(stream) and _is_trailing(stream[hi + 1].symbol):
            hi += 1
        start = offset_samples + stream[lo].start
        end = offset_samples + stream[hi].end
        marks.append(
            WordMark(
                char_start=unit.char_start,
                char_end=unit.char_end,
                start_ms=start * 1000 // sample_rate_hz,
                end_ms=end * 1000 // sample_rate_hz,
            )
        )
    return marks


def _unmatched_groups(first: Sequence[int | None]) -> list[tuple[int, int]]:
    """``(from, to)`` unit indexes of each run of units with no match."""
    groups: list[tuple[int, int]] = []
    k = 0
    while k < len(first):
        if first[k] is None:
            j = k
            while j + 1 < len(first) and first[j + 1] is None:
                j += 1
            groups.append((k, j))
            k = j + 1
        else:
            k += 1
    return groups


def _gaps(
    units: Sequence[Unit],
    first: Sequence[int | None],
    last: Sequence[int | None],
    stream: Sequence[Timed],
) -> list[tuple[int | None, int | None]]:
    """For each run of unmatched units, the sounds heard between its matched neighbours
    (a stream index span over core symbols), or ``(None, None)`` when there are none."""
    out: list[tuple[int | None, int | None]] = []
    for a, b in _unmatched_groups(first):
        before = last[a - 1] if a > 0 else -1
        after = first[b + 1] if b + 1 < len(first) else len(stream)
        assert before is not None and after is not None
        core = [i for i in range(before + 1, after) if is_core(stream[i].symbol)]
        out.append((core[0], core[-1]) if core else (None, None))
    return out


def _gap_units(units: Sequence[Unit], first: Sequence[int | None]) -> list[Unit]:
    """One unit per run of unmatched units, spanning their text: its mark anchors the
    run's first word, and the words after it share its time."""
    return [
        Unit(" ".join(u.spoken for u in units[a : b + 1]), units[a].char_start, units[b].char_end)
        for a, b in _unmatched_groups(first)
    ]


def _is_trailing(symbol: str) -> bool:
    """Length marks and diacritics after a sound (not stress marks: they start the next
    syllable)."""
    return _is_modifier(symbol) and symbol not in ("ˈ", "ˌ")


def timed_symbols(
    phonemes: Sequence[str],
    id_map: Mapping[str, Sequence[int]],
    id_samples: Sequence[int],
    total_samples: int,
) -> list[Timed]:
    """Sample spans of a chunk's phonemes from the samples per phoneme id.

    The ids are Piper's: ``^``, then a pad before each phoneme's ids, a pad, then ``$``
    (a phoneme missing from the voice's map has no ids: zero length). A phoneme's span
    is the pad before it and its own ids: the pad is the transition into the sound, and
    counting it with the phoneme after it puts word starts where a listener (and the
    forced aligner) hears them; counted with the phoneme before, starts came out about
    20 ms later. If the counts do not add up to the audio's length they are scaled.
    """
    pad = len(id_map.get("_", ()))
    index = len(id_map.get("^", ()))  # the first pad: the first phoneme's
    counted = sum(int(n) for n in id_samples)
    scale = total_samples / counted if counted else 0.0
    position = sum(int(n) for n in id_samples[:index])
    spans: list[Timed] = []
    for phoneme in phonemes:
        ids = id_map.get(phoneme)
        width = pad + len(ids) if ids else 0
        samples = sum(int(n) for n in id_samples[index : index + width])
        start = round(position * scale)
        position += samples
        spans.append(Timed(phoneme, start, round(position * scale)))
        index += width
    return spans
