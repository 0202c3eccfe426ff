"""The distributed mode's entry points for the CLI: submit a document, send a retry, and
start the processes (worker, beat).

``submit`` validates and plans exactly as ``narrate render`` does (nothing is stored when
the input or an option is wrong), stores the job in the shared database, then releases
its first segments to the broker. Workers on any machine do the rest.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from jobs import context as worker_context
from jobs import dispatch, feeder
from jobs.app import CONTROL_QUEUE, app, configure_app, queue_for
from jobs.claims import claim_ready_chapters
from jobs.clock import clock_ms
from jobs.context import Context
from jobs.control import job_status, retry_job
from jobs.creation import JobSummary
from jobs.db import ensure_schema
from jobs.priority import Priority, Work
from jobs.render import RenderRequest, prepare, store_job
from jobs.views import Retried
from narrate.errors import ConfigurationError
from narrate.settings import Settings


def beat_schedule(settings: Settings) -> Path:
    """Beat's state file (last run times of two interval tasks: nothing worth keeping),
    one per broker, so two setups on one machine do not share it."""
    tag = hashlib.sha256((settings.broker_url or "").encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"narrate-beat-{os.getuid()}-{tag}.db"


def connect(settings: Settings) -> Context:
    """The distributed context: a current server schema and a reachable broker."""
    if not settings.broker_url:
        raise ConfigurationError(
            "the distributed mode needs a broker: NARRATE_BROKER_URL is not set",
            hint="e.g. NARRATE_BROKER_URL=redis://127.0.0.1:6379/0 (or use `narrate render`)",
        )
    ensure_schema(settings.database_url)
    configure_app(settings)
    check_broker()
    return worker_context.configure(settings, distributed=True)


def check_broker() -> None:
    """Fail fast, with the fix, when the broker cannot be reached."""
    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=5)
    except Exception as exc:
        raise ConfigurationError(
            f"cannot reach the broker at {app.conf.broker_url}: {exc}",
            hint="check NARRATE_BROKER_URL and that Redis is running",
        ) from None


def submit(
    settings: Settings,
    request: RenderRequest,
    *,
    priority: Priority = Priority.NORMAL,
    allow_partial: bool = False,
) -> JobSummary:
    """Store a job for the workers and release its first segments."""
    prepared = prepare(request)
    ctx = connect(settings)
    summary = store_job(
        ctx, request, prepared, priority=priority, allow_partial=allow_partial, distributed=True
    )
    kick(ctx, summary.job_id, priority)
    return summary


def retry(settings: Settings, job_id: str) -> Retried:
    """Send a job's failed segments and chapters back to the workers; how many of each."""
    ctx = connect(settings)
    retried = retry_job(ctx.factory, job_id)
    kick(ctx, job_id, Priority.parse(job_status(ctx.factory, job_id, clock_ms()).priority))
    return retried


def kick(ctx: Context, job_id: str, priority: Priority) -> None:
    """Send what a job can do now: stitches of chapters already complete, then segments."""
    now = clock_ms()
    ready = claim_ready_chapters(ctx.factory, job_id, now)
    dispatch.send_stitches(Work(chapter_id, priority) for chapter_id in ready.stitch)
    dispatch.send_segments(
        feeder.feed(
            ctx.factory,
            now,
            max_inflight=ctx.settings.max_inflight,
            job_inflight=ctx.settings.job_inflight,
        )
    )


def worker_argv(
    queues: list[Priority],
    concurrency: int,
    loglevel: str,
    hostname: str | None,
    beat_schedule: Path | None = None,
) -> list[str]:
    """Arguments of the Celery worker: the control queue first, then the chosen classes
    in priority order."""
    names = [CONTROL_QUEUE, *(queue_for(p) for p in sorted(set(queues)))]
    argv = [
        "worker",
        f"--queues={','.join(names)}",
        f"--concurrency={concurrency}",
        "--pool=prefork",
        f"--loglevel={loglevel}",
        "--without-mingle",
        "--without-gossip",
        "--task-events",
    ]
    if hostname:
        argv.append(f"--hostname={hostname}")
    if beat_schedule is not None:  # the scheduler inside this worker
        argv += ["--beat", f"--schedule={beat_schedule}"]
    return argv


def run_worker(settings: Settings, argv: list[str], node: str) -> None:
    """Run a Celery worker in this process (it forks its pool after connecting), with its
    housekeeper beside it (:mod:`jobs.housekeeping`: no job stalls when beat is down)."""
    from jobs.housekeeping import start_housekeeper

    connect(settings)
    worker_context.use_distributed_mode()
    keeper = start_housekeeper(settings, node)
    try:
        app.worker_main(argv=argv)
    finally:
        keeper.terminate()
        keeper.join(10)


def run_beat(settings: Settings, loglevel: str) -> None:
    connect(settings)
    app.start(argv=["beat", f"--schedule={beat_schedule(settings)}", f"--loglevel={loglevel}"])
