"""Celery tasks. Thin: load ids, call pipeline functions, map errors to retry or fail.

The embedded mode runs these same tasks (``Task.apply`` in a process pool, see
:mod:`jobs.local`) and does the fan-in itself from what they return; distributed
workers receive them from the broker and send the follow-up work themselves.

Error mapping for a segment:

* :class:`~narrate.errors.RetryableError` (timeouts, disconnects, 5xx) and a soft time
  limit: back to the backlog after a capped exponential backoff with full jitter
  (:data:`BACKOFF_BASE_S` doubling up to :data:`BACKOFF_CAP_S`); after
  :data:`MAX_RETRIES` the segment fails with the last error.
* waits that are not the segment's fault, back to the backlog without counting a retry:
  a busy throttle, the throttle's Redis unreachable, the provider answering "throttled"
  (a too-small margin or a shared account costs time, not segments).
* :class:`~narrate.errors.FatalError`: the segment fails at once with the error's message.
* anything else is a bug: the segment fails with "internal error".
* a segment whose worker died :data:`MAX_LOST_DELIVERIES` times while rendering it (the
  delivery counter in the database minus its retries) is a poison message: it fails
  instead of killing more workers.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from celery import Task
from celery.exceptions import SoftTimeLimitExceeded

from jobs import claims, clock, dispatch, housekeeping, scheduler, schedules, stitching, synthesis
from jobs.app import app
from jobs.backoff import backoff_s
from jobs.context import Context, context
from jobs.priority import Priority, Work, using_priority
from narrate.errors import (
    FatalError,
    NarrateError,
    ProviderThrottledError,
    RetryableError,
    ThrottleBusyError,
    ThrottleUnavailableError,
)

log = logging.getLogger(__name__)

#: 8 retries wait up to 2+4+...+256 s, about 4 minutes on average: a provider or network
#: outage of a few minutes fails nothing
MAX_RETRIES = 8
BACKOFF_BASE_S = 2.0
BACKOFF_CAP_S = 300.0
MAX_LOST_DELIVERIES = 5
#: a wait that is not the segment's fault sends it back for up to this long
THROTTLE_BACKOFF_S = 5.0
_NOT_COUNTED = (ThrottleBusyError, ThrottleUnavailableError, ProviderThrottledError)


@app.task(bind=True, name="narrate.synthesize_segment", acks_late=True)  # type: ignore[untyped-decorator]
def synthesize_segment(self: Task, segment_id: int) -> dict[str, Any]:
    """Synthesize one segment; returns its :class:`~jobs.claims.FollowUp` as a dict."""
    ctx = context()
    claim = claims.claim_segment(ctx.factory, segment_id, clock.clock_ms(), ctx.settings.lease_ms)
    if claim is None:
        return claims.FollowUp("skipped").to_dict()
    lost = claim.attempt - 1 - claim.retries  # earlier deliveries that ended in no result
    if lost >= MAX_LOST_DELIVERIES:
        follow = claims.fail_segment(
            ctx.factory,
            segment_id,
            f"gave up: a worker died {lost} times while rendering this segment (out of "
            "memory? an engine crash?); check the worker logs, then `narrate retry` the job",
            clock.clock_ms(),
        )
    else:
        follow = _render(ctx, claim)
    _follow_up(ctx, follow, claim.priority)
    return follow.to_dict()


def _render(ctx: Context, claim: claims.Claim) -> claims.FollowUp:
    factory, segment_id = ctx.factory, claim.segment_id
    try:
        renew = functools.partial(claims.renew_lease, factory, claim)
        with (
            _lease(ctx, f"segment {segment_id}", renew),
            using_priority(claim.priority, claim.job_id),
        ):
            reused, billed = synthesis.render_claimed(ctx.storage, ctx.engine, claim)
    except _NOT_COUNTED as exc:
        log.warning("segment %s: %s", segment_id, exc.message)
        retry_at = clock.clock_ms() + int(backoff_s(0, base_s=THROTTLE_BACKOFF_S) * 1000)
        return claims.defer_segment(factory, claim, exc.message, retry_at, count=False)
    except (RetryableError, SoftTimeLimitExceeded) as exc:
        reason = str(exc) or "the segment took longer than its time limit"
        if claim.retries >= MAX_RETRIES:
            message = f"gave up after {claim.retries + 1} attempts: {reason}"
            return claims.fail_segment(factory, segment_id, message, clock.clock_ms())
        delay_s = backoff_s(claim.retries, base_s=BACKOFF_BASE_S, cap_s=BACKOFF_CAP_S)
        log.warning("segment %s: %s; retrying in %.1f s", segment_id, reason, delay_s)
        retry_at = clock.clock_ms() + int(delay_s * 1000)
        return claims.defer_segment(factory, claim, reason, retry_at)
    except FatalError as exc:
        return claims.fail_segment(factory, segment_id, str(exc), clock.clock_ms())
    except Exception as exc:
        log.exception("segment %s: unexpected error", segment_id)
        message = f"internal error ({type(exc).__name__}: {exc})"
        return claims.fail_segment(factory, segment_id, message, clock.clock_ms())
    return claims.complete_segment(
        factory, segment_id, clock.clock_ms(), reused=reused, billed_chars=billed
    )


@contextmanager
def _lease(ctx: Context, what: str, renew: Callable[[int], bool]) -> Iterator[None]:
    """Renew a lease every third of it while the block runs (a heartbeat): a worker that
    dies stops renewing, and the reaper hands the work to another. ``renew(until_ms)``."""
    lease_ms = ctx.settings.lease_ms
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(lease_ms / 3000):
            try:
                renew(clock.clock_ms() + lease_ms)
            except Exception as exc:  # the database is away: the lease may lapse, that is safe
                log.warning("%s: could not renew its lease: %s", what, exc)

    thread = threading.Thread(target=beat, name=f"lease-{what}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


@app.task(name="narrate.stitch_chapter", acks_late=True)  # type: ignore[untyped-decorator]
def stitch_chapter(chapter_id: int) -> dict[str, Any]:
    """Stitch one chapter whose segments are all final."""
    ctx = context()
    if not stitching.claim_stitch(ctx.factory, chapter_id, clock.clock_ms(), ctx.settings.lease_ms):
        return claims.FollowUp("skipped").to_dict()  # stitched, reset, or held by a live worker
    renew = functools.partial(stitching.renew_stitch_lease, ctx.factory, chapter_id)
    try:
        with _lease(ctx, f"chapter {chapter_id}", renew):
            follow = stitching.stitch_chapter(ctx.factory, ctx.storage, chapter_id)
    except NarrateError as exc:
        follow = stitching.fail_chapter(ctx.factory, chapter_id, str(exc))
    except Exception as exc:
        log.exception("chapter %s: unexpected error while stitching", chapter_id)
        follow = stitching.fail_chapter(
            ctx.factory, chapter_id, f"internal error ({type(exc).__name__}: {exc})"
        )
    if follow.settled:
        log.info("chapter %s: its job is now %s", chapter_id, follow.settled)
    return follow.to_dict()


@app.task(name="narrate.feed", ignore_result=True)  # type: ignore[untyped-decorator]
def feed() -> int:
    """Release due segments from the database backlog to the broker (beat, every ~2 s)."""
    return housekeeping.feed_now(context(), clock.clock_ms())


@app.task(name="narrate.reap", ignore_result=True)  # type: ignore[untyped-decorator]
def reap() -> dict[str, int]:
    """Re-send lost or abandoned work and settle finished jobs (beat, every ~15 s)."""
    ctx = context()
    repairs = housekeeping.reap_now(ctx, clock.clock_ms())
    fed = housekeeping.feed_now(ctx, clock.clock_ms())
    return {"segments": len(repairs.segments), "stitches": len(repairs.stitches), "fed": fed}


def _follow_up(ctx: Context, follow: claims.FollowUp, priority: Priority) -> None:
    """Distributed mode: send the stitches this step claimed, then release more segments."""
    if not ctx.distributed:
        return  # the embedded executor does its own fan-in from the returned follow-up
    dispatch.send_stitches(Work(chapter_id, priority) for chapter_id in follow.stitch)
    housekeeping.feed_now(ctx, clock.clock_ms())


@app.task(name="narrate.check_schedules", ignore_result=True)  # type: ignore[untyped-decorator]
def check_schedules() -> int:
    """Claim the schedules' due slots and send each bulletin to the urgent queue (beat,
    every minute)."""
    ctx = context()
    claimed = schedules.claim_due(ctx.factory, datetime.now(UTC))
    return dispatch.send_bulletins(Work(c.run_id, Priority.URGENT) for c in claimed)


@app.task(name="narrate.run_bulletin", ignore_result=True)  # type: ignore[untyped-decorator]
def run_bulletin(run_id: int) -> None:
    """Render one scheduled bulletin in this worker process (serially: it may not start
    processes of its own)."""
    ctx = context()
    scheduler.run_claimed(ctx.settings, ctx.factory, run_id, serially=True)
