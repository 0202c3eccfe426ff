"""Bulletin schedules: slots in a time zone across both daylight-saving changes, each run
once even when two beats check at once (SQLite and PostgreSQL; injected clocks)."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from threading import Barrier

import pytest
from sqlalchemy import select

from jobs.db import Factory, transaction
from jobs.models import ScheduleRun
from jobs.schedules import add_schedule, claim_due, due_slots, remove_schedule
from narrate.errors import UsageError
from ssml.bulletin import parse_definition

UTC = dt.UTC


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        # the clocks go forward on Sunday 29 March 2026: 18:00 London is 17:00 UTC from then
        (
            "2026-03-27T12:00",
            ["2026-03-27T18:00", "2026-03-28T18:00", "2026-03-29T17:00", "2026-03-30T17:00"],
        ),
        # and back on Sunday 25 October 2026
        (
            "2026-10-23T12:00",
            ["2026-10-23T17:00", "2026-10-24T17:00", "2026-10-25T18:00", "2026-10-26T18:00"],
        ),
    ],
)
def test_one_run_per_local_day_across_daylight_saving(start: str, expected: list[str]) -> None:
    slots = due_slots(
        "0 18 * * *",
        "Europe/London",
        at(start),
        at(start) + dt.timedelta(days=4),
        dt.timedelta(days=9),
    )
    assert [s.at for s in slots] == [at(e) for e in expected]


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        # 01:30 does not exist on 29 March: it runs once, when the clocks have jumped (02:00 BST)
        ("2026-03-28T12:00", ["2026-03-29T01:00", "2026-03-30T00:30"]),
        # 01:30 happens twice on 25 October: it runs once, the first time (BST)
        ("2026-10-24T12:00", ["2026-10-25T00:30", "2026-10-26T01:30"]),
    ],
)
def test_times_the_change_skips_or_repeats_run_once(start: str, expected: list[str]) -> None:
    slots = due_slots(
        "30 1 * * *",
        "Europe/London",
        at(start),
        at(start) + dt.timedelta(days=2),
        dt.timedelta(days=9),
    )
    assert [s.at for s in slots] == [at(e) for e in expected]


def test_only_the_newest_slot_within_the_grace_runs() -> None:
    slots = due_slots("0 18 * * *", "UTC", at("2026-12-01T00:00"), at("2026-12-03T18:10"))
    assert [(s.at, s.run) for s in slots] == [
        (at("2026-12-01T18:00"), False),
        (at("2026-12-02T18:00"), False),
        (at("2026-12-03T18:00"), True),
    ]
    late = due_slots("0 18 * * *", "UTC", at("2026-12-03T00:00"), at("2026-12-03T18:20"))
    assert [s.run for s in late] == [False], "20 minutes late is past the 15-minute grace"


DEFINITION = """
name = "Evening"
timezone = "Europe/London"
schedule = "0 18 * * *"
[[feeds]]
url = "city.xml"
"""


def _runs(factory: Factory) -> list[tuple[int, str]]:
    with transaction(factory) as session:
        return [
            (r.slot_ms, r.status)
            for r in session.scalars(select(ScheduleRun).order_by(ScheduleRun.slot_ms))
        ]


def test_each_slot_is_claimed_once_by_overlapping_beats(factory: Factory, tmp_path: Path) -> None:
    definition = parse_definition(DEFINITION, "e.toml", tmp_path)
    add_schedule(factory, definition, DEFINITION, tmp_path / "out", None, at("2026-03-27T12:00"))
    now = at("2026-03-29T17:05")  # beat was down: 27th and 28th missed, the 29th is due
    start = Barrier(4)

    def beat() -> list[object]:
        start.wait()
        return list(claim_due(factory, now))

    with ThreadPoolExecutor(4) as pool:
        claimed = [c for result in pool.map(lambda _n: beat(), range(4)) for c in result]
    assert len(claimed) == 1 and claimed[0].slot == at("2026-03-29T17:00")
    assert [status for _slot, status in _runs(factory)] == ["missed", "missed", "running"]
    # a restart a minute later claims nothing again
    assert claim_due(factory, now + dt.timedelta(minutes=1)) == []
    # the next day's slot runs
    (tomorrow,) = claim_due(factory, at("2026-03-30T17:00"))
    assert tomorrow.slot == at("2026-03-30T17:00")


def test_unscheduling(factory: Factory, tmp_path: Path) -> None:
    definition = parse_definition(DEFINITION, "e.toml", tmp_path)
    add_schedule(factory, definition, DEFINITION, tmp_path / "out", None, at("2026-03-27T12:00"))
    remove_schedule(factory, "Evening")
    assert claim_due(factory, at("2026-03-29T17:05")) == []
    with pytest.raises(UsageError, match="no bulletin named 'Evening'"):
        remove_schedule(factory, "Evening")
