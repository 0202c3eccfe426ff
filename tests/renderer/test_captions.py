"""Tests for renderer.captions: cue building, line breaking, timing and SRT/WebVTT output."""

from __future__ import annotations

import io
import math
import random
import re
from dataclasses import replace
from itertools import pairwise

import pytest
import srt
import webvtt

from renderer.caption_profiles import BROADCAST, CHILDREN, STANDARD
from renderer.captions import Cue, CueRules, build_cues, is_glue_word, rules_for, to_srt, to_vtt
from renderer.timing import TimedWord

RULES = CueRules()


def timed(text: str, duration: int = 300, gap: int = 80, start: int = 0) -> list[TimedWord]:
    """Whitespace-separated words of ``text`` spoken back to back at a steady pace."""
    words = []
    at = start
    for match in re.finditer(r"\S+", text):
        words.append(TimedWord(match.group(), match.start(), match.end(), at, at + duration))
        at += duration + gap
    return words


def timed_chars(text: str, duration: int = 200, gap: int = 20) -> list[TimedWord]:
    """One timed word per non-space character (as a CJK engine would mark them)."""
    words = []
    at = 0
    for index, char in enumerate(text):
        if not char.isspace():
            words.append(TimedWord(char, index, index + 1, at, at + duration))
            at += duration + gap
    return words


def assign_words(cues: list[Cue], words: list[TimedWord]) -> list[list[TimedWord]]:
    """The input words each cue shows (space-separated words, none longer than a line)."""
    groups = []
    position = 0
    for cue in cues:
        count = len(" ".join(cue.lines).split())
        groups.append(words[position : position + count])
        position += count
    assert position == len(words)
    return groups


def check_invariants(cues: list[Cue], rules: CueRules = RULES) -> None:
    """Layout and ordering rules every cue list must satisfy."""
    for cue in cues:
        assert 1 <= len(cue.lines) <= rules.max_lines
        assert all(0 < len(line) <= rules.max_line_chars for line in cue.lines)
        assert all(line == line.strip() and "\n" not in line for line in cue.lines)
        assert cue.start_ms < cue.end_ms
    for first, second in pairwise(cues):
        assert first.end_ms <= second.start_ms


class ListSink:
    """A cue sink that keeps what it sees."""

    def __init__(self, seen: list[Cue]) -> None:
        self.seen = seen

    def add(self, cue: Cue) -> None:
        self.seen.append(cue)


def paragraph_of(text: str, word: TimedWord) -> int:
    return len(re.findall(r"\n\s*\n", text[: word.char_start]))


# --- cue building ---------------------------------------------------------------------------


def test_empty_word_list_gives_no_cues() -> None:
    assert build_cues("", []) == []
    assert build_cues("some text", []) == []
    assert to_srt([]) == ""
    assert to_vtt([]).startswith("WEBVTT")


def test_cue_text_property_joins_lines() -> None:
    assert Cue(0, 1000, ("one", "two")).text == "one\ntwo"


def test_sentence_ends_split_when_pause_is_long() -> None:
    text = "The door opened. Nobody came in! Was it the wind?"
    words = timed(text)
    words[3] = TimedWord(words[3].text, words[3].char_start, words[3].char_end, 5000, 5300)
    words[4:] = [
        TimedWord(w.text, w.char_start, w.char_end, w.start_ms + 4000, w.end_ms + 4000)
        for w in words[4:]
    ]
    words[6:] = [
        TimedWord(w.text, w.char_start, w.char_end, w.start_ms + 4000, w.end_ms + 4000)
        for w in words[6:]
    ]
    cues = build_cues(text, words)
    assert [cue.text for cue in cues] == ["The door opened.", "Nobody came in!", "Was it the wind?"]


def test_short_sentences_share_a_cue_when_pause_is_short() -> None:
    text = "Yes. No. Maybe so."
    cues = build_cues(text, timed(text))
    assert [cue.text for cue in cues] == ["Yes. No. Maybe so."]


