"""Heartbeats: which workers are alive, when lost work was last looked for, and the lease
under which one worker's housekeeper feeds and reaps (:mod:`jobs.housekeeping`).

Rows of the ``heartbeats`` table: ``worker <node>`` (``seen_ms``: its last sign of life),
``reaper`` (when lost work was last looked for, by any process) and ``housekeeper`` (the
lease: which worker feeds and reaps now, until ``lease_until_ms``). ``narrate status`` and
``narrate watch`` read them to say when a job waits for a worker nobody started
(:func:`advice`, pure).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from jobs.db import Factory, transaction
from jobs.models import Heartbeat

HOUSEKEEPER = "housekeeper"
REAPER = "reaper"
#: how often a worker says it is alive
HEARTBEAT_EVERY_MS = 10_000
#: a worker not seen for this long is taken for gone
STALE_AFTER_MS = 60_000
#: rows of workers gone this long are deleted
FORGET_AFTER_MS = 24 * 3600 * 1000


def record_seen(factory: Factory, name: str, role: str, now_ms: int) -> None:
    """Say that ``name`` (a worker, beat, the reaper) is alive at ``now_ms``."""
    with transaction(factory) as session:
        updated = session.execute(
            update(Heartbeat).where(Heartbeat.name == name).values(seen_ms=now_ms, role=role)
        )
        if updated.rowcount:  # type: ignore[attr-defined]
            return
    try:
        with transaction(factory) as session:
            session.add(Heartbeat(name=name, role=role, seen_ms=now_ms))
    except IntegrityError:  # inserted meanwhile by another process: it is recent enough
        pass


def take_turn(factory: Factory, holder: str, now_ms: int, lease_ms: int) -> bool:
    """Take or renew the housekeeping lease; True when ``holder`` has it until
    ``now + lease``. One guarded UPDATE: a lease that has not lapsed stays its holder's."""
    with transaction(factory) as session:
        taken = session.execute(
            update(Heartbeat)
            .where(
                Heartbeat.name == HOUSEKEEPER,
                or_(
                    Heartbeat.lease_until_ms.is_(None),
                    Heartbeat.lease_until_ms < now_ms,
                    Heartbeat.holder == holder,
                ),
            )
            .values(holder=holder, lease_until_ms=now_ms + lease_ms, seen_ms=now_ms)
        )
        if taken.rowcount:  # type: ignore[attr-defined]
            return True
        if session.get(Heartbeat, HOUSEKEEPER) is not None:
            return False
    try:
        with transaction(factory) as session:
            session.add(
                Heartbeat(
                    name=HOUSEKEEPER,
                    role="lease",
                    seen_ms=now_ms,
                    holder=holder,
                    lease_until_ms=now_ms + lease_ms,
                )
            )
    except IntegrityError:
        return False
    return True


def release_turn(factory: Factory, holder: str) -> None:
    """Give the lease up at once (a worker stopping politely), if ``holder`` has it."""
    with transaction(factory) as session:
        session.execute(
            update(Heartbeat)
            .where(Heartbeat.name == HOUSEKEEPER, Heartbeat.holder == holder)
            .values(lease_until_ms=None)
        )


def forget_gone(factory: Factory, now_ms: int) -> int:
    """Delete the rows of workers and beats not seen for a day."""
    with transaction(factory) as session:
        result = session.execute(
            delete(Heartbeat).where(
                Heartbeat.role.in_(["worker", "beat"]),
                Heartbeat.seen_ms < now_ms - FORGET_AFTER_MS,
            )
        )
    return int(result.rowcount)  # type: ignore[attr-defined]


# --- who is alive -------------------------------------------------------------------------


@dataclass(frozen=True)
class Liveness:
    """What the heartbeats say at ``now_ms``."""

    now_ms: int
    #: workers seen within :data:`STALE_AFTER_MS`
    workers: int
    #: the last time any worker was seen (None: never)
    worker_seen_ms: int | None
    #: the last time the reaper ran (None: never)
    reaper_seen_ms: int | None


def liveness(factory: Factory, now_ms: int) -> Liveness:
    with transaction(factory) as session:
        recent = session.scalar(
            select(func.count())
            .select_from(Heartbeat)
            .where(Heartbeat.role == "worker", Heartbeat.seen_ms >= now_ms - STALE_AFTER_MS)
        )
        last_worker = session.scalar(
            select(func.max(Heartbeat.seen_ms)).where(Heartbeat.role == "worker")
        )
        reaper_row = session.get(Heartbeat, REAPER)
    return Liveness(
        now_ms=now_ms,
        workers=int(recent or 0),
        worker_seen_ms=last_worker,
        reaper_seen_ms=reaper_row.seen_ms if reaper_row is not None else None,
    )


def advice(alive: Liveness, reap_interval_s: float) -> str | None:
    """What to tell the user about a distributed job that is not finished (pure): None
    when workers are alive and lost work is looked for."""
    if alive.workers == 0:
        if alive.worker_seen_ms is None:
            since = "no worker has ever run on this database"
        else:
            since = f"no worker has been seen for {_ago(alive.now_ms - alive.worker_seen_ms)}"
        return (
            f"{since}: the job waits until one runs; start `narrate worker` on a machine "
            "that shares this database, broker and storage"
        )
    stale_ms = max(STALE_AFTER_MS, int(3 * reap_interval_s * 1000))
    if alive.reaper_seen_ms is None or alive.now_ms - alive.reaper_seen_ms > stale_ms:
        last = (
            "never"
            if alive.reaper_seen_ms is None
            else f"{_ago(alive.now_ms - alive.reaper_seen_ms)} ago"
        )
        return (
            f"lost work was last looked for {last}: the workers' housekeepers are not "
            "running; check the worker logs, or run `narrate beat`"
        )
    return None


def _ago(ms: int) -> str:
    seconds = max(0, ms // 1000)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h"
