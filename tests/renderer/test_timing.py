"""Word timing: tokenising, mapping engine marks onto words, interpolation."""

from __future__ import annotations

import random

import pytest

from renderer.engine import WordMark
from renderer.timing import TimedWord, align_words, offset_words, tokenize


def words_of(text: str) -> list[str]:
    return [text[a:b] for a, b in tokenize(text)]


def check_invariants(text: str, words: list[TimedWord], duration_ms: int) -> None:
    spans = tokenize(text)
    assert [(w.char_start, w.char_end) for w in words] == spans
    assert all(w.text == text[w.char_start : w.char_end] for w in words)
    prev_end = 0
    for w in words:
        assert 0 <= w.start_ms <= w.end_ms <= duration_ms, w
        assert w.start_ms >= prev_end, (w, prev_end)
        prev_end = w.end_ms


# --- tokenize ---------------------------------------------------------------------


def test_tokenize_keeps_punctuation_attached() -> None:
    text = '  "Well," she said,\tlooking up.\n\nIt was—late. '
    assert words_of(text) == ['"Well,"', "she", "said,", "looking", "up.", "It", "was—late."]


def test_punctuation_only_runs_are_words() -> None:
    assert words_of("wait - no ... yes — maybe") == [
        "wait",
        "-",
        "no",
        "...",
        "yes",
        "—",
        "maybe",
    ]


def test_tokenize_empty_and_blank() -> None:
    assert tokenize("") == []
    assert tokenize(" \n\t ") == []


def test_cjk_characters_are_words_with_trailing_punctuation() -> None:
    assert words_of("你好，世界。") == ["你", "好，", "世", "界。"]
    assert words_of("“你好”他说。") == ["“你", "好”", "他", "说。"]
    assert words_of("Hello世界 ok") == ["Hello", "世", "界", "ok"]
    assert words_of("第3章") == ["第", "3", "章"]


def test_tokenize_spans_cover_all_non_blank_text() -> None:
    rng = random.Random(7)
    alphabet = "ab c,.—-你好 \n\t3'\"é"
    for _ in range(300):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        spans = tokenize(text)
        covered: set[int] = set()
        prev = 0
        for a, b in spans:
            assert prev <= a < b <= len(text)
            assert not any(ch.isspace() for ch in text[a:b])
            covered.update(range(a, b))
            prev = b
        assert covered == {i for i, ch in enumerate(text) if not ch.isspace()}


# --- align_words --------------------------------------------------------------------


def test_every_word_with_its_own_mark() -> None:
    text = "The quick brown fox."
    marks = [
        WordMark(0, 3, 0, 100),
        WordMark(4, 9, 110, 400),
        WordMark(10, 15, 400, 700),
        WordMark(16, 19, 700, 1000),
    ]
    words = align_words(text, marks, 1200)
    assert [(w.text, w.start_ms, w.end_ms) for w in words] == [
        ("The", 0, 100),
        ("quick", 110, 400),
        ("brown", 400, 700),
        ("fox.", 700, 1000),
    ]


def test_merged_function_words_are_interpolated() -> None:
    # espeak reports "on the village" as one event for "on" that spans "on the"
    text = "He sat on the wall today."
    marks = [
        WordMark(0, 2, 0, 100),
        WordMark(3, 6, 100, 400),
        WordMark(7, 9, 400, 650),  # "on", audio covers "on the"
        WordMark(14, 18, 650, 900),
        WordMark(19, 24, 900, 1300),
    ]
    words = align_words(text, marks, 1400)
    check_invariants(text, words, 1400)
    on, the = words[2], words[3]
    assert (on.text, the.text) == ("on", "the")
    assert on.start_ms == 400
    # [400, 650] shared 2:3 by letter count
    assert on.end_ms == the.start_ms == 500
    assert the.end_ms == 650
    assert words[4].start_ms == 650


def test_several_marks_inside_a_number_give_one_word() -> None:
    text = "It costs 3.50 dollars."
    marks = [
        WordMark(0, 2, 0, 120),
        WordMark(3, 8, 120, 400),
        WordMark(9, 13, 400, 600),
        WordMark(10, 13, 600, 800),
        WordMark(10, 13, 800, 1000),
        WordMark(10, 13, 1000, 1200),
        WordMark(14, 21, 1200, 1600),
    ]
    words = align_words(text, marks, 1700)
    assert [w.text for w in words] == ["It", "costs", "3.50", "dollars."]
    number = words[2]
    assert (number.start_ms, number.end_ms) == (400, 1200)
    assert words[3].start_ms == 1200


