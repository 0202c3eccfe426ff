"""Tests for renderer.caption_check: checking any caption file against a caption profile,
reading WebVTT and SubRip (and refusing malformed files), and the tally of a render."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

import pytest
import srt

from narrate.errors import InputError
from renderer.caption_check import (
    CaptionTally,
    check_cues,
    parse_captions,
    read_caption_file,
    report_lines,
    timestamp,
)
from renderer.caption_profiles import BROADCAST, CHILDREN, STANDARD
from renderer.captions import Cue, build_cues, rules_for, to_srt, to_vtt
from tests.renderer.test_captions import random_chapter

# A foreign file: each cue but the last breaks one rule of the standard profile.
FOREIGN_VTT = """WEBVTT

NOTE made by hand, one broken rule a cue

1
00:00:01.000 --> 00:00:05.000
This line is much longer than forty-two characters, really.

2
00:00:05.100 --> 00:00:09.000
One
Two
Three

3
00:00:09.100 --> 00:00:10.100
Far too many words to read in one second.

4
00:00:10.200 --> 00:00:10.700
Short.

5
00:00:10.800 --> 00:00:19.000
Long enough, on screen for far too long.

6
00:00:19.100 --> 00:00:21.000
Right before the next one.

7
00:00:21.040 --> 00:00:23.500 align:start
Overlapping the next cue.

8
00:00:23.000 --> 00:00:26.000
He walked slowly into the
room and sat down by a

