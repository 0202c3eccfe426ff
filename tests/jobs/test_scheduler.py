"""Scheduled bulletins run: by a single-machine beat on SQLite (two at once still run a
slot once), and in the distributed mode by workers, sent to the urgent queue."""

from __future__ import annotations

import datetime as dt
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from threading import Barrier

import pytest
from sqlalchemy import create_engine, select, update

from jobs.db import make_engine, session_factory, transaction, upgrade
from jobs.models import Schedule, ScheduleRun
from jobs.scheduler import check_once
from jobs.schedules import add_schedule
from narrate.settings import Settings
from ssml.bulletin import parse_definition
from tests.jobs.conftest import Cluster
from tests.jobs.test_bulletin import city_feed

DEFINITION = """
name = "Minute News"
timezone = "Europe/London"
schedule = "* * * * *"
target_duration_s = 30
max_item_age_h = 100000
engine = "espeak"
voice = "en-gb-x-rp"
[[feeds]]
url = "city.xml"
max_items = 2
"""


def _definition_file(tmp_path: Path) -> Path:
    (tmp_path / "city.xml").write_bytes(city_feed())
    path = tmp_path / "minute.toml"
    path.write_text(DEFINITION)
    return path


def test_a_single_machine_beat_runs_a_due_slot_once(settings: Settings, tmp_path: Path) -> None:
    path = _definition_file(tmp_path)
    upgrade(settings.database_url)
    factory = session_factory(make_engine(settings.database_url))
    now = dt.datetime.now(dt.UTC).replace(second=30, microsecond=0)
    definition = parse_definition(DEFINITION, path.name, tmp_path)
    add_schedule(
        factory, definition, DEFINITION, tmp_path / "out", None, now - dt.timedelta(minutes=3)
    )
    start = Barrier(2)

    def beat() -> int:
        start.wait()
        return check_once(settings, factory, now)

    with ThreadPoolExecutor(2) as pool:
        ran = sum(pool.map(lambda _n: beat(), range(2)))
    assert ran == 1
    outputs = sorted((tmp_path / "out").glob("minute-news-*.mp3"))
    assert len(outputs) == 1
    with transaction(factory) as session:
        statuses = [
            r.status for r in session.scalars(select(ScheduleRun).order_by(ScheduleRun.slot_ms))
        ]
    assert statuses == ["missed", "missed", "done"]


@pytest.mark.postgres
@pytest.mark.distributed
def test_workers_run_a_scheduled_bulletin_from_the_urgent_queue(
    cluster: Cluster, tmp_path: Path
) -> None:
    from jobs.app import CONTROL_QUEUE, app

    path = _definition_file(tmp_path)
    out = tmp_path / "out"
    scheduled = cluster.narrate("bulletin", "schedule", path, "--out", out)
    assert scheduled.returncode == 0, scheduled.stderr
    engine = create_engine(cluster.env["NARRATE_DATABASE_URL"])
    earlier = int((time.time() - 90) * 1000)
    with engine.begin() as connection:  # as if it had been scheduled a minute and a half ago
        connection.execute(update(Schedule).values(last_slot_ms=earlier))
    engine.dispose()
    cluster.start_worker("w1", 1, "--queues", "urgent")
    app.conf.broker_url = cluster.env["NARRATE_BROKER_URL"]
    app.send_task("narrate.check_schedules", queue=CONTROL_QUEUE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (out / "manifest.json").exists():
        time.sleep(0.5)
    assert (out / "manifest.json").exists(), cluster.logs()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["bulletin"] == "Minute News"
    listed = cluster.narrate("bulletin", "list", "--json")
    (entry,) = json.loads(listed.stdout)
    assert entry["last_run"]["status"] in ("done", "running")