def test_sentence_is_never_joined_with_part_of_the_next() -> None:
    first = "It was late."
    second = "The rain kept falling on the roofs of the town for hours and hours and hours, "
    second += "until the streets were rivers and nobody could remember a dry day."
    text = f"{first} {second}"
    cues = build_cues(text, timed(text))
    assert cues[0].text == first
    assert all(first not in cue.text for cue in cues[1:])


def test_long_sentence_splits_at_a_comma() -> None:
    text = (
        "The old lighthouse keeper climbed the spiral stairs every evening, "
        "lighting the great lamp that guided the fishing boats safely home."
    )
    cues = build_cues(text, timed(text, duration=350, gap=100))  # 14 characters/s
    assert len(cues) == 2
    assert cues[0].text.replace("\n", " ").endswith("every evening,")
    assert cues[1].text.replace("\n", " ").startswith("lighting")
    check_invariants(cues)


def test_long_sentence_without_punctuation_splits_evenly_at_words() -> None:
    text = " ".join(["word"] * 40)  # 199 characters: three cues
    cues = build_cues(text, timed(text, duration=300, gap=20))  # 15.5 characters/s
    sizes = [len(cue.text) for cue in cues]
    assert len(cues) == 3
    assert max(sizes) - min(sizes) <= 10
    check_invariants(cues)


def test_long_duration_sentence_splits_under_max_duration() -> None:
    text = "Slowly, very slowly, the heavy door began to open."
    words = timed(text, duration=900, gap=300)  # 9 words, about 10.5 s
    cues = build_cues(text, words)
    assert len(cues) >= 2
    assert cues[0].text == "Slowly, very slowly,"
    for cue, group in zip(cues, assign_words(cues, words), strict=True):
        assert cue.end_ms - cue.start_ms <= RULES.max_duration_ms
        assert cue.start_ms == group[0].start_ms


def test_paragraph_boundary_is_never_inside_a_cue() -> None:
    text = "Short one\n\nshort two\n\nThree"
    words = timed(text)
    cues = build_cues(text, words)
    assert [cue.text for cue in cues] == ["Short one", "short two", "Three"]


def test_every_word_appears_in_order() -> None:
    text = (
        "“Are you coming?” she asked. He shrugged; it was not his decision — "
        "not tonight, anyway.\n\nMorning came. The others had gone, leaving only footprints."
    )
    words = timed(text)
    cues = build_cues(text, words)
    assert " ".join(" ".join(cue.lines) for cue in cues).split() == text.split()
    check_invariants(cues)


def test_cue_text_comes_from_word_texts_not_raw_text() -> None:
    text = "first line\nsecond   line"
    words = timed(text)
    assert [cue.lines for cue in build_cues(text, words)] == [("first line second line",)]


def test_blank_words_are_skipped() -> None:
    text = "a b"
    words = [
        TimedWord("a", 0, 1, 0, 300),
        TimedWord(" ", 1, 2, 300, 350),
        TimedWord("b", 2, 3, 400, 700),
    ]
    assert [cue.text for cue in build_cues(text, words)] == ["a b"]


def test_abbreviation_is_not_a_sentence_end() -> None:
    text = "Dr. Watson and Mr. Holmes walked along Baker Street in the fog."
    words = timed(text)
    words[1:] = [
        TimedWord(w.text, w.char_start, w.char_end, w.start_ms + 2000, w.end_ms + 2000)
        for w in words[1:]
    ]  # a long pause after "Dr." must not split the cue
    cues = build_cues(text, words)
    assert len(cues) == 1


def test_punctuation_outside_word_span_still_counts() -> None:
    text = "Stop. Go now"
    words = [TimedWord("Stop", 0, 4, 0, 300), TimedWord("Go", 6, 8, 3000, 3300)]
    words.append(TimedWord("now", 9, 12, 3400, 3700))
    assert [cue.text for cue in build_cues(text, words)] == ["Stop", "Go now"]


# --- line breaking ----------------------------------------------------------------------


def test_one_line_when_it_fits() -> None:
    text = "This line is exactly forty-two characters."
    assert len(text) == 42
    assert build_cues(text, timed(text))[0].lines == (text,)