9
00:00:26.100 --> 00:00:28.000
<v Narrator>All is <i>&amp;</i> well.</v>
"""

EXPECTED = [
    (1, "line_chars", 59, "at most 42 chars"),
    (2, "lines", 3, "at most 2 lines"),
    (3, "chars_per_s", 41.0, "at most 17 chars/s"),
    (4, "min_duration", 500, "at least 833 ms"),
    (5, "max_duration", 8200, "at most 7000 ms"),
    (6, "gap", 40, "at least 83 ms"),
    (7, "overlap", 500, "at most 0 ms"),
    (8, "article_break", "the, a", "never"),
]


def as_srt(vtt: str) -> str:
    """The same cues as SubRip."""
    _, cues = parse_captions(vtt)
    composed: str = srt.compose(
        [
            srt.Subtitle(
                n, timedelta(milliseconds=c.start_ms), timedelta(milliseconds=c.end_ms), c.text
            )
            for n, c in enumerate(cues, start=1)
        ]
    )
    return composed


@pytest.mark.parametrize("fmt", ["vtt", "srt"])
def test_every_broken_rule_of_a_foreign_file_is_listed_cue_by_cue(fmt: str) -> None:
    content = FOREIGN_VTT if fmt == "vtt" else as_srt(FOREIGN_VTT)
    found, cues = parse_captions(content)
    assert found == fmt
    report = check_cues(cues, STANDARD)
    assert report.cues == 9
    assert not report.passed
    assert [(v.cue, v.rule, v.measured, v.limit_text) for v in report.violations] == EXPECTED
    assert report.failing_cues == 8
    eighth = report.violations[-1]
    assert (eighth.start_ms, eighth.end_ms) == (23_000, 26_000)
    assert eighth.lines == ("He walked slowly into the", "room and sat down by a")


def test_vtt_markup_is_not_counted_and_references_count_as_one() -> None:
    _, cues = parse_captions(FOREIGN_VTT)
    assert cues[-1].lines == ("All is & well.",)
    assert cues[6].lines == ("Overlapping the next cue.",)  # cue settings are not text


def test_report_text_and_json_name_cue_time_text_measure_and_limit() -> None:
    report = check_cues(parse_captions(FOREIGN_VTT)[1], STANDARD)
    lines = report_lines("foreign.vtt", report)
    assert lines[0].startswith("foreign.vtt: FAILS standard: 8 of 9 cues break a rule")
    third = lines[3]
    assert "cue 3" in third and "00:00:09.100 --> 00:00:10.100" in third
    assert "41 chars/s" in third and "at most 17 chars/s" in third
    assert "Far too many words" in third
    payload = report.as_json()
    assert payload["passed"] is False and payload["cues"] == 9
    assert payload["counts"] == {rule: 1 for _, rule, _, _ in EXPECTED}
    first = payload["violations"][0]  # type: ignore[index]
    assert first["cue"] == 1 and first["start"] == "00:00:01.000"
    assert first["measured"] == 59 and first["limit"] == "at most 42 chars"


def test_a_file_within_every_rule_passes() -> None:
    content = "WEBVTT\n\n00:00:01.000 --> 00:00:03.000\nA short line.\n"
    report = check_cues(parse_captions(content)[1], STANDARD)
    assert report.passed and report.cues == 1
    assert report_lines("ok.vtt", report) == ["ok.vtt: passes standard (1 cues)"]


def test_profiles_set_the_limits() -> None:
    # 30 characters in 2 s: 15 characters/s; a 40-character line
    content = "1\n00:00:01,000 --> 00:00:03,000\nFifteen characters a second..\n\n"
    content += "2\n00:00:04,000 --> 00:00:08,000\nThis line has forty characters in it ok.\n"
    cues = parse_captions(content)[1]
    assert check_cues(cues, STANDARD).passed
    assert [v.rule for v in check_cues(cues, CHILDREN).violations] == ["chars_per_s"]
    assert [v.rule for v in check_cues(cues, BROADCAST).violations] == ["line_chars"]


def test_chinese_captions_are_held_to_16_characters_a_line_and_9_a_second() -> None:
    # 18 characters in 3 s (6 a second) on one line; then 16 characters in 1.5 s (10.7/s)
    content = "WEBVTT\n\n00:00:01.000 --> 00:00:04.000\n子曰学而时习之不亦说乎有朋自远方来矣\n\n"
    content += "00:00:05.000 --> 00:00:06.500\n人不知而不愠不亦君子乎有子曰其为\n"
    cues = parse_captions(content)[1]
    found = [(v.cue, v.rule) for v in check_cues(cues, STANDARD).violations]
    assert found == [(1, "line_chars"), (2, "chars_per_s")]
    assert [v.limit for v in check_cues(cues, STANDARD).violations] == [16, 9.0]
    assert [v.limit for v in check_cues(cues, CHILDREN).violations] == [16, 7.0]


def test_empty_cue_and_cues_out_of_order() -> None:
    content = "1\n00:00:05,000 --> 00:00:07,000\n\n\n2\n00:00:01,000 --> 00:00:03,000\nBack.\n"
    report = check_cues(parse_captions(content)[1], STANDARD)
    assert [(v.cue, v.rule) for v in report.violations] == [(1, "empty"), (1, "overlap")]


# --- malformed files -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("a.srt", b"", "is empty"),
        ("a.vtt", b"  \n\n", "is empty"),
        ("a.vtt", b"1\n00:00:01,000 --> 00:00:02,000\nhi\n", "does not start with WEBVTT"),
        ("a.srt", b"just some text\n", "line 1"),
        ("a.txt", b"just some text\n", "neither WebVTT nor SubRip"),
        (
            "a.srt",
            b"1\n00:00:01,000 --> 00:00:02,000\nhi\n\n2\n00:00:03,000 -> 00:00:04,000\nyo\n",
            "line 5",
        ),
        ("a.vtt", b"WEBVTT\n\n00:00:01.000 --> soon\nhi\n", "line 3"),
        ("a.vtt", b"WEBVTTX\n\n00:00:01.000 --> 00:00:02.000\nhi\n", "does not start"),
        ("a.srt", b"1\n00:00:01,000 --> 00:00:02,000\n\xe9t\xe9\n", "not UTF-8"),
    ],
)
def test_malformed_files_are_refused_with_what_is_wrong(
    tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputError) as caught:
        read_caption_file(path)
    assert caught.value.exit_code == 2
    assert message in str(caught.value), str(caught.value)


def test_a_missing_file_or_a_folder_is_refused(tmp_path: Path) -> None:
    for path in (tmp_path / "missing.vtt", tmp_path):
        with pytest.raises(InputError) as caught:
            read_caption_file(path)
        assert caught.value.exit_code == 2 and "does not exist" in str(caught.value)


def test_byte_order_mark_and_windows_line_ends_are_read(tmp_path: Path) -> None:
    path = tmp_path / "bom.srt"
    path.write_bytes("\ufeff1\r\n00:00:01,000 --> 00:00:03,000\r\nCafé au lait.\r\n".encode())
    fmt, cues = read_caption_file(path)
    assert fmt == "srt" and cues == [Cue(1000, 3000, ("Café au lait.",))]


# --- our own files ---------------------------------------------------------------------------


def test_our_files_read_back_as_the_cues_written() -> None:
    rng = random.Random(7)
    for _ in range(20):
        text, words = random_chapter(rng)
        cues = build_cues(text, words)
        assert parse_captions(to_vtt(cues))[1] == cues
        if cues:  # an empty SubRip file is no caption file
            assert parse_captions(to_srt(cues))[1] == cues
    cues = [Cue(0, 1000, ("a < b & c > d",)), Cue(1200, 2500, ("x --> y",))]
    assert parse_captions(to_vtt(cues))[1] == cues


@pytest.mark.parametrize("seed", range(40))
def test_the_tally_finds_what_the_check_finds(seed: int) -> None:
    rng = random.Random(seed)
    text, words = random_chapter(rng)
    profile = rng.choice([STANDARD, CHILDREN, BROADCAST])
    tally = CaptionTally(profile)
    cues = build_cues(text, words, rules_for(text, profile), sink=tally)
    report = check_cues(cues, profile)
    assert tally.cues == report.cues == len(cues)
    assert {w.rule: w.cues for w in tally.warnings()} == report.counts()
    for warning in tally.warnings():
        assert warning.worst in report.violations


def test_a_warning_says_how_many_why_and_the_worst_cue() -> None:
    tally = CaptionTally(STANDARD)
    for cue in [
        Cue(0, 2000, ("Twenty characters ok",)),
        Cue(2100, 3100, ("Twenty-five characters...",)),
        Cue(3200, 4200, ("Thirty characters, just to see",)),
    ]:
        tally.add(cue)
    (warning,) = tally.warnings()
    assert (warning.rule, warning.cues, warning.total) == ("chars_per_s", 2, 3)
    assert warning.worst.cue == 3 and warning.worst.measured == 30.0
    assert warning.message.startswith("2 of 3 cues read faster than 17 chars/s")
    assert "slower --rate" in warning.message
    assert "worst 30 chars/s, cue 3 at 00:00:03.200 “Thirty characters, just to see”" in (
        warning.message
    )


def test_timestamps() -> None:
    assert timestamp(3_723_004) == "01:02:03.004"
    assert timestamp(-5) == "-00:00:00.005"
