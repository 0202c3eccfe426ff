"""Distributed-mode commands: ``worker``, ``beat``, ``submit``, ``status``, ``watch``,
``jobs``, ``cancel``, ``retry`` and ``fetch``.

``worker``, ``beat``, ``submit`` and ``retry`` need ``NARRATE_BROKER_URL`` (Redis), and
all of them the shared ``NARRATE_DATABASE_URL`` (PostgreSQL) and ``NARRATE_STORAGE_DIR``;
``status``, ``watch``, ``jobs``, ``cancel`` and ``fetch`` only read and write the
database, so they also work on the jobs of the embedded ``narrate render``. Exit codes
as everywhere: 0 success, 1 the job failed (``watch``), 2 bad usage or configuration.
"""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from narrate.options import read_along_option

if TYPE_CHECKING:
    from jobs.views import JobView


def register(cli: click.Group, render: click.Command) -> None:
    """Add the commands to ``cli``; ``submit`` takes every option ``render`` takes."""
    submit_command = _submit_command(render)
    for command in (worker, beat, submit_command, status, watch, jobs, cancel, retry, fetch):
        if command.name not in cli.commands:
            cli.add_command(command)


def _settings() -> Any:
    from narrate.settings import Settings

    return Settings.from_env()


def _factory() -> Any:
    """Sessions on the configured database (no broker needed: status, jobs, cancel, ...
    work for embedded renders too)."""
    from narrate.cli import open_database

    return open_database().factory


def _now_ms() -> int:
    from jobs.clock import clock_ms

    return clock_ms()


# --- processes ------------------------------------------------------------------------


@click.command()
@click.option(
    "--queues",
    default="urgent,normal,bulk",
    show_default=True,
    help="Priority classes this worker serves (the control queue is always served).",
)
@click.option(
    "--concurrency", "-c", type=click.IntRange(min=1), help="Worker slots (default: CPU cores)."
)
@click.option("--loglevel", default="info", show_default=True)
@click.option("--hostname", "-n", help="Node name (default: narrate@<host>.<pid>).")
@click.option(
    "--beat",
    "with_beat",
    is_flag=True,
    help="Also run the scheduler in this worker (one machine; never on more than one).",
)
def worker(
    queues: str,
    concurrency: int | None,
    loglevel: str,
    hostname: str | None,
    with_beat: bool,
) -> None:
    """Run a Celery worker: synthesize segments, stitch chapters, feed and reap.

    A prefork pool of --concurrency processes: hard time limits can stop a hung engine
    call only in a process of its own.
    """
    import os

    # SIGTERM (a supervisor's stop) becomes Celery's cold shutdown, which honours the soft
    # shutdown timeout and gives unfinished messages back at once instead of waiting for
    # the running tasks (a throttled one could wait minutes); read when billiard loads
    os.environ.setdefault("REMAP_SIGTERM", "SIGQUIT")
    from jobs.priority import Priority
    from jobs.submit import beat_schedule, run_worker, worker_argv

    classes = [Priority.parse(name) for name in queues.split(",") if name.strip()]
    settings = _settings()
    node = hostname or f"narrate@{socket.gethostname()}.{os.getpid()}"
    schedule = beat_schedule(settings) if with_beat else None
    argv = worker_argv(classes, concurrency or settings.workers, loglevel, node, schedule)
    run_worker(settings, argv, node)


@click.command()
@click.option("--loglevel", default="info", show_default=True)
def beat(loglevel: str) -> None:
    """Run the scheduler: bulletin schedules, and (with a broker) feeding and reaping.

    Without NARRATE_BROKER_URL it runs the bulletin schedules itself, on this machine, on
    the embedded database (SQLite is enough)."""
    settings = _settings()
    if settings.broker_url is None:
        import logging

        from jobs.scheduler import run_forever

        logging.basicConfig(level=loglevel.upper(), format="narrate beat: %(message)s")
        click.echo("narrate beat: no broker: running bulletin schedules on this machine", err=True)
        run_forever(settings)
        return
    from jobs.submit import run_beat

    run_beat(settings, loglevel)


# --- submit ---------------------------------------------------------------------------


def _submit_command(render: click.Command) -> click.Command:
    """``submit`` is ``render`` without --out, plus --priority and --partial."""
    params = [p for p in render.params if p.name not in ("out_dir", "quiet", "as_json")]
    params += [
        click.Option(
            ["--priority"],
            type=click.Choice(["urgent", "normal", "bulk"]),
            default="normal",
            show_default=True,
            help="urgent (bulletins) overtakes normal, which overtakes bulk.",
        ),
        click.Option(
            ["--partial", "allow_partial"],
            is_flag=True,
            help="If segments fail, stitch what exists with silent gaps (job ends 'partial').",
        ),
    ]
    return click.Command(
        "submit",
        callback=_submit,
        params=params,
        help="Queue INPUT for the workers; prints the job id alone on its last line.",
    )


def _submit(priority: str, allow_partial: bool, **options: Any) -> None:
    from jobs.priority import Priority
    from jobs.submit import submit
    from narrate.cli import render_request

    request = render_request(**options)
    summary = submit(
        _settings(), request, priority=Priority.parse(priority), allow_partial=allow_partial
    )
    skipped = f"; skipped {', '.join(summary.skipped)}" if summary.skipped else ""
    click.echo(
        f"submitted: {summary.chapters} chapters, {summary.segments_total} segments "
        f"({summary.segments_reused} already rendered), priority {priority}{skipped}",
        err=True,
    )
    if summary.cost is not None:
        click.echo(f"against what is rendered: {summary.cost.summary()}", err=True)
    for warning in summary.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(summary.job_id)


