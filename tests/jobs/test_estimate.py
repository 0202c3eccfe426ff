"""What a render would take before it runs: prices for an engine that bills, the least
time its provider's limit allows, audio and CPU time for an engine that runs here."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from jobs.costs import ChapterCost, EditCost
from jobs.estimate import estimate, local_time, pace_for
from jobs.render import RenderRequest
from jobs.throttle import RateLimit
from narrate.errors import UsageError
from narrate.settings import Settings
from renderer.engines import engine_spec
from renderer.stitch import AudioFormat

STORY = "# One\n\nThe keeper climbed the stairs.\n\n# Two\n\n灯塔守护者。 The light went out.\n"


def settings(tmp_path: Path, **env: str) -> Settings:
    return Settings.from_env({"NARRATE_HOME": str(tmp_path / "home"), **env})


def cost(characters: list[int], new: list[int]) -> EditCost:
    rows = tuple(
        ChapterCost(i + 1, f"C{i + 1}", 2, int(n > 0), c, n, None, None)
        for i, (c, n) in enumerate(zip(characters, new, strict=True))
    )
    return EditCost(
        segments=2 * len(rows),
        segments_new=sum(r.segments_new for r in rows),
        characters=sum(characters),
        characters_new=sum(new),
        billed_characters=None,
        billed_characters_new=None,
        chapters=len(rows),
        chapters_changed=sum(n > 0 for n in new),
        per_chapter=rows,
    )


def test_the_least_time_is_the_requests_at_the_limit_plus_the_margin() -> None:
    pace = pace_for(300, RateLimit(requests=3, margin_ms=100))
    assert pace.requests_per_s == 3.0
    assert pace.min_s == pytest.approx(100.0)
    assert pace.min_paced_s == pytest.approx(110.0)  # 100 windows of 1.1 s


def test_local_time_follows_the_measured_pace_rate_and_processes() -> None:
    spec = engine_spec("espeak")
    assert spec.chars_per_audio_s and spec.cpu_s_per_audio_s
    plan = cost([1500, 500], [0, 500])
    at_one = local_time(plan, spec, rate=1.0, workers=2)
    assert at_one.audio_s == pytest.approx(2000 / spec.chars_per_audio_s)
    assert at_one.cpu_s == pytest.approx(at_one.audio_s * spec.cpu_s_per_audio_s)
    mp3 = AudioFormat()
    assert at_one.stitch_cpu_s == pytest.approx(at_one.audio_s * mp3.stitch_cpu_s_per_audio_s())
    assert at_one.book_s == 0
    assert at_one.wall_s == pytest.approx((at_one.cpu_s + at_one.stitch_cpu_s) / 2)
    assert at_one.new_audio_s == pytest.approx(500 / spec.chars_per_audio_s)
    assert [c.audio_s for c in at_one.chapters] == [
        round(1500 / spec.chars_per_audio_s, 1),
        round(500 / spec.chars_per_audio_s, 1),
    ]
    faster = local_time(plan, spec, rate=2.0, workers=16)
    assert faster.audio_s == pytest.approx(at_one.audio_s / 2)
    assert faster.processes == 4  # never more processes than segments
    # 44.1 kHz costs more to make than the engine's 22.05 kHz; an m4b's book encode comes
    # after its chapters, on one core
    hifi = local_time(plan, spec, 1.0, 2, AudioFormat("mp3", 44100, 192))
    assert 1.4 < hifi.stitch_cpu_s / at_one.stitch_cpu_s < 1.6
    book = local_time(plan, spec, 1.0, 2, AudioFormat("m4b"))
    assert book.book_s > 0
    assert book.wall_s == pytest.approx((book.cpu_s + book.stitch_cpu_s) / 2 + book.book_s)


def test_an_engine_without_a_measured_pace_is_refused() -> None:
    spec = replace(engine_spec("stub"), chars_per_audio_s=None)
    with pytest.raises(UsageError, match="no measured pace"):
        local_time(cost([10], [10]), spec, rate=1.0, workers=1)


def test_a_billed_engine_is_priced_from_its_own_count_without_a_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DASHSCOPE_API_KEY", raising=False)
    story = tmp_path / "story.md"
    story.write_text(STORY, encoding="utf-8")
    prices = tmp_path / "prices.json"
    prices.write_text('{"currency": "USD", "per_10k_chars": {"cosyvoice-v3-flash": 2.5}}')
    found = estimate(
        RenderRequest(story, "cosyvoice", model="cosyvoice-v3-flash"), settings(tmp_path), prices
    )
    assert found.time is None and found.pricing is not None and found.pace is not None
    billed = found.cost.billed_characters
    assert billed is not None and billed > found.cost.characters  # a Han character counts 2
    assert found.pricing.price_list.currency == "USD"
    assert found.pricing.price == (Decimal("2.5") * billed / 10_000).quantize(Decimal("0.0001"))
    assert found.pricing.price_new == found.pricing.price  # nothing rendered yet
    assert found.pace.min_s == pytest.approx(found.cost.segments / 3)


def test_a_local_engine_is_timed_not_priced(tmp_path: Path) -> None:
    story = tmp_path / "story.md"
    story.write_text(STORY, encoding="utf-8")
    found = estimate(RenderRequest(story, "espeak", rate=1.5), settings(tmp_path))
    assert found.pricing is None and found.pace is None and found.time is not None
    assert [c.index for c in found.time.chapters] == [1, 2]
    spec = engine_spec("espeak")
    assert spec.chars_per_audio_s is not None
    assert found.time.audio_s == pytest.approx(found.cost.characters / spec.chars_per_audio_s / 1.5)
