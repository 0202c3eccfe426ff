"""Bulletin schedules: which slots are due, each run once, in its own time zone.

Times are kept in UTC; each schedule's cron expression is read in its own IANA time zone
(cronsim), so "0 18 * * *" in Europe/London is 18:00 London time on every day, on both
daylight-saving change days: once on the short day, once on the long one (a local time
that does not exist runs when the clocks have jumped over it; one that happens twice runs
the first time).

:func:`due_slots` (pure, the clock passed in) lists the slots after the last one
considered, up to now: the newest within the grace period is to run, older ones were
missed (beat was down) and are recorded as such. :func:`claim_due` makes each slot a row
of ``schedule_runs`` with a unique key on (schedule, slot): of two beats, or a beat and its
restart, only the one whose insert succeeds runs it.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass
from pathlib import Path

from cronsim import CronSim
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from jobs.db import Factory, transaction
from jobs.models import Schedule, ScheduleRun
from narrate.errors import UsageError
from ssml.bulletin import Definition, parse_definition

#: a slot this late still runs; later, it is recorded as missed
GRACE = dt.timedelta(minutes=15)
#: at most this many slots are looked at in one check (a beat down for months)
MAX_SLOTS = 500


@dataclass(frozen=True)
class Slot:
    at: dt.datetime  # UTC
    run: bool  # False: missed


def due_slots(
    cron: str, timezone: str, after: dt.datetime, now: dt.datetime, grace: dt.timedelta = GRACE
) -> list[Slot]:
    """The slots in ``(after, now]``: the newest within ``grace`` runs, the rest are missed."""
    zone = zoneinfo.ZoneInfo(timezone)
    slots: list[dt.datetime] = []
    for local in CronSim(cron, after.astimezone(zone)):
        at = local.astimezone(dt.UTC)
        if at > now:
            break
        if at > after:
            slots.append(at)
        if len(slots) >= MAX_SLOTS:
            break
    if not slots:
        return []
    newest = slots[-1]
    runs = now - newest <= grace
    return [Slot(at, run=runs and at == newest) for at in slots]


def next_slot(cron: str, timezone: str, after: dt.datetime) -> dt.datetime:
    """The first slot after ``after`` (UTC)."""
    zone = zoneinfo.ZoneInfo(timezone)
    return next(CronSim(cron, after.astimezone(zone))).astimezone(dt.UTC)


# --- the database --------------------------------------------------------------------------


def _ms(at: dt.datetime) -> int:
    return int(at.timestamp() * 1000)


def _at(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


def add_schedule(
    factory: Factory,
    definition: Definition,
    text: str,
    out_dir: Path,
    base_url: str | None,
    now: dt.datetime,
) -> Schedule:
    """Store (or replace) the schedule of ``definition``; slots before ``now`` never run."""
    with transaction(factory) as session:
        row = session.get(Schedule, definition.name)
        if row is None:
            row = Schedule(name=definition.name, created_at_ms=_ms(now), last_slot_ms=_ms(now))
            session.add(row)
        row.definition = text
        row.base_dir = str(definition.base_dir)
        row.out_dir = str(out_dir.resolve())
        row.base_url = base_url
        row.timezone = definition.timezone
        row.cron = definition.schedule
        session.flush()
        session.expunge(row)
        return row


def remove_schedule(factory: Factory, name: str) -> None:
    with transaction(factory) as session:
        row = session.get(Schedule, name)
        if row is None:
            raise UsageError(
                f"no bulletin named {name!r} is scheduled",
                hint="`narrate bulletin list` shows the scheduled ones",
            )
        session.delete(row)


def schedules(factory: Factory) -> list[tuple[Schedule, ScheduleRun | None]]:
    """Every schedule with its latest run (or None)."""
    with transaction(factory) as session:
        rows = list(session.scalars(select(Schedule).order_by(Schedule.name)))
        out = []
        for row in rows:
            last = session.scalars(
                select(ScheduleRun)
                .where(ScheduleRun.schedule_name == row.name)
                .order_by(ScheduleRun.slot_ms.desc())
                .limit(1)
            ).first()
            out.append((row, last))
        session.expunge_all()
    return out


@dataclass(frozen=True)
class Claimed:
    run_id: int
    schedule: str
    slot: dt.datetime


def claim_due(factory: Factory, now: dt.datetime, grace: dt.timedelta = GRACE) -> list[Claimed]:
    """Claim every due slot of every schedule (missed ones are recorded as missed); returns
    the slots this caller must run. Safe to call from several processes at once."""
    with transaction(factory) as session:
        rows = [
            (s.name, s.cron, s.timezone, s.last_slot_ms) for s in session.scalars(select(Schedule))
        ]
    claimed: list[Claimed] = []
    for name, cron, timezone, last_ms in rows:
        slots = due_slots(cron, timezone, _at(last_ms), now, grace)
        for slot in slots:
            run_id = _insert_run(factory, name, slot, now)
            if run_id is not None and slot.run:
                claimed.append(Claimed(run_id, name, slot.at))
        if slots:
            with transaction(factory) as session:  # monotonic: never moves back
                session.execute(
                    update(Schedule)
                    .where(Schedule.name == name, Schedule.last_slot_ms < _ms(slots[-1].at))
                    .values(last_slot_ms=_ms(slots[-1].at))
                )
    return claimed


def _insert_run(factory: Factory, name: str, slot: Slot, now: dt.datetime) -> int | None:
    try:
        with transaction(factory) as session:
            run = ScheduleRun(
                schedule_name=name,
                slot_ms=_ms(slot.at),
                status="running" if slot.run else "missed",
                claimed_at_ms=_ms(now),
            )
            session.add(run)
            session.flush()
            return int(run.id)
    except IntegrityError:  # claimed by another beat (or before a restart)
        return None


def load_run(factory: Factory, run_id: int) -> tuple[Schedule, ScheduleRun]:
    with transaction(factory) as session:
        run = session.get_one(ScheduleRun, run_id)
        schedule = session.get_one(Schedule, run.schedule_name)
        session.expunge_all()
        return schedule, run


def finish_run(
    factory: Factory,
    run_id: int,
    now: dt.datetime,
    *,
    audio: str | None = None,
    error: str | None = None,
) -> None:
    with transaction(factory) as session:
        session.execute(
            update(ScheduleRun)
            .where(ScheduleRun.id == run_id, ScheduleRun.status == "running")
            .values(
                status="failed" if error else "done",
                finished_at_ms=_ms(now),
                audio=audio,
                error=error,
            )
        )


def definition_of(schedule: Schedule) -> Definition:
    """The schedule's definition as it was stored."""
    return parse_definition(schedule.definition, schedule.name, Path(schedule.base_dir))
