"""Segment claims, leases and the exactly-once fan-in (jobs.claims), and the segment task's
error mapping (jobs.tasks): SQLite and PostgreSQL, with explicit clocks."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from jobs import context as worker_context
from jobs import tasks
from jobs.claims import (
    Claim,
    FollowUp,
    claim_ready_chapters,
    claim_segment,
    complete_segment,
    defer_segment,
    fail_segment,
    renew_lease,
)
from jobs.clock import clock_ms
from jobs.context import Context
from jobs.db import Factory, transaction
from jobs.models import Segment, Word
from jobs.priority import Priority
from jobs.stitching import stitch_chapter
from jobs.storage import Storage
from jobs.synthesis import synthesize_segment
from narrate.errors import JobNotFoundError
from narrate.settings import Settings
from renderer.audio import decoded_duration_ms
from renderer.engines import get_engine
from tests.jobs.builders import STUB, planned_chapter, store_job
from tests.jobs.rows import chapter, chapter_ids, job, segment, segment_ids

LEASE_MS = 500


def make_job(
    factory: Factory,
    storage: Storage,
    tmp_path: Path,
    chapters: Sequence[Sequence[str]],
    *,
    allow_partial: bool = False,
) -> str:
    """A stub-engine job: one chapter per item of ``chapters``, one segment per text."""
    plan = [planned_chapter(number, texts) for number, texts in enumerate(chapters, start=1)]
    return store_job(factory, storage, tmp_path, plan, allow_partial=allow_partial)


def set_segment(factory: Factory, segment_id: int, **values: Any) -> None:
    with transaction(factory) as session:
        session.execute(update(Segment).where(Segment.id == segment_id).values(**values))


def claimed(factory: Factory, segment_id: int, now_ms: int) -> Claim:
    claim = claim_segment(factory, segment_id, now_ms, LEASE_MS)
    assert claim is not None
    return claim


def unique_word() -> str:
    """A fresh all-letter word: the stub counts transient faults per text and per process."""
    return uuid.uuid4().hex.translate(str.maketrans("0123456789", "ghijklmnop"))


# --- claims and leases -----------------------------------------------------------------


def test_a_claim_marks_the_segment_running_under_a_lease_and_starts_the_job(
    factory: Factory, storage: Storage, tmp_path: Path
) -> None:
    job_id = make_job(factory, storage, tmp_path, [["One two.", "Three four."]])
    first, _second = segment_ids(factory, job_id)
    claim = claimed(factory, first, 1_000)
    assert (claim.segment_id, claim.job_id, claim.attempt, claim.retries) == (first, job_id, 1, 0)
    assert claim.priority == Priority.NORMAL
    assert claim.voicing == STUB
    assert claim.text == "One two."
    row = segment(factory, first)
    assert (row.status, row.attempts, row.lease_until_ms) == ("running", 1, 1_000 + LEASE_MS)
    started = job(factory, job_id)
    assert (started.status, started.started_at_ms) == ("running", 1_000)
    # a later claim of another segment keeps the job's start time
    claimed(factory, _second, 2_000)
    assert job(factory, job_id).started_at_ms == 1_000


def test_two_claims_of_one_segment_at_the_same_time_give_it_to_one(
    factory: Factory, storage: Storage, tmp_path: Path
) -> None:
    job_id = make_job(factory, storage, tmp_path, [["Alpha.", "Beta.", "Gamma.", "Delta."]])
    ids = segment_ids(factory, job_id)
    # one after the other at the same instant
    assert claim_segment(factory, ids[0], 1_000, LEASE_MS) is not None
    assert claim_segment(factory, ids[0], 1_000, LEASE_MS) is None
    # truly at once, from two threads (two connections)
    for segment_id in ids[1:]:
        barrier = threading.Barrier(2)

        def race(sid: int = segment_id, gate: threading.Barrier = barrier) -> Claim | None:
            gate.wait()
            return claim_segment(factory, sid, 1_000, LEASE_MS)

        with ThreadPoolExecutor(2) as pool:
            results = [f.result() for f in [pool.submit(race), pool.submit(race)]]
        assert sum(r is not None for r in results) == 1
        assert segment(factory, segment_id).attempts == 1


def test_a_live_lease_blocks_a_claim_and_a_lapsed_one_hands_the_segment_over(
    factory: Factory, storage: Storage, tmp_path: Path
) -> None:
    job_id = make_job(factory, storage, tmp_path, [["Only words here."]])
    (segment_id,) = segment_ids(factory, job_id)
    claimed(factory, segment_id, 1_000)  # lease until 1_500
    assert claim_segment(factory, segment_id, 1_200, LEASE_MS) is None
    assert claim_segment(factory, segment_id, 1_500, LEASE_MS) is None  # not yet past it
    second = claimed(factory, segment_id, 1_501)
    assert second.attempt == 2
    row = segment(factory, segment_id)
    assert (row.status, row.attempts, row.lease_until_ms) == ("running", 2, 1_501 + LEASE_MS)


def test_finished_segments_are_not_claimable_and_unknown_ones_are_an_error(
    factory: Factory, storage: Storage, tmp_path: Path
) -> None:
    job_id = make_job(factory, storage, tmp_path, [["Done soon.", "Fails soon."]])
    done, failed = segment_ids(factory, job_id)
    complete_segment(factory, done, 1_000, reused=False, billed_chars=None)
    fail_segment(factory, failed, "broken", 1_000)
    assert claim_segment(factory, done, 99_000, LEASE_MS) is None
    assert claim_segment(factory, failed, 99_000, LEASE_MS) is None
    with pytest.raises(JobNotFoundError):
        claim_segment(factory, max(done, failed) + 1_000, 1_000, LEASE_MS)


def test_only_the_holder_of_the_current_attempt_renews_the_lease(
    factory: Factory, storage: Storage, tmp_path: Path
) -> None:
    job_id = make_job(factory, storage, tmp_path, [["Heartbeat words."]])
    (segment_id,) = segment_ids(factory, job_id)
    first = claimed(factory, segment_id, 1_000)
    assert renew_lease(factory, first, 3_000)
    assert segment(factory, segment_id).lease_until_ms == 3_000
    assert claim_segment(factory, segment_id, 2_000, LEASE_MS) is None  # renewed: still held
    second = claimed(factory, segment_id, 3_001)
    assert not renew_lease(factory, first, 9_000)  # the old holder lost it
    assert segment(factory, segment_id).lease_until_ms == 3_001 + LEASE_MS
    assert renew_lease(factory, second, 9_000)
    assert segment(factory, segment_id).lease_until_ms == 9_000
    complete_segment(factory, segment_id, 4_000, reused=False, billed_chars=12)
    assert not renew_lease(factory, second, 10_000)  # done: nothing to hold
    row = segment(factory, segment_id)
    assert (row.status, row.lease_until_ms, row.billed_chars) == ("done", None, 12)


# --- deferral ------------------------------------------------------------------------


def test_defer_sends_the_segment_back_to_the_backlog_until_its_time(
    factory: Factory, storage: Storage, tmp_path: Path
) -> None:
    job_id = make_job(factory, storage, tmp_path, [["Flaky words."]])
    (segment_id,) = segment_ids(factory, job_id)
    claim = claimed(factory, segment_id, 1_000)
    follow = defer_segment(factory, claim, "provider timed out", 6_000)
    assert follow == FollowUp("pending", retry_at_ms=6_000)
    row = segment(factory, segment_id)
    assert (row.status, row.retries, row.attempts) == ("pending", 1, 1)
    assert (row.not_before_ms, row.lease_until_ms) == (6_000, None)
    assert row.error == "retrying: provider timed out"
    assert claim_segment(factory, segment_id, 5_999, LEASE_MS) is None
    again = claimed(factory, segment_id, 6_000)
    assert (again.attempt, again.retries) == (2, 1)


def test_defer_without_counting_leaves_retries_and_attempts_as_they_were(
    factory: Factory, storage: Storage, tmp_path: Path
) -> None:
    job_id = make_job(factory, storage, tmp_path, [["Throttled words."]])
    (segment_id,) = segment_ids(factory, job_id)
    claim = claimed(factory, segment_id, 1_000)
    defer_segment(factory, claim, "throttle busy", 4_000, count=False)
    row = segment(factory, segment_id)
    assert (row.status, row.retries, row.attempts, row.not_before_ms) == ("pending", 0, 0, 4_000)
    assert claimed(factory, segment_id, 4_000).attempt == 1


def test_a_stale_claim_cannot_defer_a_segment_another_worker_holds(
    factory: Factory, storage: Storage, tmp_path: Path
) -> None:
    job_id = make_job(factory, storage, tmp_path, [["Contested words."]])
    (segment_id,) = segment_ids(factory, job_id)
    stale = claimed(factory, segment_id, 1_000)
    claimed(factory, segment_id, 2_000)  # the first lease lapsed: attempt 2 holds it
    follow = defer_segment(factory, stale, "late timeout", 9_000)
    row = segment(factory, segment_id)
    assert (row.status, row.attempts, row.retries, row.not_before_ms) == ("running", 2, 0, 0)
    # FollowUp.status is documented as "skipped" when another execution had the segment
    assert follow == FollowUp("skipped")


# --- fan-in --------------------------------------------------------------------------


def test_completing_twice_counts_once_and_claims_the_stitch_once(
    factory: Factory, storage: Storage, tmp_path: Path
) -> None:
    job_id = make_job(factory, storage, tmp_path, [["First part.", "Second part."], ["Other."]])
    first, second, _other = segment_ids(factory, job_id)
    chapter_id = chapter_ids(factory, job_id)[0]
    claimed(factory, first, 1_000)
    assert complete_segment(factory, first, 2_000, reused=False, billed_chars=None) == FollowUp(
        "done"
    )
    assert complete_segment(factory, first, 2_100, reused=False, billed_chars=None) == FollowUp(
        "skipped"
    )
    counts = chapter(factory, chapter_id)
    assert (counts.segments_done, counts.segments_failed, counts.status) == (1, 0, "pending")
    assert segment(factory, first).finished_at_ms == 2_000

    last = complete_segment(factory, second, 3_000, reused=False, billed_chars=None)
    assert last == FollowUp("done", stitch=(chapter_id,))
    again = complete_segment(factory, second, 3_100, reused=False, billed_chars=None)
    assert again == FollowUp("skipped")
    assert fail_segment(factory, second, "too late", 3_200) == FollowUp("skipped")
    assert claim_ready_chapters(factory, job_id, 4_000).stitch == ()
    done = chapter(factory, chapter_id)
    assert (done.segments_done, done.segments_failed) == (2, 0)
    assert (done.status, done.stitch_enqueued_at_ms) == ("stitching", 3_000)
    assert segment(factory, second).status == "done"


def test_failing_the_last_segment_fails_the_chapter_and_settles_the_job(
    factory: Factory, storage: Storage, tmp_path: Path
) -> None:
    job_id = make_job(factory, storage, tmp_path, [["Good words.", "Bad words."], ["Later."]])
    good, bad, later = segment_ids(factory, job_id)
    first_chapter, second_chapter = chapter_ids(factory, job_id)
    complete_segment(factory, good, 1_000, reused=False, billed_chars=None)
    follow = fail_segment(factory, bad, "the engine refused it", 2_000)
    # the chapter is final but the job is not: its second chapter still runs
    assert follow == FollowUp("failed")
    failed = chapter(factory, first_chapter)
    assert (failed.status, failed.error) == ("failed", "1 segment(s) failed")
    assert (failed.segments_done, failed.segments_failed, failed.stitch_enqueued_at_ms) == (
        1,
        1,
        None,
    )
    row = segment(factory, bad)
    assert (row.status, row.error, row.finished_at_ms) == ("failed", "the engine refused it", 2_000)
    assert job(factory, job_id).status == "pending"

    follow = fail_segment(factory, later, "also refused", 3_000)
    assert follow == FollowUp("failed", settled="failed")
    assert chapter(factory, second_chapter).status == "failed"
    settled = job(factory, job_id)
    assert (settled.status, settled.error, settled.finished_at_ms) == (
        "failed",
        "2 segment(s) failed",
        3_000,
    )
    assert fail_segment(factory, later, "again", 4_000) == FollowUp("skipped")
    assert chapter(factory, second_chapter).segments_failed == 1


def test_a_partial_chapter_whose_every_segment_failed_is_stitched_as_silence(
    factory: Factory, storage: Storage, tmp_path: Path
) -> None:
    job_id = make_job(factory, storage, tmp_path, [["Heard."], ["Lost."]], allow_partial=True)
    heard, lost = segment_ids(factory, job_id)
    first, second = chapter_ids(factory, job_id)
    synthesize_segment(factory, storage, get_engine, heard, now_ms=1_000)
    assert stitch_chapter(factory, storage, first, now_ms=1_500).status == "done"
    assert fail_segment(factory, lost, "voice crashed", 2_000).stitch == (second,)
    assert stitch_chapter(factory, storage, second, now_ms=3_000).settled == "partial"
    silent = chapter(factory, second)
    assert silent.status == "done" and silent.duration_ms == len("Lost.") * 60
    assert silent.gaps is not None and len(silent.gaps) == 1
    audio = storage.path(silent.audio_key or "")
    assert abs(decoded_duration_ms(audio) - len("Lost.") * 60) <= 5


def test_a_partial_job_stitches_a_silent_gap_for_its_failed_segment(
    factory: Factory, storage: Storage, tmp_path: Path
) -> None:
    job_id = make_job(
        factory,
        storage,
        tmp_path,
        [["Before the gap.", "This part is lost.", "After the gap."]],
        allow_partial=True,
    )
    before, lost, after = segment_ids(factory, job_id)
    (chapter_id,) = chapter_ids(factory, job_id)
    for segment_id in (before, after):
        assert (
            synthesize_segment(factory, storage, get_engine, segment_id, now_ms=1_000).stitch == ()
        )
    follow = fail_segment(factory, lost, "voice crashed", 2_000)
    assert follow == FollowUp("failed", stitch=(chapter_id,))
    assert chapter(factory, chapter_id).status == "stitching"

    stitched = stitch_chapter(factory, storage, chapter_id, now_ms=3_000)
    assert stitched == FollowUp("done", settled="partial")
    result = chapter(factory, chapter_id)
    gap_ms = len("This part is lost.") * 60
    assert result.status == "done" and result.gaps is not None
    (gap,) = result.gaps
    start_ms, end_ms = gap["start_ms"], gap["end_ms"]
    assert isinstance(start_ms, int) and isinstance(end_ms, int)
    assert (gap["segment"], gap["error"], end_ms - start_ms) == (1, "voice crashed", gap_ms)
    with transaction(factory) as session:
        words = session.scalars(
            select(Word).where(Word.chapter_id == chapter_id).order_by(Word.index)
        ).all()
        texts = [w.text for w in words]
        first_after = next(w for w in words if w.segment_id == after)
        last_before = [w for w in words if w.segment_id == before][-1]
    assert texts == ["Before", "the", "gap.", "After", "the", "gap."]
    # the lost segment's words are absent and the gap sits between its neighbours' words
    assert last_before.end_ms <= start_ms
    assert first_after.start_ms >= end_ms
    audio = storage.path(result.audio_key or "")
    assert abs(decoded_duration_ms(audio) - (result.duration_ms or 0)) <= 5
    settled = job(factory, job_id)
    assert (settled.status, settled.error) == (
        "partial",
        "1 segment(s) failed; gaps left in their place",
    )


def test_chapters_complete_at_creation_are_claimed_once_by_claim_ready_chapters(
    factory: Factory, storage: Storage, tmp_path: Path
) -> None:
    first = make_job(factory, storage, tmp_path, [["Reused words."]])
    (segment_id,) = segment_ids(factory, first)
    synthesize_segment(factory, storage, get_engine, segment_id, now_ms=1_000)
    second = make_job(factory, storage, tmp_path, [["Reused words."]])
    (chapter_id,) = chapter_ids(factory, second)
    assert segment(factory, segment_ids(factory, second)[0]).reused
    assert claim_ready_chapters(factory, second, 5_000) == FollowUp("ready", stitch=(chapter_id,))
    assert claim_ready_chapters(factory, second, 6_000) == FollowUp("ready")
    assert chapter(factory, chapter_id).stitch_enqueued_at_ms == 5_000


# --- the segment task ------------------------------------------------------------------


@pytest.fixture
def ctx(
    factory: Factory, database_url: str, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Context]:
    """This process's worker context on the test database (embedded mode: no broker);
    ``factory`` has created the schema."""
    monkeypatch.setattr(worker_context, "_context", None)  # restored afterwards
    configured = worker_context.configure(replace(settings, database_url=database_url))
    yield configured
    configured.factory.kw["bind"].dispose()


def run_task(segment_id: int) -> dict[str, Any]:
    result = tasks.synthesize_segment.apply(args=(segment_id,))
    assert result.successful(), result.traceback
    follow: dict[str, Any] = result.get()
    return follow


def test_task_renders_a_segment_and_claims_its_chapter_stitch(ctx: Context, tmp_path: Path) -> None:
    job_id = make_job(ctx.factory, ctx.storage, tmp_path, [["Plain words to render."]])
    (segment_id,) = segment_ids(ctx.factory, job_id)
    (chapter_id,) = chapter_ids(ctx.factory, job_id)
    follow = run_task(segment_id)
    assert (follow["status"], follow["stitch"]) == ("done", (chapter_id,))
    row = segment(ctx.factory, segment_id)
    assert (row.status, row.attempts, row.reused) == ("done", 1, False)
    assert ctx.storage.has_segment(row.content_hash)
    assert run_task(segment_id)["status"] == "skipped"  # a redelivered message


def test_task_fails_a_segment_at_once_on_a_fatal_error(ctx: Context, tmp_path: Path) -> None:
    job_id = make_job(ctx.factory, ctx.storage, tmp_path, [["This is STUB-FATAL text."]])
    (segment_id,) = segment_ids(ctx.factory, job_id)
    follow = run_task(segment_id)
    assert (follow["status"], follow["settled"]) == ("failed", "failed")
    row = segment(ctx.factory, segment_id)
    assert (row.status, row.attempts, row.retries) == ("failed", 1, 0)
    assert row.error == "stub engine: fatal fault requested by the text"
    assert job(ctx.factory, job_id).status == "failed"


def test_task_defers_a_transient_error_with_backoff_then_succeeds(
    ctx: Context, tmp_path: Path
) -> None:
    text = f"STUB-TRANSIENT {unique_word()}."
    job_id = make_job(ctx.factory, ctx.storage, tmp_path, [[text]])
    (segment_id,) = segment_ids(ctx.factory, job_id)
    before = clock_ms()
    follow = run_task(segment_id)
    after = clock_ms()
    row = segment(ctx.factory, segment_id)
    assert (follow["status"], row.status, row.retries, row.attempts) == ("pending", "pending", 1, 1)
    assert follow["retry_at_ms"] == row.not_before_ms
    # the first backoff: at most the base
    assert before <= row.not_before_ms <= after + tasks.BACKOFF_BASE_S * 1000
    assert row.error == "retrying: stub engine: transient fault requested"

    for _ in range(3):  # let the backoff pass until the stub stops failing (2 faults)
        set_segment(ctx.factory, segment_id, not_before_ms=0)
        follow = run_task(segment_id)
        if follow["status"] == "done":
            break
    row = segment(ctx.factory, segment_id)
    assert (row.status, row.retries, row.error) == ("done", 2, None)
    assert follow["stitch"] == tuple(chapter_ids(ctx.factory, job_id))


def test_task_fails_a_transient_error_once_retries_are_used_up(
    ctx: Context, tmp_path: Path
) -> None:
    job_id = make_job(ctx.factory, ctx.storage, tmp_path, [[f"STUB-TRANSIENT {unique_word()}."]])
    (segment_id,) = segment_ids(ctx.factory, job_id)
    set_segment(ctx.factory, segment_id, retries=tasks.MAX_RETRIES)
    follow = run_task(segment_id)
    row = segment(ctx.factory, segment_id)
    assert (follow["status"], row.status) == ("failed", "failed")
    assert row.error == (
        f"gave up after {tasks.MAX_RETRIES + 1} attempts: stub engine: transient fault requested"
    )


def test_task_fails_a_poison_segment_whose_workers_kept_dying(ctx: Context, tmp_path: Path) -> None:
    texts = ["Killer words.", "Survivor words.", "Retried words."]
    job_id = make_job(ctx.factory, ctx.storage, tmp_path, [texts])
    poison, survivor, retried = segment_ids(ctx.factory, job_id)
    cap = tasks.MAX_LOST_DELIVERIES
    # every earlier delivery of these ended without a result: its worker died
    set_segment(ctx.factory, poison, status="running", attempts=cap, lease_until_ms=0)
    set_segment(ctx.factory, survivor, status="queued", attempts=cap - 1)
    # deliveries that ended in a counted retry are not lost ones
    set_segment(ctx.factory, retried, attempts=cap + 2, retries=3)

    assert run_task(poison)["status"] == "failed"
    row = segment(ctx.factory, poison)
    assert row.status == "failed" and row.error is not None
    assert f"a worker died {cap} times" in row.error
    assert not ctx.storage.has_segment(row.content_hash)  # never rendered
    assert run_task(survivor)["status"] == "done"
    assert segment(ctx.factory, survivor).attempts == cap
    assert run_task(retried)["status"] == "done"
