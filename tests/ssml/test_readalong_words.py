"""A chapter text as blocks and sentences, words grouped by sentence, clock values."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from renderer.timing import tokenize
from ssml.readalong.words import (
    by_sentence,
    clock,
    has_heading,
    is_voiced,
    key_of,
    layout,
    parse_clock,
)


@dataclass(frozen=True)
class Word:
    text: str
    char_start: int
    char_end: int
    start_ms: int
    end_ms: int


def track(text: str) -> list[Word]:
    """Every word of ``text`` (as the timing stage cuts them), 100 ms apart."""
    return [Word(text[a:b], a, b, 100 * n, 100 * n + 80) for n, (a, b) in enumerate(tokenize(text))]


TEXT = "Chapter 4\n\nIt was late. Mr. Filby said so! Then\n\nA new one? Yes."


def test_blocks_and_sentences_follow_the_text() -> None:
    found = layout(TEXT, "IV")
    assert [(b.heading, TEXT[b.start : b.end]) for b in found.blocks] == [
        (True, "Chapter 4"),
        (False, "It was late. Mr. Filby said so! Then"),
        (False, "A new one? Yes."),
    ]
    assert [(s.block, TEXT[s.start : s.end]) for s in found.sentences] == [
        (0, "Chapter 4"),
        (1, "It was late."),
        (1, "Mr. Filby said so!"),
        (1, "Then"),
        (2, "A new one?"),
        (2, "Yes."),
    ]
    assert [s.number for s in found.sentences] == list(range(6))


def test_a_heading_is_one_sentence_whatever_its_full_stops() -> None:
    text = "Part One. Chapter 1\n\nBody."
    assert has_heading(text, "I")  # carried headings before the chapter's own
    sentences = layout(text, "I").sentences
    assert text[sentences[0].start : sentences[0].end] == "Part One. Chapter 1"
    assert not has_heading("Body text here.\n\nMore.", "Chapter 9")
    assert not layout("Body.", "").blocks[0].heading


def test_words_group_by_the_sentence_they_start_in() -> None:
    found = layout(TEXT, "IV")
    groups = list(by_sentence(track(TEXT), found.sentences))
    texts = [" ".join(w.text for _i, w in g.words) for g in groups]
    assert texts == [
        "Chapter 4",
        "It was late.",
        "Mr. Filby said so!",
        "Then",
        "A new one?",
        "Yes.",
    ]
    indexes = [i for g in groups for i, _w in g.words]
    assert indexes == list(range(len(track(TEXT))))


def test_voiced_words_have_letters_and_time() -> None:
    assert is_voiced(Word("said,", 0, 5, 0, 10))
    assert not is_voiced(Word("—", 0, 1, 0, 10))
    assert not is_voiced(Word("word", 0, 4, 10, 10))
    assert key_of("“Don’t,”") == "dont"
    assert key_of("x² İ") == "x²İ"  # one character each: offsets stay put


@pytest.mark.parametrize("ms", [0, 1, 999, 1000, 61_001, 3_600_000, 4 * 3_600_000 + 123])
def test_clock_values_round_trip(ms: int) -> None:
    assert parse_clock(clock(ms)) == ms


def test_clock_format() -> None:
    assert clock(3_723_456) == "1:02:03.456"
    assert parse_clock("12.5s") == 12_500
    assert parse_clock("250ms") == 250
