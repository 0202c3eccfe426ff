"""The reaper: lost or abandoned work is found in the database and sent again, finished jobs
are settled (SQLite and PostgreSQL, explicit clocks)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import update

from jobs.claims import claim_segment, complete_segment
from jobs.control import cancel_job
from jobs.db import Factory, transaction
from jobs.feeder import feed
from jobs.models import Chapter, Job
from jobs.planning import PlannedChapter, segment_hash
from jobs.priority import Priority, Work
from jobs.reaper import Repairs, reap
from jobs.stitching import claim_stitch, renew_stitch_lease
from jobs.storage import Storage
from ssml.segment import Segment as PlannedSegment
from tests.jobs.builders import STUB, store_job
from tests.jobs.rows import chapter, chapter_ids, job, segment, segment_ids

REQUEUE_AFTER_MS = 10_000


def plan(chapters: Sequence[int], tag: str = "") -> list[PlannedChapter]:
    """``chapters[i]`` one-word segments in chapter ``i + 1``."""
    return [
        PlannedChapter(
            number,
            f"Chapter {number}",
            "word",
            tuple(
                PlannedSegment(i, "word", 0, 4, f"<speak>word {tag}{number}x{i}</speak>", 0)
                for i in range(count)
            ),
        )
        for number, count in enumerate(chapters, start=1)
    ]


def make_job(
    factory: Factory,
    storage: Storage,
    tmp_path: Path,
    chapters: Sequence[int],
    priority: Priority = Priority.NORMAL,
    tag: str = "",
) -> str:
    return store_job(
        factory, storage, tmp_path, plan(chapters, tag), priority=priority, distributed=True
    )


def reap_at(factory: Factory, now_ms: int) -> Repairs:
    return reap(factory, now_ms, requeue_after_ms=REQUEUE_AFTER_MS)


def test_a_running_segment_whose_lease_lapsed_is_queued_and_sent_again(
    factory: Factory, storage: Storage, tmp_path: Path
) -> None:
    job_id = make_job(factory, storage, tmp_path, [3], Priority.URGENT)
    dead, alive, waiting = segment_ids(factory, job_id)
    assert reap_at(factory, 500) == Repairs()  # nothing to repair
    assert claim_segment(factory, dead, 1_000, 500) is not None  # its worker dies
    assert claim_segment(factory, alive, 1_800, 500) is not None  # lease until 2_300
    repairs = reap_at(factory, 2_000)
    assert repairs == Repairs(segments=[Work(dead, Priority.URGENT)])
    requeued = segment(factory, dead)
    assert (requeued.status, requeued.queued_at_ms, requeued.attempts) == ("queued", 2_000, 1)
    assert segment(factory, alive).status == "running"
    assert segment(factory, waiting).status == "pending"  # the feeder's, not the reaper's
    # the message sent again is claimed by a new worker; the old copy finds it taken
    again = claim_segment(factory, dead, 2_050, 500)
    assert again is not None and again.attempt == 2
    assert claim_segment(factory, dead, 2_060, 500) is None
    assert reap_at(factory, 2_100).segments == []


def test_a_segment_queued_too_long_is_sent_again_and_young_ones_are_left(
    factory: Factory, storage: Storage, tmp_path: Path
) -> None:
    job_id = make_job(factory, storage, tmp_path, [3])
    old_a, old_b, young = segment_ids(factory, job_id)
    assert len(feed(factory, 1_000, max_inflight=2, job_inflight=10)) == 2
    assert len(feed(factory, 8_000, max_inflight=10, job_inflight=10)) == 1
    assert reap_at(factory, 11_000).segments == []  # queued at 1_000: exactly 10 s, not more
    repairs = reap_at(factory, 12_000)
    assert sorted(repairs.segments) == [Work(old_a, Priority.NORMAL), Work(old_b, Priority.NORMAL)]
    assert [segment(factory, s).queued_at_ms for s in (old_a, old_b, young)] == [
        12_000,
        12_000,
        8_000,
    ]
    assert all(segment(factory, s).status == "queued" for s in (old_a, old_b, young))
    assert reap_at(factory, 12_500).segments == []  # the new queued time counts from now
    assert reap_at(factory, 18_001).segments == [Work(young, Priority.NORMAL)]


def test_a_stitch_message_never_taken_is_sent_again(
    factory: Factory, storage: Storage, tmp_path: Path
) -> None:
    job_id = make_job(factory, storage, tmp_path, [1, 1], Priority.BULK)
    first, second = segment_ids(factory, job_id)
    first_chapter, second_chapter = chapter_ids(factory, job_id)
    complete_segment(factory, first, 1_000, reused=False, billed_chars=None)
    complete_segment(factory, second, 5_000, reused=False, billed_chars=None)
    assert reap_at(factory, 11_000) == Repairs()  # claimed exactly 10 s ago: not yet
    repairs = reap_at(factory, 11_001)
    assert repairs.stitches == [Work(first_chapter, Priority.BULK)]
    assert chapter(factory, first_chapter).stitch_enqueued_at_ms == 11_001
    assert chapter(factory, second_chapter).stitch_enqueued_at_ms == 5_000
    assert chapter(factory, first_chapter).status == "stitching"
    assert reap_at(factory, 12_000).stitches == []
    assert reap_at(factory, 15_001).stitches == [Work(second_chapter, Priority.BULK)]


def test_a_stitch_whose_worker_died_is_sent_again_and_a_live_one_is_not(
    factory: Factory, storage: Storage, tmp_path: Path
) -> None:
    job_id = make_job(factory, storage, tmp_path, [1, 1])
    first, second = segment_ids(factory, job_id)
    dead, alive = chapter_ids(factory, job_id)
    complete_segment(factory, first, 1_000, reused=False, billed_chars=None)
    complete_segment(factory, second, 1_000, reused=False, billed_chars=None)
    assert claim_stitch(factory, dead, 2_000, 3_000)  # its worker holds it until 5_000
    assert claim_stitch(factory, alive, 2_000, 3_000)
    assert not claim_stitch(factory, alive, 2_500, 3_000)  # a duplicate message: held
    assert renew_stitch_lease(factory, alive, 60_000)  # this worker's heartbeat goes on
    assert reap_at(factory, 4_000).stitches == []
    assert reap_at(factory, 5_001).stitches == [Work(dead, Priority.NORMAL)]
    assert claim_stitch(factory, dead, 5_100, 3_000)  # another worker takes it over


def test_a_chapter_complete_at_creation_gets_its_stitch_claimed_once(
    factory: Factory, storage: Storage, tmp_path: Path
) -> None:
    for planned in plan([2], tag="reused"):  # audio of every segment already exists
        for seg in planned.segments:
            storage.save_segment(segment_hash(STUB, seg.text, seg.ssml), bytes(400), 22050, [])
    job_id = make_job(factory, storage, tmp_path, [2], tag="reused")
    (chapter_id,) = chapter_ids(factory, job_id)
    assert reap_at(factory, 1_000).stitches == [Work(chapter_id, Priority.NORMAL)]
    claimed = chapter(factory, chapter_id)
    assert (claimed.status, claimed.stitch_enqueued_at_ms) == ("stitching", 1_000)
    assert reap_at(factory, 2_000).stitches == []


def test_a_job_whose_chapters_are_all_final_is_settled(
    factory: Factory, storage: Storage, tmp_path: Path
) -> None:
    done = make_job(factory, storage, tmp_path, [1, 1])
    failed = make_job(factory, storage, tmp_path, [1, 1])
    unfinished = make_job(factory, storage, tmp_path, [1, 1])
    # their last step committed and its worker died before settling the job
    wanted = {
        done: ["done", "done"],
        failed: ["done", "failed"],
        unfinished: ["done", "stitching"],
    }
    chapters = {job_id: chapter_ids(factory, job_id) for job_id in wanted}
    with transaction(factory) as session:
        for job_id, statuses in wanted.items():
            session.execute(update(Job).where(Job.id == job_id).values(status="running"))
            for chapter_id, status in zip(chapters[job_id], statuses, strict=True):
                session.execute(
                    update(Chapter).where(Chapter.id == chapter_id).values(status=status)
                )
    repairs = reap_at(factory, 5_000)
    assert sorted(repairs.settled) == sorted([f"{done}:done", f"{failed}:failed"])
    assert (job(factory, done).status, job(factory, done).finished_at_ms) == ("done", 5_000)
    assert job(factory, failed).status == "failed"
    assert job(factory, unfinished).status == "running"
    assert reap_at(factory, 6_000).settled == []


def test_an_abandoned_segment_of_a_cancelled_job_is_not_sent_again(
    factory: Factory, storage: Storage, tmp_path: Path
) -> None:
    job_id = make_job(factory, storage, tmp_path, [2])
    running, pending = segment_ids(factory, job_id)
    assert claim_segment(factory, running, 1_000, 500) is not None
    assert cancel_job(factory, job_id, 1_200).segments_dropped == 1
    # the worker rendering the running segment dies: nobody wants its audio any more, and
    # the feeder and the stitch repair both leave cancelled jobs alone
    repairs = reap_at(factory, 5_000)
    assert repairs.segments == [] and repairs.cancelled == 1
    assert segment(factory, running).status == "cancelled"  # it holds no in-flight slot
    assert segment(factory, pending).status == "cancelled"
    assert job(factory, job_id).status == "cancelled"