def test_line_break_prefers_punctuation() -> None:
    text = "When the bell rang at noon, everyone in the village came running."
    cues = build_cues(text, timed(text))
    assert cues[0].lines == ("When the bell rang at noon,", "everyone in the village came running.")


def test_line_break_balances_without_punctuation() -> None:
    text = "the quick brown fox jumps over the lazy dog and runs far away"
    lines = build_cues(text, timed(text))[0].lines
    assert len(lines) == 2
    assert abs(len(lines[0]) - len(lines[1])) <= 6


def test_over_long_word_is_hard_split() -> None:
    long_word = "a" * 100
    text = f"see {long_word} here"
    words = timed(text, duration=600)
    cues = build_cues(text, words)
    check_invariants(cues)
    assert (
        "".join("".join(cue.lines) for cue in cues).replace(" ", "") == "see" + long_word + "here"
    )
    assert max(len(line) for cue in cues for line in cue.lines) <= 42


def test_custom_rules_are_respected() -> None:
    rules = CueRules(max_line_chars=20, max_lines=1, max_duration_ms=3000)
    text = "One sentence that is rather long, with a clause or two, and more words at the end."
    cues = build_cues(text, timed(text), rules)
    check_invariants(cues, rules)
    assert " ".join(cue.text for cue in cues).split() == text.split()


def test_invalid_rules_are_rejected() -> None:
    with pytest.raises(ValueError):
        CueRules(max_line_chars=0)
    with pytest.raises(ValueError):
        CueRules(min_duration_ms=8000, max_duration_ms=7000)


# --- Chinese ---------------------------------------------------------------------------------


def test_chinese_text_joins_without_spaces_and_splits_at_sentence_ends() -> None:
    text = "今天天气很好，我们去公园散步吧。你觉得怎么样？\n\n好的。"
    words = timed_chars(text)
    words[15:] = [  # long pause after the first sentence
        TimedWord(w.text, w.char_start, w.char_end, w.start_ms + 2000, w.end_ms + 2000)
        for w in words[15:]
    ]
    cues = build_cues(text, words)
    assert [cue.text for cue in cues] == [
        "今天天气很好，我们去公园散步吧。",
        "你觉得怎么样？",
        "好的。",
    ]


def test_chinese_long_sentence_splits_at_chinese_comma() -> None:
    rules = CueRules(max_line_chars=16)
    text = "我们沿着河边慢慢地走了很久，看着夕阳一点一点地落下山去，直到天完全黑了才回家。"
    cues = build_cues(text, timed_chars(text), rules)
    check_invariants(cues, rules)
    assert "".join(cue.text.replace("\n", "") for cue in cues) == text
    assert all(cue.lines[-1][-1] in "，。" for cue in cues), [cue.text for cue in cues]


def test_chinese_mixed_with_latin_keeps_spaces_around_latin() -> None:
    text = "我喜欢 Python 语言。"
    words = [
        TimedWord("我", 0, 1, 0, 200),
        TimedWord("喜", 1, 2, 200, 400),
        TimedWord("欢", 2, 3, 400, 600),
        TimedWord("Python", 4, 10, 600, 1000),
        TimedWord("语", 11, 12, 1000, 1200),
        TimedWord("言。", 12, 14, 1200, 1400),
    ]
    assert build_cues(text, words)[0].text == "我喜欢 Python 语言。"


# --- timing ----------------------------------------------------------------------------------


def test_short_cue_extends_into_silence_but_keeps_gap() -> None:
    text = "Hi.\n\nThere you are."
    words = [
        TimedWord("Hi.", 0, 3, 1000, 1200),
        TimedWord("There", 5, 10, 1600, 1900),
        TimedWord("you", 11, 14, 1950, 2100),
        TimedWord("are.", 15, 19, 2150, 2400),
    ]
    first, second = build_cues(text, words)
    assert first.start_ms == 1000
    assert first.end_ms == 1600 - RULES.min_gap_ms
    assert second.start_ms == 1600
    assert second.end_ms == 1600 + RULES.min_duration_ms


