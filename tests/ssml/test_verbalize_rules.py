"""Normalisation of numbers, dates, times, money, units and abbreviations."""

from __future__ import annotations

import pytest

from ssml.numbers import cardinal, ordinal_word, year
from ssml.verbalize import verbalize


def spoken(text: str) -> list[tuple[str, str]]:
    return [(text[s.start : s.end], s.alias) for s in verbalize(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("It costs $5.", [("$5", "five dollars")]),
        ("$1 each", [("$1", "one dollar")]),
        ("$3.50 now", [("$3.50", "three dollars and fifty cents")]),
        ("£2.5 million", [("£2.5 million", "two point five million pounds")]),
        ("€10 and ¥100", [("€10", "ten euros"), ("¥100", "one hundred yen")]),
        ("on 16 March 2024", [("16 March 2024", "the sixteenth of March twenty twenty-four")]),
        ("March 16, 2024", [("March 16, 2024", "March sixteenth, twenty twenty-four")]),
        ("2024-03-16", [("2024-03-16", "the sixteenth of March twenty twenty-four")]),
        ("at 10:30", [("10:30", "ten thirty")]),
        ("at 9:05 am", [("9:05 am", "nine oh five a m")]),
        ("at 10:00", [("10:00", "ten o'clock")]),
        ("at 14:00", [("14:00", "fourteen hundred")]),
        ("at 3pm", [("3pm", "three p m")]),
        ("50% more", [("50%", "fifty percent")]),
        ("the 21st and 11th", [("21st", "twenty-first"), ("11th", "eleventh")]),
        ("5 km away", [("5 km", "five kilometres")]),
        ("1 kg", [("1 kg", "one kilogram")]),
        ("20°C", [("20°C", "twenty degrees Celsius")]),
        ("100 km/h", [("100 km/h", "one hundred kilometres per hour")]),
        ("in 1905", [("1905", "nineteen oh five")]),
        ("the 1990s", [("1990s", "nineteen nineties")]),
        ("300 BC", [("300 BC", "three hundred B C")]),
        ("1,000,000 people", [("1,000,000", "one million")]),
        ("pi is 3.14", [("3.14", "three point one four")]),
        ("e.g. this", [("e.g.", "for example")]),
        ("Dr. Who", [("Dr.", "Doctor")]),
        ("Jan. 5", [("Jan. 5", "January fifth")]),
        ("Chapter 4 has 12 pages and 1500 words.", []),
        ("the 2th of never", []),
    ],
)
def test_rules(text: str, expected: list[tuple[str, str]]) -> None:
    assert spoken(text) == expected


def test_number_words() -> None:
    assert cardinal(1905) == "one thousand nine hundred and five"
    assert cardinal(-21) == "minus twenty-one"
    assert ordinal_word(22) == "twenty-second"
    assert (year(2000), year(2005), year(1800)) == (
        "two thousand",
        "two thousand and five",
        "eighteen hundred",
    )
