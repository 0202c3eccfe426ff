"""Following a job until it ends (``narrate watch``, the web page's live progress).

:func:`follow` yields the job's status every ``interval_s`` until it is final; the clock
and the sleep are passed in, so callers (and tests) choose how time passes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from jobs.control import job_status
from jobs.db import Factory
from jobs.local import Progress
from jobs.views import JobView


def follow(
    factory: Factory,
    job_id: str,
    *,
    now_ms: Callable[[], int],
    sleep: Callable[[float], None],
    interval_s: float = 1.0,
    reap_interval_s: float = 15.0,
) -> Iterator[JobView]:
    """The job's status now, then after every ``interval_s``, the last one final."""
    while True:
        view = job_status(factory, job_id, now_ms(), reap_interval_s=reap_interval_s)
        yield view
        if view.final:
            return
        sleep(interval_s)


def progress_of(view: JobView) -> Progress:
    """What a progress bar shows of a status."""
    return Progress(
        view.segments.finished,
        view.segments.total,
        view.chapters_finished,
        len(view.chapters),
    )


def succeeded(view: JobView) -> bool:
    """A job that ended as asked: done, or partial (``--partial`` asked for gaps)."""
    return view.status in ("done", "partial")
