"""A chapter's text as blocks and sentences, and its word track grouped by sentence.

The chapter text is what the word track's character offsets index into: its blocks
(heading, paragraphs) are separated by a blank line. A block is cut into sentences by
:func:`ssml.sentences.split_sentences` (the cut the segmenter makes); a heading block is
one sentence, whatever its full stops ("Part One. Chapter 1"). A word belongs to the
sentence its first character falls in.

A word gets a ``<par>`` of its own only when it is *voiced*: it has a letter or digit
(punctuation-only words such as ``—`` weigh nothing and get no time) and a clip longer
than zero (EPUB forbids a clip that ends where it begins).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from ssml.normalize import chapter_heading
from ssml.sentences import split_sentences

BLOCK_SEPARATOR = "\n\n"


class TrackWord(Protocol):
    """A word of the track: its characters in the chapter text and its time in the audio."""

    @property
    def text(self) -> str: ...
    @property
    def char_start(self) -> int: ...
    @property
    def char_end(self) -> int: ...
    @property
    def start_ms(self) -> int: ...
    @property
    def end_ms(self) -> int: ...


W = TypeVar("W", bound=TrackWord)


def fold(char: str) -> str:
    """One character lower-cased, or as it is where lower-casing makes it longer."""
    lower = char.lower()
    return lower if len(lower) == 1 else char


def key_of(text: str) -> str:
    """The letters and digits of ``text``, lower-cased: what alignment compares."""
    return "".join(fold(c) for c in text if c.isalnum())


def is_voiced(word: TrackWord) -> bool:
    """Whether a word gets a clip of its own: letters or digits, and a time span."""
    return word.end_ms > word.start_ms and any(c.isalnum() for c in word.text)


@dataclass(frozen=True)
class TextBlock:
    """A block of the chapter text: ``[start, end)``; ``heading`` for a spoken heading."""

    start: int
    end: int
    heading: bool = False


@dataclass(frozen=True)
class Sentence:
    """Sentence ``number`` (0-based in the chapter) of block ``block``: ``[start, end)``."""

    number: int
    block: int
    start: int
    end: int
    heading: bool = False


@dataclass(frozen=True)
class Layout:
    """A chapter text's blocks and sentences, in order."""

    text: str
    blocks: tuple[TextBlock, ...]
    sentences: tuple[Sentence, ...]


def has_heading(text: str, title: str) -> bool:
    """Whether the first block of a chapter text is its spoken heading: the heading that
    ingest makes of the title (:func:`ssml.normalize.chapter_heading`), alone or after the
    headings of empty sections before it ("Part One. Chapter 1")."""
    first = text.split(BLOCK_SEPARATOR, 1)[0]
    heading = chapter_heading(title).rstrip(".") if title.strip() else ""
    if not heading or not first:
        return False
    return first in (heading, title) or first.endswith(". " + heading)


def layout(text: str, title: str) -> Layout:
    """Blocks and sentences of a chapter text (see the module docstring)."""
    blocks: list[TextBlock] = []
    start = 0
    heading = has_heading(text, title)
    while start <= len(text):
        end = text.find(BLOCK_SEPARATOR, start)
        end = len(text) if end < 0 else end
        if text[start:end].strip():
            blocks.append(TextBlock(start, end, heading=heading and not blocks))
        start = end + len(BLOCK_SEPARATOR)
    sentences: list[Sentence] = []
    for number, block in enumerate(blocks):
        chunk = text[block.start : block.end]
        spans = [(0, len(chunk.rstrip()))] if block.heading else split_sentences(chunk)
        for a, b in spans:
            if b > a:
                at = block.start
                sentences.append(Sentence(len(sentences), number, at + a, at + b, block.heading))
    return Layout(text, tuple(blocks), tuple(sentences))


@dataclass
class SentenceWords(Generic[W]):
    """A sentence and its words, each with its 0-based index in the chapter's track."""

    sentence: Sentence
    words: list[tuple[int, W]] = field(default_factory=list)


def by_sentence(words: Iterable[W], sentences: tuple[Sentence, ...]) -> Iterator[SentenceWords[W]]:
    """The words grouped by the sentence their first character falls in, in order.

    Sentences without words are left out; a word before the first sentence goes with it.
    Holds one sentence's words at a time.
    """
    if not sentences:
        return
    current = SentenceWords[W](sentences[0])
    at = 0
    for index, word in enumerate(words):
        while at + 1 < len(sentences) and sentences[at + 1].start <= word.char_start:
            at += 1
        if sentences[at] is not current.sentence:
            if current.words:
                yield current
            current = SentenceWords[W](sentences[at])
        current.words.append((index, word))
    if current.words:
        yield current


def clock(ms: int) -> str:
    """A SMIL full clock value, ``H:MM:SS.mmm`` (``0:01:02.345``)."""
    seconds, millis = divmod(max(0, ms), 1000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}.{millis:03d}"


def parse_clock(value: str) -> int:
    """Milliseconds of a clock value as :func:`clock` writes it (also ``12.5s``, ``MM:SS``)."""
    value = value.strip()
    if value.endswith("ms"):
        return round(float(value[:-2]))
    if value.endswith("s") and ":" not in value:
        return round(float(value[:-1]) * 1000)
    total = 0.0
    for part in value.split(":"):
        total = total * 60 + float(part)
    return round(total * 1000)


@dataclass
class MarkStats:
    """How a chapter's words fared: every word of the track is counted once.

    ``placed``: voiced, with an element (and a word-level ``<par>``) of its own;
    ``covered``: voiced, but only its sentence's element could be found (a heading spoken
    as "Chapter 1" and written "I"); ``unplaced``: voiced and not found in the document
    (no ``<par>``); ``silent``: punctuation or no time, so no ``<par>`` by design.
    """

    words: int = 0
    placed: int = 0
    covered: int = 0
    unplaced: int = 0
    silent: int = 0

    def add(self, other: MarkStats) -> None:
        self.words += other.words
        self.placed += other.placed
        self.covered += other.covered
        self.unplaced += other.unplaced
        self.silent += other.silent


def word_id(prefix: str, index: int) -> str:
    """The id of word ``index`` (0-based in the chapter's track)."""
    return f"{prefix}w{index}"


def sentence_id(prefix: str, number: int) -> str:
    """The id of sentence ``number`` (0-based in the chapter)."""
    return f"{prefix}s{number}"