def test_short_cue_extends_to_min_duration_when_silence_allows() -> None:
    text = "Hi.\n\nThere."
    words = [TimedWord("Hi.", 0, 3, 0, 200), TimedWord("There.", 5, 11, 3000, 3300)]
    first, second = build_cues(text, words)
    assert (first.start_ms, first.end_ms) == (0, RULES.min_duration_ms)
    assert (second.start_ms, second.end_ms) == (3000, 3000 + RULES.min_duration_ms)


def test_back_to_back_speech_still_keeps_the_gap() -> None:
    text = "One.\n\nTwo."
    words = [TimedWord("One.", 0, 4, 0, 1000), TimedWord("Two.", 6, 10, 1000, 2000)]
    first, second = build_cues(text, words)
    assert (first.start_ms, first.end_ms) == (0, 1000 - RULES.min_gap_ms)
    assert second.start_ms == 1000  # never ahead of (nor behind) its speech


def test_overlapping_words_are_trimmed_with_a_gap() -> None:
    text = "One.\n\nTwo."
    words = [TimedWord("One.", 0, 4, 0, 1500), TimedWord("Two.", 6, 10, 1000, 2000)]
    first, second = build_cues(text, words)
    assert first.end_ms == 1000 - RULES.min_gap_ms
    assert second.start_ms == 1000


def test_single_word_longer_than_max_duration_keeps_its_length() -> None:
    text = "Ommmmmm. Yes."
    words = [TimedWord("Ommmmmm.", 0, 8, 0, 9000), TimedWord("Yes.", 9, 13, 9100, 9400)]
    cues = build_cues(text, words)
    assert [(cue.start_ms, cue.end_ms) for cue in cues[:1]] == [(0, 9000)]
    check_invariants(cues)


def test_degenerate_timings_still_give_ordered_cues() -> None:
    text = "A. B. C.\n\nD.\n\nE."
    words = [
        TimedWord("A.", 0, 2, 500, 500),
        TimedWord("B.", 3, 5, 500, 500),
        TimedWord("C.", 6, 8, 400, 450),
        TimedWord("D.", 10, 12, 400, 400),
        TimedWord("E.", 14, 16, 100, 50),
    ]
    cues = build_cues(text, words)
    assert len(cues) == 3
    check_invariants(cues)
    assert all(cue.start_ms >= 400 for cue in cues)


# --- reading speed and profiles ----------------------------------------------------------


def chars_per_s(cue: Cue) -> float:
    """Reading speed as the profiles count it: every character shown, over the duration."""
    return sum(map(len, cue.lines)) * 1000 / (cue.end_ms - cue.start_ms)


FAST = "Everything happened at once in the harbour."  # 43 characters, 2 lines: 42 shown


def test_fast_cue_is_held_into_the_silence_until_it_can_be_read() -> None:
    words = timed(FAST, duration=150, gap=20)  # 7 words in 1170 ms: 37 characters/s
    (cue,) = build_cues(FAST, words)
    assert cue.start_ms == words[0].start_ms  # never before the speech
    assert cue.end_ms == math.ceil(42 * 1000 / 17)  # just long enough for 17 characters/s
    assert chars_per_s(cue) <= 17


def test_children_profile_holds_cues_longer() -> None:
    words = timed(FAST, duration=300, gap=20)  # 20 characters/s
    (standard,) = build_cues(FAST, words, rules_for(FAST, STANDARD))
    (children,) = build_cues(FAST, words, rules_for(FAST, CHILDREN))
    assert children.end_ms == math.ceil(42 * 1000 / 13)
    assert chars_per_s(children) <= 13 < chars_per_s(standard) <= 17


def test_cue_never_lingers_more_than_one_and_a_half_seconds() -> None:
    words = timed(FAST, duration=50, gap=10)  # 410 ms of very fast speech
    seen: list[Cue] = []
    (cue,) = build_cues(FAST, words, sink=ListSink(seen))
    assert cue.end_ms == words[-1].end_ms + 1500
    assert chars_per_s(cue) > 17  # honest: in sync with the speech, too fast to read
    assert seen == [cue]


