"""SSML documents as input (``.ssml``, or any XML/HTML file whose root is ``<speak>``).

The document becomes one chapter titled from the file name. Each ``<p>`` is a paragraph
(text outside any ``<p>`` too, one paragraph per run); whitespace collapses as in HTML.
The markup becomes engine-neutral annotations, so the same document renders on every
engine that can express it:

* ``<sub alias>`` -> :class:`~ssml.annotations.Sub`; ``<phoneme alphabet ph>`` ->
  :class:`~ssml.annotations.Phoneme` (``ipa``, ``cmu``/``x-cmu``, ``py``/``pinyin``,
  ``x-espeak``); ``<say-as interpret-as format>`` -> :class:`~ssml.annotations.SayAs`.
* ``<break time|strength>`` -> :class:`~ssml.annotations.Break` (none 0 ms, x-weak 100,
  weak 250, medium 500, strong 750, x-strong 1200; no attribute 500 ms).
* ``<emphasis level>``, ``<prosody rate pitch volume>`` (percentages and the named
  values), ``<voice xml:lang>``/``<lang xml:lang>``/``xml:lang`` on ``<p>``/``<s>`` ->
  :class:`~ssml.annotations.Emphasis`, :class:`~ssml.annotations.Prosody`,
  :class:`~ssml.annotations.Lang`.
* ``<mark>``, ``<audio>``, ``<soundEvent>`` and ``<s>`` carry no text of their own.

Whether the chosen engine accepts the markup is checked later, against its dialect, by
:func:`ssml.annotate.annotate` (which reports line and column of each problem). The raw
text is kept in :attr:`Document.ssml_source` for that.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from narrate.errors import MalformedDocumentError
from ssml.annotations import Annotation, Break, Emphasis, Lang, Phoneme, Prosody, SayAs, Sub
from ssml.document import Chapter, Document
from ssml.ingest.html import XML_LANG, local_name
from ssml.ingest.safexml import parse_xml
from ssml.ingest.text import decode_utf8, prettify_stem

_SNIFF_RE = re.compile(
    rb"^(?:\xef\xbb\xbf)?\s*(?:<\?xml[^>]*\?>\s*)?(?:<!--.*?-->\s*)*(?:<!DOCTYPE[^>]*>\s*)?<speak[\s>/]",
    re.S,
)
_STRENGTH_MS = {
    "none": 0,
    "x-weak": 100,
    "weak": 250,
    "medium": 500,
    "strong": 750,
    "x-strong": 1200,
}
_RATES = {"x-slow": 0.5, "slow": 0.75, "medium": 1.0, "default": 1.0, "fast": 1.25, "x-fast": 1.75}
_PITCHES = {"x-low": 0.6, "low": 0.8, "medium": 1.0, "default": 1.0, "high": 1.2, "x-high": 1.4}
_VOLUMES = {"silent": 0.0, "x-soft": 0.3, "soft": 0.6, "medium": 1.0, "default": 1.0}
_VOLUMES |= {"loud": 1.4, "x-loud": 1.8}
_ALPHABETS = {"ipa": "ipa", "cmu": "cmu", "x-cmu": "cmu", "py": "pinyin", "pinyin": "pinyin"}
_ALPHABETS |= {"x-pinyin": "pinyin", "x-espeak": "x-espeak"}


def looks_like_ssml(data: bytes) -> bool:
    """Whether the document's root element is ``<speak>``."""
    return bool(_SNIFF_RE.match(data[:4096]))


def _time_ms(value: str | None) -> int | None:
    if not value:
        return None
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s)\s*", value)
    if not m:
        return None
    return int(float(m.group(1)) * (1000 if m.group(2) == "s" else 1))


def _multiplier(value: str | None, named: dict[str, float], relative: bool) -> float | None:
    if value is None:
        return None
    value = value.strip()
    if value in named:
        return named[value]
    m = re.fullmatch(r"([+-]?\d+(?:\.\d+)?)%", value)
    if not m:
        return None
    number = float(m.group(1))
    if relative or value[0] in "+-":
        return max(0.0, 1 + number / 100)
    return number / 100


@dataclass
class _Block:
    text: str = ""
    annotations: list[Annotation] = field(default_factory=list)

    def add(self, s: str) -> None:
        for ch in s:
            if ch.isspace():
                if self.text and not self.text.endswith(" "):
                    self.text += " "
            else:
                self.text += ch


