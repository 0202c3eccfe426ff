"""The embedded executor: runs a job's Celery tasks in a local process pool, no services.

Why a process pool rather than a Celery worker on a local transport: the embedded mode
must work with nothing but Python installed, start instantly and stop with the command.
A pool of ``workers`` processes (one per core by default) runs the very same task
functions through ``Task.apply`` (eager execution: same code, same retry and failure
handling), while this process keeps the fan-in: a chapter is stitched as soon as its last
segment is done, ahead of further synthesis, so encoding overlaps synthesis.
"""

from __future__ import annotations

import heapq
import logging
import multiprocessing
import os
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass

from sqlalchemy import select

from jobs import context as worker_context
from jobs.backoff import backoff_s
from jobs.claims import (
    FollowUp,
    claim_ready_chapters,
    claim_segment,
    complete_segment,
    defer_segment,
    fail_segment,
)
from jobs.clock import clock_ms
from jobs.db import Factory, transaction
from jobs.models import Segment, SegmentStatus
from jobs.settling import finish_job
from jobs.stitching import claim_stitch, fail_chapter, stitch_chapter
from jobs.storage import Storage
from jobs.synthesis import render_claimed
from narrate.errors import FatalError, NarrateError, RetryableError
from narrate.settings import Settings
from renderer.engine import Engine


@dataclass(frozen=True)
class Progress:
    segments_done: int
    segments_total: int
    chapters_done: int
    chapters_total: int


ProgressCallback = Callable[[Progress], None]


def _init_worker(settings: Settings, quiet: bool) -> None:
    _quiet_logging(quiet)
    worker_context.configure(settings)


class _BriefFormatter(logging.Formatter):
    """One line per record; tracebacks only with NARRATE_DEBUG (they reach the user's
    terminal, and the failure is reported with its reason anyway)."""

    def format(self, record: logging.LogRecord) -> str:
        if os.environ.get("NARRATE_DEBUG"):
            return super().format(record)
        return f"narrate: {record.getMessage()}"


def _quiet_logging(quiet: bool) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(_BriefFormatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.ERROR if quiet else logging.WARNING)


def _run(task_name: str, item_id: int) -> FollowUp:
    from jobs import tasks

    task = {"segment": tasks.synthesize_segment, "stitch": tasks.stitch_chapter}[task_name]
    result = task.apply(args=(item_id,))
    if result.failed():
        raise result.result
    return FollowUp.from_dict(result.result)


def run_job(
    settings: Settings,
    factory: Factory,
    job_id: str,
    *,
    workers: int,
    on_progress: ProgressCallback | None = None,
    quiet: bool = False,
) -> str:
    """Run every pending segment and stitch of ``job_id``; returns the job's final status.

    The fan-in is the database's (:mod:`jobs.claims`): each finished segment task says
    which chapter stitch it claimed, and this process schedules it; a segment sent back
    with a retry time is submitted again when it is due.
    """
    with transaction(factory) as session:
        rows = session.execute(
            select(Segment.id, Segment.chapter_id, Segment.status)
            .where(Segment.job_id == job_id)
            .order_by(Segment.chapter_id, Segment.index)
        ).all()
    chapter_ids = list(dict.fromkeys(chapter_id for _id, chapter_id, _s in rows))
    pending = deque(sid for sid, _cid, status in rows if status != SegmentStatus.DONE)
    stitches = deque(claim_ready_chapters(factory, job_id, clock_ms()).stitch)
    retries: list[tuple[int, int]] = []  # heap of (due epoch ms, segment id)
    total = len(rows)
    done = total - len(pending)
    chapters_done = 0

    def report() -> None:
        if on_progress:
            on_progress(Progress(done, total, chapters_done, len(chapter_ids)))

    report()
    spawn = multiprocessing.get_context("spawn")
    inflight: dict[Future[FollowUp], tuple[str, int]] = {}
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=spawn,
        initializer=_init_worker,
        initargs=(settings, quiet),
    ) as pool:
        try:
            while pending or stitches or inflight or retries:
                while retries and retries[0][0] <= clock_ms():
                    pending.append(heapq.heappop(retries)[1])
                while len(inflight) < workers + 1 and (pending or stitches):
                    if stitches:  # stitching first: encoding then overlaps synthesis
                        kind, item = "stitch", stitches.popleft()
                    else:
                        kind, item = "segment", pending.popleft()
                    inflight[pool.submit(_run, kind, item)] = (kind, item)
                timeout = max(0.0, (retries[0][0] - clock_ms()) / 1000) if retries else None
                if not inflight:
                    time.sleep(timeout or 0)
                    continue
                finished, _ = wait(inflight, timeout=timeout, return_when=FIRST_COMPLETED)
                for future in finished:
                    kind, item = inflight.pop(future)
                    follow = future.result()
                    stitches.extend(follow.stitch)
                    if kind == "stitch":
                        chapters_done += 1
                    elif follow.retry_at_ms is not None:
                        heapq.heappush(retries, (follow.retry_at_ms, item))
                    else:
                        done += 1
                    report()
        except BaseException:
            # an interrupt may have reached only this process: stop the workers too, or
            # leaving the with-block would wait for them forever
            for process in list(getattr(pool, "_processes", {}).values()):
                process.terminate()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    return finish_job(factory, job_id)


def run_serially(
    factory: Factory, storage: Storage, engine_for: Callable[[str], Engine], job_id: str
) -> str:
    """Run a job's segments and stitches one after another in this process, with no pool
    and no broker (a bulletin inside a worker, whose process may not start others);
    transient errors are tried again a few times. Returns the job's final status."""
    with transaction(factory) as session:
        pending = list(
            session.scalars(
                select(Segment.id)
                .where(Segment.job_id == job_id, Segment.status != SegmentStatus.DONE)
                .order_by(Segment.chapter_id, Segment.index)
            )
        )
    stitches = list(claim_ready_chapters(factory, job_id, clock_ms()).stitch)
    for segment_id in pending:
        for attempt in range(1, SERIAL_ATTEMPTS + 1):
            claim = claim_segment(factory, segment_id, clock_ms(), SERIAL_LEASE_MS)
            if claim is None:  # done meanwhile, or held by a live worker
                break
            try:
                reused, billed = render_claimed(storage, engine_for, claim)
            except RetryableError as exc:
                if attempt < SERIAL_ATTEMPTS:
                    defer_segment(factory, claim, str(exc), clock_ms())
                    time.sleep(backoff_s(attempt - 1, base_s=1.0, cap_s=10.0))
                    continue
                follow = fail_segment(factory, segment_id, str(exc), clock_ms())
            except FatalError as exc:
                follow = fail_segment(factory, segment_id, str(exc), clock_ms())
            else:
                follow = complete_segment(
                    factory, segment_id, clock_ms(), reused=reused, billed_chars=billed
                )
            stitches += follow.stitch
            break
    for chapter_id in stitches:
        if claim_stitch(factory, chapter_id, clock_ms(), SERIAL_LEASE_MS):
            try:
                stitch_chapter(factory, storage, chapter_id)
            except NarrateError as exc:
                fail_chapter(factory, chapter_id, str(exc))
    return finish_job(factory, job_id)


#: tries of a segment that meets transient errors in :func:`run_serially`
SERIAL_ATTEMPTS = 3
SERIAL_LEASE_MS = 10 * 60 * 1000