def test_held_cue_stops_a_gap_before_the_next_one() -> None:
    text = FAST + "\n\nThen silence."
    words = timed(FAST, duration=150, gap=20)
    then = words[-1].end_ms + 600
    words += [
        TimedWord("Then", 45, 49, then, then + 200),
        TimedWord("silence.", 50, 58, then + 250, then + 700),
    ]
    first, second = build_cues(text, words)
    assert first.end_ms == then - RULES.min_gap_ms
    assert second.start_ms == then


def test_no_cue_runs_past_the_end_of_the_audio() -> None:
    words = timed(FAST, duration=150, gap=20)
    (cue,) = build_cues(FAST, words, until_ms=words[-1].end_ms + 300)
    assert cue.end_ms == words[-1].end_ms + 300


def test_sentence_is_split_at_words_to_keep_the_reading_speed() -> None:
    text = (
        "When the tide turned at last, the fishermen hauled their nets aboard "
        "and waited for the wind to carry them home."
    )
    words = timed(text, duration=260, gap=10)  # 18 characters/s, and a pause after "aboard"
    pause = [word.text for word in words].index("aboard") + 1
    words[pause:] = [
        replace(w, start_ms=w.start_ms + 1000, end_ms=w.end_ms + 1000) for w in words[pause:]
    ]
    cues = build_cues(text, words)
    # cut at the comma, "When the tide turned at last," would read at 18 characters/s
    assert [cue.lines[-1].split()[-1] for cue in cues] == ["aboard", "home."]
    assert all(chars_per_s(cue) <= 17 for cue in cues), [chars_per_s(c) for c in cues]
    check_invariants(cues)


def test_speech_too_fast_for_any_layout_stays_in_sync() -> None:
    text = "Quick words spoken far too fast, one after another, with no pause at all between."
    words = timed(text, duration=100, gap=0)
    cues = build_cues(text, words)
    assert cues[0].start_ms == 0
    assert all(cue.end_ms <= words[-1].end_ms + 1500 for cue in cues)
    assert any(chars_per_s(cue) > 17 for cue in cues)
    check_invariants(cues)


def test_rules_follow_the_profile() -> None:
    rules = rules_for("Plain English text.", BROADCAST)
    assert (rules.max_line_chars, rules.max_chars_per_s, rules.min_gap_ms) == (37, 16.0, 80)
    assert CueRules() == rules_for("Plain English text.", STANDARD)


# --- articles ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "They looked out across the bay at the lights of the town in the distance.",
        "After supper we listened for an hour to Mr. Hillyer and his story.",
    ],
)
def test_a_line_never_ends_on_an_article(text: str) -> None:
    (cue,) = build_cues(text, timed(text, duration=300, gap=60))
    assert len(cue.lines) == 2  # balanced, these lines would end "at the" / "for an"
    assert not any(is_glue_word(line.split()[-1]) for line in cue.lines), cue.lines


def test_a_title_stays_with_its_name() -> None:
    text = "Yesterday we met Mr. Hillyer at the club."
    rules = CueRules(max_line_chars=20, max_lines=3)
    (cue,) = build_cues(text, timed(text), rules)
    assert cue.lines == ("Yesterday we", "met Mr. Hillyer", "at the club.")


def test_a_cue_is_not_cut_after_an_article() -> None:
    text = "It was the only thing that anyone in the whole village had ever seen of the sea."
    cues = build_cues(text, timed(text, duration=350, gap=100))
    assert len(cues) == 2
    assert not any(is_glue_word(line.split()[-1]) for cue in cues for line in cue.lines)


def test_an_article_with_a_word_longer_than_a_line_still_breaks() -> None:
    long_word = "b" * 45
    text = f"see the {long_word} here"
    cues = build_cues(text, timed(text, duration=600))
    check_invariants(cues)


