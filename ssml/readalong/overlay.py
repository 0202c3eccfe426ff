"""One SMIL media overlay document per chapter, written a sentence at a time.

Word level: each sentence that has words of its own is a ``<seq epub:textref="…#sentence">``
of one ``<par>`` per voiced word (its ``clipBegin``/``clipEnd`` are the word's start and
end in the word track, on the chapter's audio); a sentence whose words could not be placed
one by one but whose element is known (a heading spoken as "Chapter 1" but written "I")
is one ``<par>`` for the whole sentence. Sentence level: one ``<par>`` per sentence, from
its first voiced word's start to its last voiced word's end.

A chapter may be several audio files (a chapter longer than a store allows in one file):
a clip goes to the file its start falls in, with times relative to that file. A clip that
would end where it begins is left out (EPUB forbids it).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import BinaryIO

from lxml import etree

from ssml.readalong.words import clock

SMIL_NS = "http://www.w3.org/ns/SMIL"
EPUB_NS = "http://www.idpf.org/2007/ops"
LEVELS = ("word", "sentence")


@dataclass(frozen=True)
class AudioPart:
    """One audio file of a chapter: its href (relative to the SMIL document) and where it
    sits on the chapter's timeline."""

    href: str
    start_ms: int
    duration_ms: int


@dataclass(frozen=True)
class AudioTrack:
    """A chapter's audio: one file, or several in a row."""

    parts: tuple[AudioPart, ...]

    def clip(self, begin_ms: int, end_ms: int) -> tuple[str, int, int] | None:
        """``(href, begin, end)`` of a span of the chapter timeline within its file, or
        None when nothing of it is left (it ends where it begins, or past the audio)."""
        part = self.parts[0]
        for candidate in self.parts:
            if candidate.start_ms <= begin_ms:
                part = candidate
        begin = max(0, begin_ms - part.start_ms)
        end = min(end_ms, part.start_ms + part.duration_ms) - part.start_ms
        return (part.href, begin, end) if end > begin else None


@dataclass(frozen=True)
class Par:
    """A word's element (its id) and its time on the chapter timeline."""

    fragment: str
    begin_ms: int
    end_ms: int


@dataclass(frozen=True)
class Group:
    """A sentence: its element's id (None: it has none), the time of its voiced words
    (first start to last end), and the pars of the words that have elements of their own."""

    fragment: str | None
    begin_ms: int
    end_ms: int
    pars: tuple[Par, ...] = ()


@dataclass
class OverlayStats:
    """What a SMIL document holds: ``<par>`` elements and the sum of their clips."""

    pars: int = 0
    clip_ms: int = 0


def write_smil(
    out: BinaryIO,
    groups: Iterable[Group],
    *,
    text_href: str,
    audio: AudioTrack,
    level: str = "word",
) -> OverlayStats:
    """Write the overlay of one content document (``text_href``, relative to the SMIL
    document) to ``out``; holds one sentence at a time. The caller drops a document whose
    stats say it has no ``<par>`` (a SMIL body may not be empty)."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, not {level!r}")
    stats = OverlayStats()
    with etree.xmlfile(out, encoding="utf-8") as xf:
        xf.write_declaration()
        nsmap = {None: SMIL_NS, "epub": EPUB_NS}
        with xf.element(_smil("smil"), nsmap=nsmap, version="3.0"):
            xf.write("\n")
            with xf.element(_smil("body")):
                xf.write("\n")
                for group in groups:
                    _write_group(xf, group, text_href, audio, level, stats)
    return stats


def _write_group(
    xf: etree.xmlfile,
    group: Group,
    text_href: str,
    audio: AudioTrack,
    level: str,
    stats: OverlayStats,
) -> None:
    if level == "word" and group.pars:
        clips = [
            (par.fragment, clip)
            for par in group.pars
            if (clip := audio.clip(par.begin_ms, par.end_ms)) is not None
        ]
        if not clips:
            return
        if group.fragment is None:
            _write_pars(xf, clips, text_href, stats)
            return
        with xf.element(_smil("seq"), {_epub("textref"): f"{text_href}#{group.fragment}"}):
            xf.write("\n")
            _write_pars(xf, clips, text_href, stats)
        xf.write("\n")
        return
    if group.fragment is None:
        return
    whole = audio.clip(group.begin_ms, group.end_ms)
    if whole is not None:
        _write_pars(xf, [(group.fragment, whole)], text_href, stats)


def _write_pars(
    xf: etree.xmlfile,
    clips: Sequence[tuple[str, tuple[str, int, int]]],
    text_href: str,
    stats: OverlayStats,
) -> None:
    for fragment, (href, begin_ms, end_ms) in clips:
        with xf.element(_smil("par")):
            with xf.element(_smil("text"), src=f"{text_href}#{fragment}"):
                pass
            attributes = {"src": href, "clipBegin": clock(begin_ms), "clipEnd": clock(end_ms)}
            with xf.element(_smil("audio"), attributes):
                pass
        xf.write("\n")
        stats.pars += 1
        stats.clip_ms += end_ms - begin_ms


def _smil(name: str) -> str:
    return f"{{{SMIL_NS}}}{name}"


def _epub(name: str) -> str:
    return f"{{{EPUB_NS}}}{name}"