class _Reader:
    def __init__(self) -> None:
        self.blocks: list[_Block] = []
        self.current = _Block()

    def flush(self) -> None:
        block = self.current
        if block.text.endswith(" "):
            block.text = block.text[:-1]
        if block.text.strip():
            length = len(block.text)
            block.annotations = [a for a in block.annotations if a.start <= length]
            block.annotations = [_clamp(a, length) for a in block.annotations]
            self.blocks.append(block)
        self.current = _Block()

    def element(self, el: Any) -> None:
        name = local_name(el)
        if name == "p":
            self.flush()
        block = self.current
        start = len(block.text)
        lang = el.get(XML_LANG)
        if name in ("sub", "phoneme", "say-as"):
            block.add(el.text or "" if name != "say-as" else "".join(el.itertext()))
            end = len(block.text.rstrip(" "))
            start = min(start + (1 if block.text[start : start + 1] == " " else 0), end)
            if end > start:
                if name == "sub" and el.get("alias"):
                    block.annotations.append(Sub(start, end, str(el.get("alias")), origin="ssml"))
                elif name == "phoneme" and el.get("ph"):
                    alphabet = _ALPHABETS.get(str(el.get("alphabet") or "ipa").lower(), "")
                    block.annotations.append(
                        Phoneme(start, end, str(el.get("ph")), alphabet, origin="ssml")
                    )
                elif name == "say-as":
                    block.annotations.append(
                        SayAs(
                            start,
                            end,
                            str(el.get("interpret-as") or ""),
                            str(el.get("format") or ""),
                        )
                    )
            block.add(el.tail or "")
            return
        if name == "break":
            ms = _time_ms(el.get("time"))
            if ms is None:
                ms = _STRENGTH_MS.get(str(el.get("strength") or "medium"), 500)
            block.annotations.append(Break(len(block.text), ms))
            block.add(el.tail or "")
            return
        if name in ("mark", "audio", "soundEvent", "metadata", "desc"):
            block.add(el.tail or "")
            return
        if name != "speak":
            block.add(el.text or "")
        else:
            block.add(el.text or "")
        for child in el:
            if isinstance(child.tag, str):
                self.element(child)
            else:
                self.current.add(child.tail or "")
        block = self.current
        end = len(block.text.rstrip(" "))
        if end > start:
            if name == "emphasis":
                block.annotations.append(Emphasis(start, end, str(el.get("level") or "moderate")))
            elif name == "prosody":
                rate = _multiplier(el.get("rate"), _RATES, relative=False)
                pitch = _multiplier(el.get("pitch"), _PITCHES, relative=True)
                volume = _multiplier(el.get("volume"), _VOLUMES, relative=True)
                if rate is not None or pitch is not None or volume is not None:
                    block.annotations.append(Prosody(start, end, rate, pitch, volume))
            elif name in ("voice", "lang", "s", "p") and lang:
                block.annotations.append(Lang(start, end, str(lang)))
        if name == "p":
            self.flush()
        else:
            block.add(el.tail or "")


def _clamp(a: Annotation, length: int) -> Annotation:
    if isinstance(a, Break) or a.end <= length:
        return a
    from dataclasses import replace

    return replace(a, end=length)


def parse(data: bytes, name: str, stem: str) -> Document:
    """Parse an SSML document into a one-chapter Document with annotations."""
    source = decode_utf8(data, name)
    root = parse_xml(data, name, fix="check that the file is well-formed XML")
    if local_name(root) != "speak":
        raise MalformedDocumentError(
            f"{name} is not an SSML document: its root element is <{local_name(root)}>",
            hint="an SSML document starts with <speak>",
        )
    reader = _Reader()
    reader.element(root)
    reader.flush()
    title = prettify_stem(stem)
    chapter = Chapter(
        title=title,
        paragraphs=tuple(b.text for b in reader.blocks),
        annotations=tuple(tuple(b.annotations) for b in reader.blocks),
    )
    language = root.get(XML_LANG)
    return Document(
        chapters=(chapter,) if reader.blocks else (),
        title=None,
        language=str(language) if language else None,
        format="ssml",
        ssml_source=source,
    )
