"""Following a job: statuses until it is final, with the clock and sleep passed in."""

from __future__ import annotations

import json
from pathlib import Path

from jobs.claims import claim_segment, complete_segment, fail_segment
from jobs.control import job_status
from jobs.db import Factory
from jobs.serialize import dumps, to_data
from jobs.storage import Storage
from jobs.watching import follow, progress_of, succeeded
from tests.jobs.rows import segment_ids
from tests.jobs.test_control import LEASE_MS, make_job


def test_follow_yields_until_the_job_is_final_and_sleeps_between(
    factory: Factory, storage: Storage, tmp_path: Path
) -> None:
    job_id = make_job(factory, storage, tmp_path, [["One here.", "Two here."]])
    first, second = segment_ids(factory, job_id)
    slept: list[float] = []
    steps = iter(
        [
            lambda: claim_segment(factory, first, 1_000, LEASE_MS),
            lambda: complete_segment(factory, first, 1_500, reused=False, billed_chars=None),
            lambda: (
                claim_segment(factory, second, 2_000, LEASE_MS),
                fail_segment(factory, second, "the engine said no", 2_500),
            ),
        ]
    )

    def sleep(seconds: float) -> None:  # time passes: the job moves one step
        slept.append(seconds)
        next(steps)()

    views = list(follow(factory, job_id, now_ms=lambda: 3_000, sleep=sleep, interval_s=0.5))
    assert [v.status for v in views] == ["pending", "running", "running", "failed"]
    assert [progress_of(v).segments_done for v in views] == [0, 0, 1, 2]
    assert progress_of(views[-1]).chapters_done == 1
    assert slept == [0.5, 0.5, 0.5]
    assert not succeeded(views[-1])
    assert [f.error for f in views[-1].failures] == ["the engine said no"]


def test_views_serialise_to_the_documented_json(
    factory: Factory, storage: Storage, tmp_path: Path
) -> None:
    job_id = make_job(factory, storage, tmp_path, [["One here."]], title="A Book")
    view = job_status(factory, job_id, 1_000)
    data = json.loads(dumps(view))
    assert data == to_data(view)
    assert list(data) == [
        "job", "status", "priority", "title", "input", "engine", "voice", "error",
        "segments", "chapters", "retrying", "eta_s", "failures", "attention",
    ]  # fmt: skip
    assert data["segments"] == {
        "total": 1, "pending": 1, "queued": 0, "running": 0, "done": 0, "failed": 0,
        "cancelled": 0,
    }  # fmt: skip
    assert data["chapters"][0]["gaps"] == [] and data["title"] == "A Book"
