"""Engine-neutral annotations on a block of text: how to speak a span, not what it shows.

A block (a chapter heading or paragraph) is display text plus annotations whose
``start``/``end`` are character offsets into that text. Each dialect
(:mod:`ssml.dialects`) compiles them to the markup its engine honours, and drops what it
cannot express. Text content never changes: what a listener hears differs from the
text only through markup whose text content is the display form (``<sub alias>``,
``<phoneme>``, ``<say-as>``), so captions always show the written text.

Kinds:

* **Leaves** (text-only content, never overlapping each other): :class:`Sub` (say
  ``alias`` instead of the text; formulas, lexicon entries and normalised numbers),
  :class:`Phoneme` (say these phonemes), :class:`SayAs` (read it as a date, digits, ...).
* **Containers** (may hold leaves and other containers, must nest properly):
  :class:`Emphasis`, :class:`Lang` (the span is in another language), :class:`Prosody`
  (rate/pitch/volume multipliers, 1.0 = unchanged).
* **Points**: :class:`Break` (a pause of ``ms`` milliseconds at ``start``).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from ssml.latex import Formula


@dataclass(frozen=True)
class Sub:
    start: int
    end: int
    alias: str
    formula: Formula | None = None
    #: where it came from: "formula", "lexicon", "number", "ssml", "latex-passthrough"
    origin: str = ""


@dataclass(frozen=True)
class Phoneme:
    start: int
    end: int
    ph: str
    alphabet: str  # "ipa", "cmu", "pinyin", "x-espeak"
    alias: str = ""  # words to say where the engine cannot take these phonemes
    origin: str = ""


@dataclass(frozen=True)
class SayAs:
    start: int
    end: int
    interpret_as: str  # cardinal, digits, characters, date, time, telephone, ...
    format: str = ""


@dataclass(frozen=True)
class Emphasis:
    start: int
    end: int
    level: str = "moderate"  # strong, moderate, reduced, none


@dataclass(frozen=True)
class Lang:
    start: int
    end: int
    lang: str  # BCP 47: "en", "zh", "en-GB"


@dataclass(frozen=True)
class Prosody:
    start: int
    end: int
    rate: float | None = None
    pitch: float | None = None
    volume: float | None = None


@dataclass(frozen=True)
class Break:
    start: int
    ms: int

    @property
    def end(self) -> int:
        return self.start


Annotation = Sub | Phoneme | SayAs | Emphasis | Lang | Prosody | Break
LEAVES = (Sub, Phoneme, SayAs)
CONTAINERS = (Emphasis, Lang, Prosody)


def is_leaf(annotation: Annotation) -> bool:
    return isinstance(annotation, LEAVES)


def shift(annotation: Annotation, delta: int) -> Annotation:
    """The same annotation ``delta`` characters further on."""
    if isinstance(annotation, Break):
        return replace(annotation, start=annotation.start + delta)
    return replace(annotation, start=annotation.start + delta, end=annotation.end + delta)


def clip(annotations: Iterable[Annotation], start: int, end: int) -> list[Annotation]:
    """The annotations that apply to ``[start, end)``, shifted to start at 0.

    Leaves are kept only when they lie wholly inside (segmentation never cuts one);
    containers are cut to the range; breaks are kept when ``start <= at <= end``.
    """
    out: list[Annotation] = []
    for a in annotations:
        if isinstance(a, Break):
            if start <= a.start <= end:
                out.append(shift(a, -start))
        elif is_leaf(a):
            if start <= a.start and a.end <= end:
                out.append(shift(a, -start))
        else:
            lo, hi = max(a.start, start), min(a.end, end)
            if lo < hi:
                out.append(shift(replace(a, start=lo, end=hi), -start))
    return out


def leaf_spans(annotations: Iterable[Annotation]) -> list[tuple[int, int]]:
    """``(start, end)`` of every leaf, sorted: the spans segmentation must not cut."""
    return sorted((a.start, a.end) for a in annotations if is_leaf(a) and a.end > a.start)


def sort_key(a: Annotation) -> tuple[int, int, int]:
    """Document order: by start, longer first, containers before leaves at one start."""
    rank = 0 if isinstance(a, Break) else 1 if isinstance(a, CONTAINERS) else 2
    return (a.start, rank, -a.end)


def formulas_of(annotations: Sequence[Annotation]) -> tuple[Formula, ...]:
    """The formulas read in these annotations, in order."""
    return tuple(
        a.formula for a in sorted(annotations, key=sort_key) if isinstance(a, Sub) and a.formula
    )


class SpanSet:
    """Disjoint half-open spans ``[start, end)``, kept sorted, for overlap tests in O(log n).

    Built from any spans (overlapping ones are merged); :meth:`overlaps` answers whether
    ``[a, b)`` meets one of them (``x < b and a < y``), :meth:`add` adds a span that meets
    none. Used where each of many matches must be checked against what is already taken
    (formulas, aliases): a scan of every taken span per match is quadratic in a long block.
    """

    def __init__(self, spans: Iterable[tuple[int, int]] = ()) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []
        for a, b in sorted(spans):
            if self._ends and a < self._ends[-1]:
                self._ends[-1] = max(self._ends[-1], b)
            else:
                self._starts.append(a)
                self._ends.append(b)

    def overlaps(self, a: int, b: int) -> bool:
        k = bisect_right(self._starts, a)
        for j in (k - 1, k):
            if 0 <= j < len(self._starts) and self._starts[j] < b and a < self._ends[j]:
                return True
        return False

    def add(self, a: int, b: int) -> None:
        k = bisect_right(self._starts, a)
        while k and self._starts[k - 1] == a and self._ends[k - 1] > b:
            k -= 1  # (start, end) order: an empty span goes before one at its start
        self._starts.insert(k, a)
        self._ends.insert(k, b)
