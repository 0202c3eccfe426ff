"""The Piper dialect's SSML read into what Piper is given and what the captions show.

Piper takes plain text (and inline IPA as ``[[ ... ]]``), so a document of the ``piper``
dialect (:data:`ssml.dialects.PIPER`) is cut into *runs* of speech separated by the
silences its ``<break>`` elements ask for. A run is a sequence of :class:`Unit`: each
written word of plain text, each ``<sub>`` (its alias is spoken, its text shown) and
each ``<phoneme>`` (its IPA is spoken, its text shown), with the span of the segment
text (the document's text content) it shows. Units are what word marks are made of.

Literal ``[[`` and ``]]`` in text are spaced apart, or Piper would read what lies between
them as phonemes. Pure: no Piper needed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from lxml import etree

from renderer.timing import tokenize

_TIME_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s)\s*$")
#: the longest pause one break may ask for (the dialect never asks for more)
MAX_BREAK_MS = 10_000


@dataclass(frozen=True)
class Unit:
    """Something spoken, and the span ``[char_start, char_end)`` of the text it shows.

    ``spoken`` is what Piper reads (a word, an alias, or ``[[ipa]]``); ``ipa`` is set
    for a phoneme unit.
    """

    spoken: str
    char_start: int
    char_end: int
    ipa: str | None = None


@dataclass
class Run:
    """Speech between two pauses: ``pause_before_ms`` of silence, then the units."""

    pause_before_ms: int = 0
    units: list[Unit] = field(default_factory=list)

    @property
    def spoken(self) -> str:
        """The run as one text for Piper (units separated by spaces)."""
        return " ".join(u.spoken for u in self.units)


@dataclass(frozen=True)
class Reading:
    text: str  # the document's text content, which marks index into
    runs: tuple[Run, ...]
    pause_after_ms: int  # silence after the last run


def break_ms(value: str | None) -> int:
    """A ``<break time>`` in ms (500 ms when absent or unreadable), at most 10 s."""
    m = _TIME_RE.match(value or "")
    if m is None:
        return 500
    ms = float(m.group(1)) * (1000 if m.group(2) == "s" else 1)
    return int(min(MAX_BREAK_MS, max(0.0, ms)))


def escape_brackets(text: str) -> str:
    """``[[`` and ``]]`` spaced apart, so Piper does not take them for inline phonemes."""
    while "[[" in text or "]]" in text:
        text = text.replace("[[", "[ [").replace("]]", "] ]")
    return text


def read_ssml(ssml: str) -> Reading:
    """Cut a Piper-dialect document into runs of units (see the module docstring)."""
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, remove_comments=True
    )
    root = etree.fromstring(ssml.encode("utf-8"), parser)
    reader = _Reader()
    reader.element_content(root)
    text = "".join(reader.text)
    runs = [r for r in reader.runs if r.units]
    last = reader.runs[-1]
    pause_after = 0 if last.units else last.pause_before_ms  # trailing breaks
    return Reading(text, tuple(runs), pause_after)


class _Reader:
    def __init__(self) -> None:
        self.text: list[str] = []
        self.length = 0
        self.runs: list[Run] = [Run()]

    def plain(self, chunk: str | None) -> None:
        if not chunk:
            return
        for a, b in tokenize(chunk):
            self.runs[-1].units.append(
                Unit(escape_brackets(chunk[a:b]), self.length + a, self.length + b)
            )
        self.shown(chunk)

    def shown(self, chunk: str) -> None:
        self.text.append(chunk)
        self.length += len(chunk)

    def pause(self, ms: int) -> None:
        if self.runs[-1].units:
            self.runs.append(Run(pause_before_ms=ms))
        else:  # breaks in a row add up
            self.runs[-1].pause_before_ms = min(MAX_BREAK_MS, self.runs[-1].pause_before_ms + ms)

    def element_content(self, element: etree._Element) -> None:
        self.plain(element.text)
        for child in element:
            if isinstance(child.tag, str):
                self.element(child)
            self.plain(child.tail)

    def element(self, element: etree._Element) -> None:
        name = etree.QName(element).localname
        if name == "break":
            self.pause(break_ms(element.get("time")))
            return
        shown = "".join(element.itertext())
        spoken: str | None = None
        ipa: str | None = None
        if name == "sub" and (element.get("alias") or "").strip():
            spoken = escape_brackets(" ".join((element.get("alias") or "").split()))
        elif name == "phoneme" and (element.get("ph") or "").strip():
            ipa = " ".join((element.get("ph") or "").replace("[", "").replace("]", "").split())
            spoken = f"[[{ipa}]]" if ipa else None
        if spoken is None or not shown.strip():
            self.element_content(element)  # any other element: its text is read as text
            return
        lead = len(shown) - len(shown.lstrip())
        trail = len(shown.rstrip())
        self.runs[-1].units.append(Unit(spoken, self.length + lead, self.length + trail, ipa=ipa))
        self.shown(shown)
