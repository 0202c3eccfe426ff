"""What users ask of jobs: status, list, cancel, retry (SQLite and PostgreSQL, explicit
clocks)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from sqlalchemy import select

from jobs.claims import FollowUp, claim_segment, complete_segment, defer_segment, fail_segment
from jobs.control import cancel_job, job_status, list_jobs, retry_job
from jobs.db import Factory, transaction
from jobs.feeder import feed
from jobs.models import Chapter
from jobs.priority import Priority, Work
from jobs.serialize import to_data
from jobs.stitching import stitch_chapter
from jobs.storage import Storage
from jobs.synthesis import synthesize_segment
from jobs.views import Cancelled, Retried
from narrate.errors import JobNotFoundError, UsageError
from renderer.engines import get_engine
from tests.jobs.builders import planned_chapter, store_job
from tests.jobs.rows import job, segment, segment_ids

LEASE_MS = 60_000


def make_job(
    factory: Factory,
    storage: Storage,
    tmp_path: Path,
    chapters: Sequence[Sequence[str]],
    *,
    priority: Priority = Priority.NORMAL,
    allow_partial: bool = False,
    title: str | None = None,
) -> str:
    """A stub-engine job for the workers: one chapter per item of ``chapters``, one
    segment per text."""
    plan = [planned_chapter(number, texts) for number, texts in enumerate(chapters, start=1)]
    return store_job(
        factory,
        storage,
        tmp_path,
        plan,
        title=title,
        priority=priority,
        allow_partial=allow_partial,
        distributed=True,
    )


def chapters_of(factory: Factory, job_id: str) -> list[Chapter]:
    with transaction(factory) as session:
        return list(
            session.scalars(select(Chapter).where(Chapter.job_id == job_id).order_by(Chapter.index))
        )


def counts(**nonzero: int) -> dict[str, int]:
    """The ``segments`` block of a status view."""
    states = ("pending", "queued", "running", "done", "failed", "cancelled")
    return {"total": sum(nonzero.values()), **{s: nonzero.get(s, 0) for s in states}}


# --- job_status ----------------------------------------------------------------------


def test_job_status_counts_segments_lists_failures_and_estimates_the_rest(
    factory: Factory, storage: Storage, tmp_path: Path
) -> None:
    job_id = make_job(
        factory,
        storage,
        tmp_path,
        [["Alpha words.", "Beta words.", "Gamma words."], ["Delta words."]],
        priority=Priority.URGENT,
        title="A Book",
    )
    s0, s1, s2, s3 = segment_ids(factory, job_id)
    view = to_data(job_status(factory, job_id, 500))
    assert (view["job"], view["status"], view["priority"], view["title"]) == (
        job_id,
        "pending",
        "urgent",
        "A Book",
    )
    assert (view["engine"], view["voice"], view["error"]) == ("stub", "stub", None)
    assert view["segments"] == counts(pending=4)
    assert (view["failures"], view["retrying"], view["eta_s"]) == ([], [], None)
    assert [(c["index"], c["status"], c["segments_total"]) for c in view["chapters"]] == [
        (1, "pending", 3),
        (2, "pending", 1),
    ]

    assert claim_segment(factory, s0, 1_000, LEASE_MS) is not None
    view = to_data(job_status(factory, job_id, 1_500))
    assert view["status"] == "running"
    assert view["segments"] == counts(running=1, pending=3)
    assert view["eta_s"] is None  # nothing synthesized yet: no rate to go by

    complete_segment(factory, s0, 2_000, reused=False, billed_chars=None)
    assert claim_segment(factory, s1, 2_000, LEASE_MS) is not None
    fail_segment(factory, s1, "the engine said no", 2_500)
    claim = claim_segment(factory, s2, 2_500, LEASE_MS)
    assert claim is not None
    defer_segment(factory, claim, "provider timed out", 9_000)
    view = to_data(job_status(factory, job_id, 5_000))
    assert view["segments"] == counts(done=1, failed=1, pending=2)
    # 1 segment synthesized in the 4 s since the first claim; 2 remain
    assert view["eta_s"] == 8.0
    first = view["chapters"][0]
    assert (first["segments_done"], first["segments_failed"], first["status"]) == (1, 1, "pending")
    assert [(f["chapter"], f["segment"], f["error"]) for f in view["failures"]] == [
        (1, 1, "the engine said no")
    ]
    assert view["failures"][0]["title"] == "Chapter 1"
    assert view["retrying"] == [
        {"chapter": 1, "segment": 2, "retries": 1, "error": "retrying: provider timed out"}
    ]

    fail_segment(factory, s2, "gave up", 6_000)
    fail_segment(factory, s3, "gave up too", 6_000)
    view = to_data(job_status(factory, job_id, 7_000))
    assert (view["status"], view["error"], view["eta_s"]) == ("failed", "3 segment(s) failed", 0.0)
    assert [c["status"] for c in view["chapters"]] == ["failed", "failed"]
    assert [(f["chapter"], f["segment"]) for f in view["failures"]] == [(1, 1), (1, 2), (2, 0)]

    with pytest.raises(JobNotFoundError, match="no job 'nope'") as caught:
        job_status(factory, "nope", 1_000)
    assert caught.value.hint is not None and "narrate jobs" in caught.value.hint


# --- list_jobs -----------------------------------------------------------------------


def test_list_jobs_shows_the_newest_first_with_their_progress(
    factory: Factory, storage: Storage, tmp_path: Path
) -> None:
    assert list_jobs(factory) == []
    oldest = make_job(factory, storage, tmp_path, [["One.", "Two."]], title="Oldest")
    middle = make_job(factory, storage, tmp_path, [["Three."]], priority=Priority.BULK)
    newest = make_job(factory, storage, tmp_path, [["Four.", "Five.", "Six."]])
    complete_segment(factory, segment_ids(factory, oldest)[0], 1_000, reused=False, billed_chars=1)
    fail_segment(factory, segment_ids(factory, oldest)[1], "no", 1_000)
    rows = {row["job"]: row for row in to_data(list_jobs(factory))}
    assert rows.keys() == {oldest, middle, newest}
    assert (rows[oldest]["status"], rows[oldest]["title"]) == ("failed", "Oldest")
    assert (
        rows[oldest]["segments_done"],
        rows[oldest]["segments_failed"],
        rows[oldest]["segments_total"],
    ) == (1, 1, 2)
    assert (rows[middle]["priority"], rows[middle]["segments_total"]) == ("bulk", 1)
    assert rows[newest]["created_at"] is not None

    assert [row.job for row in list_jobs(factory)] == [newest, middle, oldest]
    assert [row.job for row in list_jobs(factory, limit=2)] == [newest, middle]


# --- cancel_job ----------------------------------------------------------------------


def test_cancel_drops_waiting_segments_and_lets_running_ones_finish(
    factory: Factory, storage: Storage, tmp_path: Path
) -> None:
    job_id = make_job(factory, storage, tmp_path, [["Run.", "Queue.", "Wait."], ["Later."]])
    running, queued, waiting, later = segment_ids(factory, job_id)
    assert claim_segment(factory, running, 1_000, LEASE_MS) is not None
    assert feed(factory, 1_000, max_inflight=2, job_inflight=10) == [Work(queued, Priority.NORMAL)]

    assert cancel_job(factory, job_id, 9_000) == Cancelled(job_id, 3)
    statuses = [segment(factory, s).status for s in (running, queued, waiting, later)]
    assert statuses == ["running", "cancelled", "cancelled", "cancelled"]
    assert segment(factory, waiting).finished_at_ms == 9_000
    cancelled = job(factory, job_id)
    assert (cancelled.status, cancelled.error, cancelled.finished_at_ms) == (
        "cancelled",
        "cancelled by the user",
        9_000,
    )
    assert to_data(job_status(factory, job_id, 9_500))["segments"] == counts(running=1, cancelled=3)

    # the running segment finishes (its audio is kept for reuse) but nothing more happens
    follow = complete_segment(factory, running, 10_000, reused=False, billed_chars=None)
    assert follow == FollowUp("done")
    assert segment(factory, running).status == "done"
    assert claim_segment(factory, waiting, 10_000, LEASE_MS) is None
    assert feed(factory, 10_000, max_inflight=10, job_inflight=10) == []
    assert job(factory, job_id).status == "cancelled"

    with pytest.raises(UsageError, match="already cancelled"):
        cancel_job(factory, job_id, 11_000)


def test_cancelling_a_finished_job_is_a_usage_error(
    factory: Factory, storage: Storage, tmp_path: Path
) -> None:
    job_id = make_job(factory, storage, tmp_path, [["Broken."]])
    fail_segment(factory, segment_ids(factory, job_id)[0], "no", 1_000)
    assert job(factory, job_id).status == "failed"
    with pytest.raises(UsageError, match="already failed"):
        cancel_job(factory, job_id, 2_000)
    with pytest.raises(JobNotFoundError):
        cancel_job(factory, "nope", 2_000)


# --- retry_job -----------------------------------------------------------------------


def test_retry_sends_failed_segments_back_and_keeps_done_ones(
    factory: Factory, storage: Storage, tmp_path: Path
) -> None:
    job_id = make_job(factory, storage, tmp_path, [["Fine.", "Broken."], ["Also broken."]])
    fine, broken, also = segment_ids(factory, job_id)
    complete_segment(factory, fine, 1_000, reused=False, billed_chars=None)
    assert claim_segment(factory, broken, 1_000, LEASE_MS) is not None
    fail_segment(factory, broken, "engine refused", 2_000)
    fail_segment(factory, also, "engine refused", 2_000)
    assert job(factory, job_id).status == "failed"

    assert retry_job(factory, job_id) == Retried(job_id, 2, 2)  # and chapters to stitch
    retried = job(factory, job_id)
    assert (retried.status, retried.error, retried.finished_at_ms) == ("running", None, None)
    for segment_id in (broken, also):
        row = segment(factory, segment_id)
        assert (row.status, row.attempts, row.retries, row.not_before_ms) == ("pending", 0, 0, 0)
        assert (row.error, row.finished_at_ms, row.lease_until_ms) == (None, None, None)
    assert segment(factory, fine).status == "done"
    assert [
        (c.status, c.segments_done, c.segments_failed, c.error, c.stitch_enqueued_at_ms)
        for c in chapters_of(factory, job_id)
    ] == [("pending", 1, 0, None, None), ("pending", 0, 0, None, None)]
    assert job_status(factory, job_id, 3_000).failures == ()

    # the retried segments flow again: each completion claims its chapter's stitch
    released = feed(factory, 3_000, max_inflight=10, job_inflight=10)
    assert released == [Work(broken, Priority.NORMAL), Work(also, Priority.NORMAL)]
    first_chapter, second_chapter = (c.id for c in chapters_of(factory, job_id))
    follow = complete_segment(factory, broken, 4_000, reused=False, billed_chars=None)
    assert follow.stitch == (first_chapter,)
    follow = complete_segment(factory, also, 4_000, reused=False, billed_chars=None)
    assert follow.stitch == (second_chapter,)


def test_retry_of_a_partial_job_renders_its_gaps_and_restitches(
    factory: Factory, storage: Storage, tmp_path: Path
) -> None:
    job_id = make_job(
        factory, storage, tmp_path, [["Heard words.", "Lost words."]], allow_partial=True
    )
    heard, lost = segment_ids(factory, job_id)
    (chapter_id,) = (c.id for c in chapters_of(factory, job_id))
    synthesize_segment(factory, storage, get_engine, heard, now_ms=1_000)
    assert fail_segment(factory, lost, "flaky voice", 2_000).stitch == (chapter_id,)
    assert stitch_chapter(factory, storage, chapter_id, 3_000).settled == "partial"
    assert chapters_of(factory, job_id)[0].gaps

    assert retry_job(factory, job_id) == Retried(job_id, 1, 1)
    (reset,) = chapters_of(factory, job_id)
    assert (reset.status, reset.gaps, reset.stitch_enqueued_at_ms) == ("pending", None, None)
    assert job(factory, job_id).status == "running"
    assert synthesize_segment(factory, storage, get_engine, lost, now_ms=4_000).stitch == (
        chapter_id,
    )
    assert stitch_chapter(factory, storage, chapter_id, 5_000).settled == "done"
    (stitched,) = chapters_of(factory, job_id)
    assert (stitched.status, stitched.gaps) == ("done", None)
    assert job(factory, job_id).error is None


def test_retrying_a_cancelled_job_is_refused_with_a_hint(
    factory: Factory, storage: Storage, tmp_path: Path
) -> None:
    job_id = make_job(factory, storage, tmp_path, [["Never."]])
    cancel_job(factory, job_id, 1_000)
    with pytest.raises(UsageError, match="was cancelled") as caught:
        retry_job(factory, job_id)
    assert caught.value.hint is not None and "submit the document again" in caught.value.hint
    assert job(factory, job_id).status == "cancelled"


def test_retrying_a_job_that_has_not_ended_is_a_usage_error(
    factory: Factory, storage: Storage, tmp_path: Path
) -> None:
    job_id = make_job(factory, storage, tmp_path, [["Fine.", "Waiting."]])
    complete_segment(factory, segment_ids(factory, job_id)[0], 1_000, reused=False, billed_chars=1)
    # a running job's segments still change under the workers: a retry would race them
    with pytest.raises(UsageError, match="only a failed or partial job is retried") as caught:
        retry_job(factory, job_id)
    assert caught.value.hint is not None and f"narrate watch {job_id}" in caught.value.hint
    assert job(factory, job_id).status == "pending"
    with pytest.raises(JobNotFoundError):
        retry_job(factory, "nope")
