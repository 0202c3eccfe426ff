"""Tests for ssml.normalize: speech-text clean-up and spoken chapter headings."""

from __future__ import annotations

import time

import pytest

from ssml.normalize import chapter_heading, normalize_text, parse_number, roman_to_int

WJ = "\u2060"  # word joiner
HAIR = "\u200a"


# --- invisible characters and spaces --------------------------------------------------


def test_removes_invisible_characters() -> None:
    s = f"a{WJ}b\u200bc\u200cd\u200de\ufefff\u00adg"
    assert normalize_text(s) == "abcdefg"


@pytest.mark.parametrize("space", ["\u00a0", "\u2002", "\u2009", HAIR, "\u202f", "\u205f"])
def test_latin_spaces_become_ordinary_spaces(space: str) -> None:
    assert normalize_text(f"10{space}km") == "10 km"


def test_ideographic_space_and_chinese_punctuation_are_kept() -> None:
    s = "子曰：\u3000“学而时习之，不亦说乎？”《论语》、！；"
    assert normalize_text(s) == s  # full-width quotes stay beside Chinese text


def test_collapses_whitespace_and_strips() -> None:
    assert normalize_text("  one \n\t two   three \r\n") == "one two three"


def test_empty_and_invisible_only_give_empty() -> None:
    assert normalize_text("") == ""
    assert normalize_text(f" {WJ}\u200b\u00a0 ") == ""


# --- the Time Machine's patterns ------------------------------------------------------


def test_word_joined_em_dash_gets_single_spaces() -> None:
    s = f"in this way{WJ}—marking the points with a lean forefinger{WJ}—as we sat"
    assert (
        normalize_text(s) == "in this way — marking the points with a lean forefinger — as we sat"
    )


def test_em_dash_before_closing_quote_has_no_trailing_space() -> None:
    s = f"“Of course a solid body may exist. All real things{WJ}—”"
    assert normalize_text(s) == '"Of course a solid body may exist. All real things —"'


def test_word_joined_hair_spaced_ellipsis() -> None:
    s = f"“that{WJ} {WJ}… very clear indeed.”"
    assert normalize_text(s) == '"that ... very clear indeed."'
    s2 = f"that{WJ}{HAIR}{WJ}… very"
    assert normalize_text(s2) == "that ... very"


def test_dash_then_word_joiner_before_abbreviation() -> None:
    assert normalize_text(f"a hill. —{WJ}Ed.") == "a hill. — Ed."


# --- quotes, dashes, ellipsis ---------------------------------------------------------


def test_curly_quotes_and_guillemets_become_ascii() -> None:
    assert normalize_text("‘a’ ‚b‛ “c” „d‟ «e» ‹f›") == "'a' 'b' \"c\" \"d\" \"e\" 'f'"
    assert normalize_text("Don’t") == "Don't"


def test_en_dash_between_digits_becomes_hyphen() -> None:
    assert normalize_text("the war of 1914–1918") == "the war of 1914-1918"
    assert normalize_text("pages 10–12") == "pages 10-12"


def test_en_dash_between_words_becomes_hyphen_and_spaced_en_dash_is_a_dash() -> None:
    assert normalize_text("the London–Paris train") == "the London-Paris train"
    assert normalize_text("wait – what?") == "wait — what?"


def test_em_dash_and_horizontal_bar_spacing() -> None:
    assert normalize_text("yes—no") == "yes — no"
    assert normalize_text("yes — no") == "yes — no"
    assert normalize_text("yes――no") == "yes — no"
    assert normalize_text("― Quote") == "— Quote"
    assert normalize_text("(—or not)") == "(— or not)"
    assert normalize_text("wait—.") == "wait —."


def test_ellipsis() -> None:
    assert normalize_text("and then…") == "and then..."


# --- footnote markers -----------------------------------------------------------------


def test_superscript_digits_removed() -> None:
    assert normalize_text("as shown¹ and again²³.") == "as shown and again."


def test_bracketed_number_after_word_removed_but_not_after_space() -> None:
    assert normalize_text("the claim[12] is old.[3]") == "the claim is old."
    assert normalize_text("see [12] for details") == "see [12] for details"


def test_glued_star_dagger_markers_removed() -> None:
    assert normalize_text("the word* and the end.† Then‡ more") == "the word and the end. Then more"


def test_asterisks_that_are_not_markers_are_kept() -> None:
    assert normalize_text("2*3 = 6 and a * b") == "2*3 = 6 and a * b"
    assert normalize_text("* a bullet") == "* a bullet"


def test_plain_text_emphasis_pair_unwrapped() -> None:
    assert normalize_text("an *instantaneous* cube") == "an instantaneous cube"


@pytest.mark.parametrize(
    "s",
    [
        f"way{WJ}—marking",
        "“Quoted…” she said—then left.",
        "x[1] y¹ z* 1914–1918",
        "子曰：“学而时习之”",
    ],
)
def test_idempotent(s: str) -> None:
    once = normalize_text(s)
    assert normalize_text(once) == once


# --- headings -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("title", "heading"),
    [
        ("I", "Chapter 1"),
        ("IV", "Chapter 4"),
        ("XII", "Chapter 12"),
        ("IV.", "Chapter 4"),
        ("12", "Chapter 12"),
        ("3.", "Chapter 3"),
        ("Chapter IV", "Chapter 4"),
        ("CHAPTER IV.", "Chapter 4"),
        ("chapter 7", "Chapter 7"),
        ("Chapter IV: The Sphinx", "Chapter 4: The Sphinx"),
        ("Chapter One: The Beginning", "Chapter 1: The Beginning"),
        ("Chapter Twenty-One", "Chapter 21"),
        ("Part II", "Part 2"),
        ("BOOK 3", "Book 3"),
        ("Epilogue", "Epilogue"),
        ("Scalars", "Scalars"),
        ("MIX", "MIX"),
        ("Chapter Ivy", "Chapter Ivy"),
        ("Matrix--Vector Products", "Matrix--Vector Products"),
    ],
)
def test_chapter_heading(title: str, heading: str) -> None:
    assert chapter_heading(title) == heading


def test_chapter_heading_normalises_the_title_text() -> None:
    assert chapter_heading(f"  Chapter{WJ} IV:   The “Sphinx” ") == 'Chapter 4: The "Sphinx"'


@pytest.mark.parametrize(
    ("s", "value"),
    [("I", 1), ("iv", 4), ("XLII", 42), ("MCMXC", 1990), ("IIII", None), ("IC", None), ("", None)],
)
def test_roman_to_int(s: str, value: int | None) -> None:
    assert roman_to_int(s) == value


@pytest.mark.parametrize(
    ("s", "value"), [("7", 7), ("VII", 7), ("seven", 7), ("Forty-two", 42), ("lots", None)]
)
def test_parse_number(s: str, value: int | None) -> None:
    assert parse_number(s) == value


@pytest.mark.parametrize(
    "s",
    [
        " " * 1_000_000 + "x—",
        "*a " * 100_000,
        "a—" * 100_000,
        "x[1" * 100_000,
        "word\u2060—\u200a…[12]¹*† " * 30_000,
    ],
)
def test_linear_time_on_hostile_input(s: str) -> None:
    start = time.perf_counter()
    normalize_text(s)
    assert time.perf_counter() - start < 1.5


def test_formulas_keep_what_the_prose_rules_would_take_out() -> None:
    text = "See \\(x[1] + y^2 % a comment\n + z'\\) here[2], and $a[3]$ too."
    assert normalize_text(text) == "See \\(x[1] + y^2 + z'\\) here, and $a[3]$ too."
