"""Tests for renderer.caption_profiles: the table of subtitle rules and its look-up."""

from __future__ import annotations

import pytest

from narrate.errors import UsageError
from renderer.caption_profiles import (
    BROADCAST,
    CAPTION_PROFILE_NAMES,
    CHILDREN,
    DEFAULT_CAPTION_PROFILE,
    STANDARD,
    CaptionProfile,
    caption_profile,
)
from renderer.captions import CueRules, rules_for


def limits(profile: CaptionProfile) -> tuple[object, ...]:
    return (
        profile.max_line_chars,
        profile.max_lines,
        profile.max_chars_per_s,
        profile.min_duration_ms,
        profile.max_duration_ms,
        profile.min_gap_ms,
        profile.max_linger_ms,
    )


def test_the_three_profiles_and_their_numbers() -> None:
    assert CAPTION_PROFILE_NAMES == ("standard", "children", "broadcast")
    assert DEFAULT_CAPTION_PROFILE == "standard"
    # 42 characters x 2 lines, 17 characters/s, 5/6 s to 7 s, 2 frames apart, <= 1.5 s late
    assert limits(STANDARD) == (42, 2, 17.0, 833, 7000, 83, 1500)
    assert limits(CHILDREN) == (42, 2, 13.0, 833, 7000, 83, 1500)
    # BBC: 68% of a 16:9 line (37 characters), 160-180 words a minute, 2 frames at 25 fps
    assert limits(BROADCAST) == (37, 2, 16.0, 833, 7000, 80, 1500)


def test_profiles_are_found_by_name() -> None:
    for name in CAPTION_PROFILE_NAMES:
        assert caption_profile(name).name == name


def test_an_unknown_profile_says_which_exist() -> None:
    with pytest.raises(UsageError) as caught:
        caption_profile("teletext")
    assert caught.value.exit_code == 2
    assert "teletext" in str(caught.value)
    assert "standard, children, broadcast" in str(caught.value)


@pytest.mark.parametrize(
    "changes",
    [
        {"max_line_chars": 0},
        {"max_chars_per_s": 0.0},
        {"min_duration_ms": 8000},
        {"min_gap_ms": -1},
        {"max_linger_ms": -1},
    ],
)
def test_impossible_limits_are_rejected(changes: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        CaptionProfile("bad", "bad", **changes)  # type: ignore[arg-type]


def test_cue_rules_carry_the_profile() -> None:
    rules = CueRules.of(CHILDREN)
    assert (rules.max_line_chars, rules.max_chars_per_s, rules.max_linger_ms) == (42, 13.0, 1500)
    assert CueRules() == CueRules.of(STANDARD)  # the builder's defaults are the standard


def test_cjk_text_narrows_lines_and_slows_reading_whatever_the_profile() -> None:
    for profile, cps in ((STANDARD, 9.0), (CHILDREN, 7.0), (BROADCAST, 9.0)):
        rules = rules_for("子曰：学而时习之，不亦说乎？", profile)
        assert (rules.max_line_chars, rules.max_chars_per_s) == (16, cps)
        assert rules_for("The Time Traveller (for so it", profile) == CueRules.of(profile)
    mixed = STANDARD.for_text("第一章 Chapter One: the keeper climbed the stairs")
    assert mixed == STANDARD  # mostly Latin letters: the profile as it is