@pytest.mark.parametrize(
    ("word", "glue"),
    [
        ("the", True),
        ("The", True),
        ("“The", True),
        ("an", True),
        ("a", True),
        ("A", False),
        ("the,", False),
        ("Mr.", True),
        ("Dr.", True),
        ("theory", False),
        ("her", False),
    ],
)
def test_glue_words(word: str, glue: bool) -> None:
    assert is_glue_word(word) is glue


# --- SRT and WebVTT ---------------------------------------------------------------------


SAMPLE = (
    "It was the best of times, it was the worst of times, it was the age of wisdom, "
    "it was the age of foolishness.\n\nShe smiled & said <nothing>. Then she left."
)


def test_srt_round_trip() -> None:
    cues = build_cues(SAMPLE, timed(SAMPLE, start=3_600_000))
    parsed = list(srt.parse(to_srt(cues)))
    assert len(parsed) == len(cues)
    for cue, subtitle in zip(cues, parsed, strict=True):
        assert subtitle.start.total_seconds() * 1000 == pytest.approx(cue.start_ms)
        assert subtitle.end.total_seconds() * 1000 == pytest.approx(cue.end_ms)
        assert subtitle.content == cue.text
    assert [subtitle.index for subtitle in parsed] == list(range(1, len(cues) + 1))


def test_vtt_round_trip() -> None:
    cues = build_cues(SAMPLE, timed(SAMPLE, start=3_600_000))
    content = to_vtt(cues)
    assert content.startswith("WEBVTT")
    parsed = webvtt.from_buffer(io.StringIO(content))
    assert len(parsed.captions) == len(cues)
    for cue, caption in zip(cues, parsed.captions, strict=True):
        assert caption.start_time.in_milliseconds() == cue.start_ms
        assert caption.end_time.in_milliseconds() == cue.end_ms
    assert "&amp;" in content and "&lt;nothing&gt;" in content


# --- property-style ------------------------------------------------------------------------


_CLOSING = ["", "", "", "", ",", ";", ":", ".", "!", "?", "…", ".”", "—"]
_CJK = "天地玄黄宇宙洪荒日月盈昃辰宿列张"
_LETTERS = "abcdehijkmnopquvwxyz"  # no f g l r s t: never spells "mr." "st." "gen." "cf." ...


def ends_sentence(word: TimedWord) -> bool:
    return bool(re.search(r"[.!?…。]”?$", word.text))


def random_chapter(rng: random.Random) -> tuple[str, list[TimedWord]]:
    """Random words with random punctuation, paragraph breaks, pauses and durations."""
    parts: list[str] = []
    words: list[TimedWord] = []
    position = 0
    at = rng.randint(0, 5000)
    for _ in range(rng.randint(1, 120)):
        if rng.random() < 0.1:
            word = "".join(rng.choices(_CJK, k=rng.randint(1, 3))) + rng.choice(["", "，", "。"])
        else:
            length = rng.choice([1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 20, 30, 42])
            word = "".join(rng.choices(_LETTERS, k=length))
            word += rng.choice(_CLOSING)
        separator = "" if not parts else rng.choice([" "] * 12 + ["\n\n", "\n", "  "])
        parts.append(separator + word)
        position += len(separator)
        at += rng.choice([0, 0, 20, 80, 150, 400, 1200, 1600, 3000])
        duration = rng.choice([1, 50, 200, 350, 600, 1000]) if rng.random() > 0.01 else 9000
        words.append(TimedWord(word, position, position + len(word), at, at + duration))
        position += len(word)
        at += duration
    return "".join(parts), words


def check_sentences(
    text: str, words: list[TimedWord], first: int, last: int, rules: CueRules
) -> None:
    """A cue holding a sentence end inside holds whole sentences separated by short pauses."""
    inner_ends = [i for i in range(first, last) if ends_sentence(words[i])]
    if not inner_ends:
        return
    for i in inner_ends:
        assert words[i + 1].start_ms - words[i].end_ms < rules.max_shared_pause_ms
    if first > 0 and paragraph_of(text, words[first - 1]) == paragraph_of(text, words[first]):
        assert ends_sentence(words[first - 1])
    next_in_paragraph = last + 1 < len(words) and paragraph_of(
        text, words[last + 1]
    ) == paragraph_of(text, words[last])
    assert ends_sentence(words[last]) or not next_in_paragraph


