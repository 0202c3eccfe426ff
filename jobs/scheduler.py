"""Running what the schedules say, in either mode.

* **Distributed** (``narrate beat`` with a broker): beat sends ``narrate.check_schedules``
  every minute; the worker that takes it claims the due slots (:func:`jobs.schedules.claim_due`)
  and sends one ``narrate.run_bulletin`` per slot to the **urgent** queue, so a bulletin
  overtakes bulk book rendering: the next free worker slot takes it and renders it
  serially in its own process (:func:`run_claimed`).
* **One machine, no Redis** (``narrate beat`` without ``NARRATE_BROKER_URL``): the beat
  process itself checks every minute and renders each due bulletin on the local process
  pool (:func:`run_forever`). SQLite is enough; two such beats on one database still run
  each slot once (the claim is a unique row).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from pathlib import Path

from jobs.bulletins import run_bulletin
from jobs.db import Factory, ensure_schema, make_engine, session_factory
from jobs.schedules import GRACE, claim_due, definition_of, finish_run, load_run
from narrate.errors import NarrateError
from narrate.settings import Settings

log = logging.getLogger(__name__)

CHECK_EVERY_S = 60.0


def run_claimed(settings: Settings, factory: Factory, run_id: int, *, serially: bool) -> None:
    """Render the bulletin of a claimed slot, as of the slot's time; record how it went."""
    schedule, run = load_run(factory, run_id)
    slot = dt.datetime.fromtimestamp(run.slot_ms / 1000, dt.UTC)
    try:
        result = run_bulletin(
            settings,
            definition_of(schedule),
            Path(schedule.out_dir),
            slot,
            base_url=schedule.base_url,
            serially=serially,
        )
    except NarrateError as exc:
        log.error("bulletin %r for %s failed: %s", schedule.name, slot.isoformat(), exc)
        finish_run(factory, run_id, dt.datetime.now(dt.UTC), error=str(exc))
        return
    finish_run(factory, run_id, dt.datetime.now(dt.UTC), audio=str(result.audio))
    for warning in result.manifest.get("warnings", []):
        log.warning("bulletin %r: %s", schedule.name, warning)


def check_once(
    settings: Settings, factory: Factory, now: dt.datetime, *, grace: dt.timedelta = GRACE
) -> int:
    """The single-machine beat's round: claim what is due and render it here."""
    claimed = claim_due(factory, now, grace)
    for slot in claimed:
        log.info("bulletin %r for %s", slot.schedule, slot.slot.isoformat())
        run_claimed(settings, factory, slot.run_id, serially=False)
    return len(claimed)


def run_forever(
    settings: Settings,
    *,
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    every_s: float = CHECK_EVERY_S,
) -> None:
    """``narrate beat`` without a broker: check the schedules every minute, forever."""
    ensure_schema(settings.database_url)
    factory = session_factory(make_engine(settings.database_url))
    while True:
        try:
            check_once(settings, factory, clock())
        except NarrateError as exc:  # the database away, say: try again next round
            log.error("schedules: %s", exc)
        time.sleep(every_s)
