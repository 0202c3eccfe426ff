"""``narrate serve`` with a broker: the form's jobs go to the Celery workers (PostgreSQL and
Redis as in tests/jobs/test_distributed.py); the page follows them and serves their files."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.conftest import SAMPLE
from tests.jobs.conftest import Cluster, cluster  # noqa: F401 - the fixture
from tests.web.conftest import start_server
from tests.web.test_serve_command import multipart

pytestmark = pytest.mark.distributed


def test_jobs_go_to_the_workers(cluster: Cluster, tmp_path: Path) -> None:  # noqa: F811
    cluster.start_worker("w1", 2)
    settings = {k: v for k, v in cluster.env.items() if k.startswith("NARRATE_")}
    server = start_server(tmp_path / "serve-home", extra_env=settings)
    try:
        session = server.json("/api/session")
        assert session["mode"] == "distributed"
        assert "priority" in {field["name"] for field in session["fields"]}
        data, kind = multipart(
            {"engine": "stub", "priority": "urgent", "allow_partial": "on"},
            {"document": (SAMPLE.name, SAMPLE.read_bytes())},
        )
        status, _headers, body = server.request(
            "/api/jobs",
            method="POST",
            data=data,
            headers={"Content-Type": kind, "X-CSRF-Token": session["csrf"]},
        )
        assert status == 201, body
        job = json.loads(body)["job"]
        assert json.loads(body)["priority"] == "urgent"
        deadline = time.monotonic() + 180
        while (view := server.json(f"/api/jobs/{job}"))["status"] != "done":
            assert view["status"] in ("pending", "running") and time.monotonic() < deadline, (
                view,
                cluster.logs(),
            )
            time.sleep(0.5)
        assert cluster.status(job)["status"] == "done"  # the CLI sees the same job
        while (files := server.json(f"/api/jobs/{job}/downloads"))["state"] != "ready":
            assert time.monotonic() < deadline, files
            time.sleep(0.2)
        assert {f["kind"] for f in files["files"]} >= {"chapters.audio", "manifest"}
        status, _headers, body = server.request(
            f"/api/jobs/{job}/retry", method="POST", headers={"X-CSRF-Token": session["csrf"]}
        )
        assert (
            status == 400 and "only a failed or partial job is retried" in json.loads(body)["error"]
        )
    finally:
        server.stop()