@pytest.mark.parametrize("seed", range(300))
def test_random_chapters_keep_every_invariant(seed: int) -> None:
    rng = random.Random(seed)
    text, words = random_chapter(rng)
    rules = rng.choice(
        [
            RULES,
            CueRules(
                max_line_chars=rng.randint(12, 50),
                max_lines=3,
                max_chars_per_s=rng.choice([13.0, 17.0, 25.0]),
                max_linger_ms=rng.choice([0, 500, 1500]),
            ),
        ]
    )
    cues = build_cues(text, words, rules)
    check_invariants(cues, rules)

    all_shown = "".join("".join(cue.lines) for cue in cues).replace(" ", "")
    assert all_shown == "".join(word.text for word in words)

    # Map each cue back to the words it shows, by character offsets without spaces.
    bounds = [0]
    for word in words:
        bounds.append(bounds[-1] + len(word.text))
    offset = 0
    for index, cue in enumerate(cues):
        end = offset + len("".join(cue.lines).replace(" ", ""))
        shown = [i for i, (a, b) in enumerate(pairwise(bounds)) if a < end and b > offset]
        first, last = words[shown[0]], words[shown[-1]]
        following = cues[index + 1].start_ms if index + 1 < len(cues) else None
        degenerate = cue.end_ms == cue.start_ms + 1
        if following is not None:  # the gap is kept unless the next cue starts at once
            assert following - cue.end_ms >= rules.min_gap_ms or degenerate
        # never more than max_linger_ms after the speech (beyond the shortest cue)
        assert cue.end_ms <= max(last.end_ms + rules.max_linger_ms, cue.start_ms + 1)
        if offset in bounds:  # the cue starts at a word, not inside a hard-split one
            assert cue.start_ms == first.start_ms
        if end in bounds:
            latest = min(
                last.end_ms + rules.max_linger_ms,
                max(cue.start_ms + rules.max_duration_ms, last.end_ms),
                *([] if following is None else [following - rules.min_gap_ms]),
            )
            assert cue.end_ms >= min(last.end_ms, latest) or degenerate
            duration = cue.end_ms - cue.start_ms
            chars = sum(map(len, cue.lines))
            if duration < rules.min_duration_ms or chars * 1000 > rules.max_chars_per_s * duration:
                # a cue too short or too fast to read has all the time it may have
                assert cue.end_ms == latest or degenerate
        assert paragraph_of(text, first) == paragraph_of(text, last)
        check_sentences(text, words, shown[0], shown[-1], rules)
        if len(shown) > 1:
            assert cue.end_ms - cue.start_ms <= rules.max_duration_ms
        offset = end
    assert offset == bounds[-1]


def test_rules_for_chinese_text_use_16_characters_a_line() -> None:
    assert rules_for("子曰：学而时习之，不亦说乎？").max_line_chars == 16
    assert rules_for("The Time Traveller (for so it will be convenient").max_line_chars == 42


def test_no_space_between_chinese_words_and_their_punctuation() -> None:
    """Words as an engine marks Chinese (punctuation glued to either side): shown without
    the spaces that separate English words, quotes included."""
    text = "子曰：“学而时习之，不亦说乎？”有朋自远方来。"
    pieces = ["子曰：“", "学而", "时习之，", "不亦", "说乎？”", "有朋", "自远方来。"]
    words, position, at = [], 0, 0
    for piece in pieces:
        start = text.index(piece, position)
        words.append(TimedWord(piece, start, start + len(piece), at, at + 400))
        position, at = start + len(piece), at + 450
    shown = "".join(line for cue in build_cues(text, words, rules_for(text)) for line in cue.lines)
    assert shown == text
    english = build_cues("He said “yes” and left.", timed("He said “yes” and left."), RULES)
    assert english[0].lines == ("He said “yes” and left.",)
