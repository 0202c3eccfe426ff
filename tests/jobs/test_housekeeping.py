"""Housekeeping without beat: the workers' housekeepers share one lease, feed and reap, and
``status``/``watch`` say when nothing runs (SQLite and PostgreSQL; real workers at the end)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from jobs.context import Context
from jobs.db import Factory
from jobs.heartbeats import (
    HOUSEKEEPER,
    STALE_AFTER_MS,
    Liveness,
    advice,
    liveness,
    record_seen,
    release_turn,
    take_turn,
)
from jobs.housekeeping import Housekeeper
from jobs.models import SegmentStatus
from jobs.storage import Storage
from narrate.settings import Settings
from renderer.engine import RequestGate
from tests.jobs.builders import planned_chapter, store_job
from tests.jobs.conftest import NARRATE, Cluster
from tests.jobs.rows import segment, segment_ids
from tests.jobs.test_distributed import _wait_until_running, assert_every_word_once, book

T0 = 1_900_000_000_000


def test_one_holder_at_a_time_and_a_lapsed_lease_changes_hands(factory: Factory) -> None:
    assert take_turn(factory, "a", T0, 10_000)
    assert not take_turn(factory, "b", T0 + 1, 10_000), "a holds it"
    assert take_turn(factory, "a", T0 + 5_000, 10_000), "the holder renews"
    assert not take_turn(factory, "b", T0 + 14_000, 10_000), "renewed until T0 + 15 s"
    assert take_turn(factory, "b", T0 + 15_001, 10_000), "a stopped renewing: b takes over"
    assert not take_turn(factory, "a", T0 + 15_002, 10_000)
    release_turn(factory, "b")
    assert take_turn(factory, "a", T0 + 15_003, 10_000), "a released lease is free at once"


def test_liveness_counts_recent_workers_and_the_reaper(factory: Factory) -> None:
    assert liveness(factory, T0) == Liveness(T0, 0, None, None)
    record_seen(factory, "worker w1", "worker", T0)
    record_seen(factory, "worker w2", "worker", T0 - STALE_AFTER_MS - 1)
    record_seen(factory, "worker w1", "worker", T0 + 1)  # an update, not a second row
    record_seen(factory, "reaper", "reaper", T0 - 5_000)
    take_turn(factory, "w1", T0, 10_000)  # the lease row is no worker
    alive = liveness(factory, T0 + 1)
    assert alive == Liveness(T0 + 1, 1, T0 + 1, T0 - 5_000)


def test_advice_names_what_to_start() -> None:
    never = advice(Liveness(T0, 0, None, None), 15)
    assert never is not None and "no worker has ever run" in never
    assert "narrate worker" in never
    gone = advice(Liveness(T0, 0, T0 - 300_000, T0 - 300_000), 15)
    assert gone is not None and "no worker has been seen for 5 min" in gone
    assert advice(Liveness(T0, 2, T0, T0 - 10_000), 15) is None
    stale = advice(Liveness(T0, 2, T0, T0 - 600_000), 15)
    assert stale is not None and "lost work was last looked for 10 min ago" in stale


class _NoGate:
    def permit(self, account: str) -> object:  # pragma: no cover - never asked here
        raise AssertionError("no provider request is made")


def _context(factory: Factory, storage: Storage) -> Context:
    settings = Settings(
        database_url="sqlite://",
        storage_dir=storage.root,
        broker_url=None,
        workers=1,
        feed_interval_s=2,
        reap_interval_s=15,
    )
    gate: RequestGate = _NoGate()  # type: ignore[assignment]
    return Context(settings, factory, storage, gate, distributed=True)


def test_only_the_lease_holder_feeds(
    factory: Factory, storage: Storage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[int] = []

    def send(_task: str, item_id: int, _priority: object) -> bool:  # the broker's side
        sent.append(item_id)
        return True

    monkeypatch.setattr("jobs.dispatch._send", send)
    job_id = store_job(
        factory, storage, tmp_path, [planned_chapter(1, ["one.", "two."])], distributed=True
    )
    ctx = _context(factory, storage)
    first, second = Housekeeper(ctx, "w1"), Housekeeper(ctx, "w2")
    now = int(time.time() * 1000)
    assert first.tick(now)
    assert not second.tick(now + 1)
    ids = segment_ids(factory, job_id)
    assert sorted(sent) == ids, "the holder released the backlog"
    assert all(segment(factory, i).status == SegmentStatus.QUEUED for i in ids)
    assert liveness(factory, now + 2).workers == 2
    assert liveness(factory, now + 2).reaper_seen_ms == now, "the holder reaped too"
    first.stop()
    assert second.tick(now + 3), "w1 stopped politely: w2 holds the lease at once"


def test_the_lease_row_is_not_a_worker(factory: Factory) -> None:
    take_turn(factory, "w1", T0, 10_000)
    assert liveness(factory, T0).workers == 0
    assert HOUSEKEEPER == "housekeeper"


# --- real workers, no beat --------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.distributed
def test_a_killed_workers_segments_come_back_without_beat(cluster: Cluster, tmp_path: Path) -> None:
    source = book(tmp_path, chapters=3, sentences=10)
    cluster.start_worker("w0")
    cluster.start_worker("w1")
    job_id = cluster.submit(source, "--engine", "stub", "--option", "latency_ms=1500")
    _wait_until_running(cluster, job_id)
    time.sleep(1.0)
    cluster.kill("w0")  # kill -9 of its main process, pool and housekeeper; no replacement
    view = cluster.wait(job_id, timeout_s=180)
    assert view["status"] == "done", view
    assert view["attention"] is None
    assert_every_word_once(cluster, job_id, source)


@pytest.mark.postgres
@pytest.mark.distributed
def test_status_and_watch_say_when_no_worker_runs(cluster: Cluster, tmp_path: Path) -> None:
    source = book(tmp_path, chapters=1, sentences=2)
    job_id = cluster.submit(source, "--engine", "stub")
    view = cluster.status(job_id)
    assert "no worker has ever run" in view["attention"]
    assert "start `narrate worker`" in cluster.narrate("status", job_id).stdout
    watch = subprocess.Popen(
        [*NARRATE, "watch", job_id, "--interval", "0.2"],
        env=cluster.env,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(3)
    watch.terminate()
    _, said = watch.communicate(timeout=10)
    assert said.count("attention: no worker has ever run") == 1, said
    cluster.start_worker("w1", 1)
    view = cluster.wait(job_id)
    assert view["status"] == "done"
    assert view["attention"] is None
