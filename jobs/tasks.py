"""Celery tasks. Thin: load ids, call one pipeline function, map errors to retry or fail.

The embedded mode runs these same tasks (``Task.apply`` in a process pool, see
:mod:`jobs.local`); distributed workers receive them from the broker.
"""

from __future__ import annotations

import logging
import time

from celery import Task

from jobs import pipeline
from jobs.app import app
from jobs.backoff import backoff_s
from jobs.context import context
from narrate.errors import FatalError, NarrateError, RetryableError

log = logging.getLogger(__name__)

MAX_RETRIES = 5


@app.task(bind=True, name="narrate.synthesize_segment", max_retries=MAX_RETRIES)  # type: ignore[untyped-decorator]
def synthesize_segment(self: Task, segment_id: int) -> str:
    """Synthesize one segment; returns its status ("done" or "failed")."""
    ctx = context()
    try:
        return pipeline.synthesize_segment(ctx.factory, ctx.storage, ctx.engine, segment_id)
    except RetryableError as exc:
        retries = self.request.retries or 0
        if retries >= MAX_RETRIES:
            message = f"gave up after {retries + 1} attempts: {exc}"
            pipeline.fail_segment(ctx.factory, segment_id, message)
            return "failed"
        countdown = backoff_s(retries)
        log.warning("segment %s: %s; retrying in %.1f s", segment_id, exc, countdown)
        if self.request.is_eager:  # Celery ignores countdown when running eagerly
            time.sleep(countdown)
        raise self.retry(exc=exc, countdown=countdown) from exc
    except FatalError as exc:
        pipeline.fail_segment(ctx.factory, segment_id, str(exc))
        return "failed"
    except Exception as exc:
        log.exception("segment %s: unexpected error", segment_id)
        pipeline.fail_segment(
            ctx.factory, segment_id, f"internal error ({type(exc).__name__}: {exc})"
        )
        return "failed"


@app.task(name="narrate.stitch_chapter")  # type: ignore[untyped-decorator]
def stitch_chapter(chapter_id: int) -> str:
    """Stitch one chapter whose segments are all done."""
    ctx = context()
    try:
        pipeline.stitch_chapter(ctx.factory, ctx.storage, chapter_id)
    except NarrateError as exc:
        pipeline.fail_chapter(ctx.factory, chapter_id, str(exc))
        return "failed"
    except Exception as exc:
        log.exception("chapter %s: unexpected error while stitching", chapter_id)
        pipeline.fail_chapter(
            ctx.factory, chapter_id, f"internal error ({type(exc).__name__}: {exc})"
        )
        return "failed"
    return "done"