# --- following a job ------------------------------------------------------------------


@click.command()
@click.argument("job_id", metavar="JOB")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def status(job_id: str, as_json: bool) -> None:
    """Show a job's progress per chapter, failed segments with their reasons, and an ETA."""
    from jobs.control import job_status
    from jobs.serialize import dumps

    view = job_status(_factory(), job_id, _now_ms(), reap_interval_s=_settings().reap_interval_s)
    if as_json:
        click.echo(dumps(view))
        return
    click.echo(_status_text(view))


def _status_text(view: JobView) -> str:
    seg = view.segments
    lines = [
        f"job {view.job}: {view.status} ({view.priority}) {view.title or ''}".rstrip(),
        f"  segments: {seg.done}/{seg.total} done, {seg.failed} failed, "
        f"{seg.running} running, {seg.queued} queued, {seg.pending} waiting"
        + (f"; about {_duration(view.eta_s)} left" if view.eta_s else ""),
    ]
    if view.error:
        lines.append(f"  {view.error}")
    if view.attention:
        lines.append(f"  attention: {view.attention}")
    for chapter in view.chapters:
        gaps = f", {len(chapter.gaps)} gap(s)" if chapter.gaps else ""
        lines.append(
            f"  {chapter.index:3d}. {chapter.title[:40]:40s} {chapter.status:9s} "
            f"{chapter.segments_done}/{chapter.segments_total}{gaps}"
        )
    for failure in view.failures:
        lines.append(f"  failed: {failure.where}: {failure.error}")
    for item in view.retrying:
        lines.append(
            f"  retrying: chapter {item.chapter}, segment {item.segment} "
            f"(retry {item.retries}): {item.error}"
        )
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


@click.command()
@click.argument("job_id", metavar="JOB")
@click.option("--interval", type=float, default=1.0, show_default=True, help="Seconds.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar; just the exit code.")
def watch(job_id: str, interval: float, quiet: bool) -> None:
    """Show a progress bar until JOB ends: exit 0 when it is done (or partial, as --partial
    asked), 1 when it failed or was cancelled."""
    from jobs.models import JobStatus
    from jobs.watching import follow, progress_of, succeeded
    from narrate.progress import ProgressPrinter

    printer = ProgressPrinter(enabled=not quiet)
    shown: str | None = None
    views = follow(
        _factory(),
        job_id,
        now_ms=_now_ms,
        sleep=time.sleep,
        interval_s=interval,
        reap_interval_s=_settings().reap_interval_s,
    )
    for view in views:
        if view.attention != shown:  # say it once, when it appears or changes
            shown = view.attention
            if shown:
                printer.note(f"attention: {shown}")
        printer.update(progress_of(view))
    printer.close()
    if view.status == JobStatus.PARTIAL:  # what --partial asked for: gaps are listed
        click.echo(_status_text(view), err=True)
        click.echo(f"job {job_id}: partial (silent gaps where segments failed)", err=True)
        return
    if not succeeded(view):
        click.echo(_status_text(view), err=True)
        sys.exit(1)
    click.echo(f"job {job_id}: done", err=True)


@click.command("jobs")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def jobs(limit: int, as_json: bool) -> None:
    """List the newest jobs with their status and progress."""
    from jobs.control import list_jobs
    from jobs.serialize import dumps

    rows = list_jobs(_factory(), limit)
    if as_json:
        click.echo(dumps(rows))
        return
    for row in rows:
        click.echo(
            f"{row.job}  {row.status:9s} {row.priority:6s} "
            f"{row.segments_done:5d}/{row.segments_total:<5d} {(row.title or '')[:40]}"
        )


@click.command()
@click.argument("job_id", metavar="JOB")
def cancel(job_id: str) -> None:
    """Cancel JOB: segments not started are dropped; running ones finish."""
    from jobs.control import cancel_job

    cancelled = cancel_job(_factory(), job_id, _now_ms())
    click.echo(f"job {job_id}: cancelled ({cancelled.segments_dropped} segments dropped)")


@click.command()
@click.argument("job_id", metavar="JOB")
def retry(job_id: str) -> None:
    """Render JOB's failed segments again (done segments are kept)."""
    from jobs.submit import retry as send_retry

    retried = send_retry(_settings(), job_id)
    click.echo(
        f"job {job_id}: {retried.segments} failed segment(s) and {retried.chapters} chapter(s) "
        "to stitch sent back to the workers"
    )


@click.command()
@click.argument("job_id", metavar="JOB")
@click.option(
    "--out", "out_dir", required=True, type=click.Path(path_type=Path), help="Output folder."
)
@read_along_option("Also write the read-along EPUB (even if the job was made without --read-along)")
def fetch(job_id: str, out_dir: Path, read_along: str | None) -> None:
    """Write a finished JOB's files and manifest into --out, as `render` writes them."""
    from jobs.export import caption_warning_lines, export_job
    from jobs.render import check_out_dir
    from narrate.cli import open_database

    ctx = open_database()
    check_out_dir(out_dir)
    manifest = export_job(ctx.factory, ctx.storage, job_id, out_dir, read_along=read_along)
    for line in caption_warning_lines(manifest):
        click.echo(f"warning: {line}", err=True)
    click.echo(f"job {job_id}: wrote {out_dir / 'manifest.json'}")