def test_no_marks_spreads_words_evenly_by_length() -> None:
    words = align_words("aa bb cc", [], 600)
    assert [(w.start_ms, w.end_ms) for w in words] == [(0, 200), (200, 400), (400, 600)]
    words = align_words("a bbb", [], 400)
    assert [(w.start_ms, w.end_ms) for w in words] == [(0, 100), (100, 400)]


def test_punctuation_only_word_gets_zero_length() -> None:
    text = "Wait — now"
    marks = [WordMark(0, 4, 0, 300), WordMark(7, 10, 500, 800)]
    words = align_words(text, marks, 900)
    assert [(w.text, w.start_ms, w.end_ms) for w in words] == [
        ("Wait", 0, 300),
        ("—", 300, 300),
        ("now", 500, 800),
    ]


def test_unmarked_leading_words_share_time_before_first_mark() -> None:
    text = "so then we left"
    marks = [WordMark(8, 10, 600, 700), WordMark(11, 15, 700, 1000)]
    words = align_words(text, marks, 1000)
    check_invariants(text, words, 1000)
    assert [(w.start_ms, w.end_ms) for w in words[:2]] == [(0, 200), (200, 600)]


def test_mark_starting_in_whitespace_anchors_next_word() -> None:
    words = align_words("one two", [WordMark(0, 3, 0, 200), WordMark(3, 7, 300, 500)], 600)
    assert [(w.start_ms, w.end_ms) for w in words] == [(0, 200), (300, 500)]


def test_marks_without_end_run_to_next_mark_or_audio_end() -> None:
    text = "one two three"
    marks = [WordMark(0, 3, 0), WordMark(4, 7, 250), WordMark(8, 13, 500)]
    words = align_words(text, marks, 900)
    assert [(w.start_ms, w.end_ms) for w in words] == [(0, 250), (250, 500), (500, 900)]


def test_mark_going_back_in_time_is_ignored() -> None:
    text = "one two three"
    marks = [WordMark(0, 3, 0, 200), WordMark(4, 7, 900, 1000), WordMark(8, 13, 300, 500)]
    words = align_words(text, marks, 1000)
    check_invariants(text, words, 1000)
    assert words[0].start_ms == 0 and words[1].start_ms == 900


def test_times_are_clamped_to_the_duration() -> None:
    words = align_words("a b", [WordMark(0, 1, -50, 100), WordMark(2, 3, 300, 5000)], 400)
    assert [(w.start_ms, w.end_ms) for w in words] == [(0, 100), (300, 400)]


def test_empty_text() -> None:
    assert align_words("", [WordMark(0, 1, 0, 10)], 10) == []
    assert align_words("   ", [], 10) == []


@pytest.mark.parametrize("seed", range(5))
def test_random_inputs_keep_invariants(seed: int) -> None:
    rng = random.Random(seed)
    vocab = ["the", "on", "3.50", "—", "said,", "你好", "x", "...", "café", "AT&T"]
    for _ in range(200):
        text = "".join(
            rng.choice(vocab) + rng.choice([" ", "  ", "\n", " \t"])
            for _ in range(rng.randint(0, 15))
        )
        duration = rng.randint(0, 5000)
        marks = []
        for _ in range(rng.randint(0, 20)):
            a = rng.randint(0, max(0, len(text) + 2))
            start = rng.randint(-100, duration + 100)
            end = None if rng.random() < 0.2 else start + rng.randint(-50, 800)
            marks.append(WordMark(a, a + rng.randint(0, 6), start, end))
        words = align_words(text, marks, duration)
        check_invariants(text, words, duration)


def test_realistic_marks_in_order_give_increasing_starts() -> None:
    rng = random.Random(3)
    for _ in range(100):
        text = " ".join(rng.choice(["a", "bb", "ccc", "dddd", "on", "the"]) for _ in range(20))
        spans = tokenize(text)
        t = 0
        marks = []
        for a, b in spans:
            if rng.random() < 0.7:  # some words merged away
                marks.append(WordMark(a, b, t, t + 50 * (b - a)))
            t += 60 * (b - a) + rng.randint(0, 100)
        words = align_words(text, marks, t)
        check_invariants(text, words, t)
        starts = [w.start_ms for w in words]
        assert starts == sorted(starts)
        for m in marks:
            w = next(w for w in words if w.char_start == m.char_start)
            assert w.start_ms == m.start_ms


# --- offset_words -------------------------------------------------------------------


def test_offset_words_moves_to_chapter_timeline() -> None:
    words = align_words("hello world", [], 1000)
    moved = offset_words(words, 100, 5000)
    assert [(w.text, w.char_start, w.char_end, w.start_ms, w.end_ms) for w in moved] == [
        ("hello", 100, 105, 5000, 5500),
        ("world", 106, 111, 5500, 6000),
    ]
    assert offset_words([], 3, 3) == []
