"""Housekeeping: feeding the backlog and reaping lost work, so that no job waits forever.

Two pieces of work keep a distributed job moving besides the tasks themselves: the
**feeder** (:mod:`jobs.feeder`) releases due segments (retries whose backoff ended, the
next ones of a long book) and the **reaper** (:mod:`jobs.reaper`) re-sends work whose
worker died or whose message was lost. Both are idempotent and safe to run concurrently.

Who runs them: ``narrate beat`` sends them as tasks on its schedule, and, so that a
forgotten or dead beat cannot stall a job, **every worker runs a housekeeper** too, a
small process beside its pool (:func:`run_housekeeper`). The housekeepers share one lease
in the database (the ``housekeeper`` row of ``heartbeats``): the holder feeds every
``NARRATE_FEED_INTERVAL_S`` and reaps every ``NARRATE_REAP_INTERVAL_S``; the others only
say they are alive, and one of them takes over when the holder stops renewing (its
machine died). So jobs progress with workers alone; beat is needed for schedules.

The lease and the workers' signs of life are rows of ``heartbeats``
(:mod:`jobs.heartbeats`), which ``narrate status`` and ``narrate watch`` read too.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading

from jobs import dispatch, feeder, reaper
from jobs.clock import clock_ms
from jobs.context import Context
from jobs.heartbeats import (
    HEARTBEAT_EVERY_MS,
    REAPER,
    forget_gone,
    record_seen,
    release_turn,
    take_turn,
)
from narrate.settings import Settings

log = logging.getLogger(__name__)


# --- the work -------------------------------------------------------------------------


def feed_now(ctx: Context, now_ms: int) -> int:
    """Release due segments from the backlog to the broker; how many were sent."""
    releases = feeder.feed(
        ctx.factory,
        now_ms,
        max_inflight=ctx.settings.max_inflight,
        job_inflight=ctx.settings.job_inflight,
    )
    return dispatch.send_segments(releases)


def reap_now(ctx: Context, now_ms: int) -> reaper.Repairs:
    """Re-send lost or abandoned work, settle finished jobs, and say the reaper ran."""
    repairs = reaper.reap(
        ctx.factory, now_ms, requeue_after_ms=int(ctx.settings.requeue_after_s * 1000)
    )
    if repairs.segments or repairs.stitches or repairs.settled or repairs.cancelled:
        log.warning(
            "reaper: re-sent %d segment(s) and %d stitch(es); settled %s; %d cancelled",
            len(repairs.segments),
            len(repairs.stitches),
            ", ".join(repairs.settled) or "no job",
            repairs.cancelled,
        )
    dispatch.send_segments(repairs.segments)
    dispatch.send_stitches(repairs.stitches)
    record_seen(ctx.factory, REAPER, "reaper", now_ms)
    return repairs


# --- the housekeeper beside each worker ---------------------------------------------------


class Housekeeper:
    """One worker's share of the housekeeping (see the module docstring)."""

    def __init__(self, ctx: Context, node: str) -> None:
        self.ctx = ctx
        self.node = node
        settings = ctx.settings
        self.feed_ms = int(settings.feed_interval_s * 1000)
        self.reap_ms = int(settings.reap_interval_s * 1000)
        #: long enough to survive a slow round or two, short enough to hand over quickly
        self.lease_ms = max(3 * self.feed_ms, 10_000)
        self.seen_ms: int | None = None
        self.reaped_ms: int | None = None

    def tick(self, now_ms: int) -> bool:
        """One round: say this worker is alive, and feed and reap if it holds the lease.
        Returns whether it holds the lease."""
        factory = self.ctx.factory
        if self.seen_ms is None or now_ms - self.seen_ms >= HEARTBEAT_EVERY_MS:
            record_seen(factory, f"worker {self.node}", "worker", now_ms)
            self.seen_ms = now_ms
        if not take_turn(factory, self.node, now_ms, self.lease_ms):
            self.reaped_ms = None  # reap at once when the lease comes back
            return False
        feed_now(self.ctx, now_ms)
        if self.reaped_ms is None or now_ms - self.reaped_ms >= self.reap_ms:
            reap_now(self.ctx, now_ms)
            forget_gone(factory, now_ms)
            self.reaped_ms = now_ms
        return True

    def stop(self) -> None:
        release_turn(self.ctx.factory, self.node)


def run_housekeeper(settings: Settings, node: str, parent_pid: int) -> None:
    """The housekeeper process of worker ``node``: a round every feed interval until the
    worker (``parent_pid``) is gone."""
    from jobs import context as worker_context
    from jobs.app import configure_app

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):  # the worker stopping: hand the lease over
        signal.signal(signum, lambda *_: stop.set())
    configure_app(settings)
    keeper = Housekeeper(worker_context.configure(settings, distributed=True), node)
    while os.getppid() == parent_pid and not stop.is_set():
        try:
            keeper.tick(clock_ms())
        except Exception as exc:  # the database or broker is away: try again next round
            log.warning("housekeeper: %s: %s", type(exc).__name__, exc)
        stop.wait(settings.feed_interval_s)
    try:
        keeper.stop()
    except Exception as exc:  # the lease lapses by itself
        log.info("housekeeper: could not hand the lease over: %s", exc)


def start_housekeeper(settings: Settings, node: str) -> multiprocessing.process.BaseProcess:
    """Start worker ``node``'s housekeeper in a process of its own (spawned, so it shares
    no connection or lock with the worker's forked pool); it ends with the worker."""
    spawn = multiprocessing.get_context("spawn")
    process = spawn.Process(
        target=run_housekeeper,
        args=(settings, node, os.getpid()),
        name=f"narrate-housekeeper {node}",
        daemon=True,
    )
    process.start()
    return process
