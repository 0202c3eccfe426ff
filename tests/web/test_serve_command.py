"""``narrate serve`` as a user starts it: loopback by default, refusing an exposed address
without a token, every request needing the token when there is one, a clear message for a
busy port, and an embedded job that goes on after the server is stopped and started."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from tests.conftest import REPO, SAMPLE
from tests.web.conftest import Server, start_server

TOKEN = "serve-token-for-the-tests-0123"


def narrate_serve(
    home: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("NARRATE_")}
    environment.update(NARRATE_HOME=str(home), **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "narrate", "serve", *args],
        env=environment,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes]]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
        parts.append(f"{head}{value}\r\n".encode())
    for name, (filename, data) in files.items():
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
        )
        parts.append(head.encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def test_an_exposed_address_needs_a_token(tmp_path: Path) -> None:
    refused = narrate_serve(tmp_path / "home", "--host", "0.0.0.0", "--port", "0")
    assert refused.returncode == 2
    assert "refusing to serve on 0.0.0.0 without a token" in refused.stderr
    assert "NARRATE_SERVE_TOKEN" in refused.stderr and "Traceback" not in refused.stderr
    weak = narrate_serve(
        tmp_path / "home", "--host", "0.0.0.0", env={"NARRATE_SERVE_TOKEN": "short"}
    )
    assert weak.returncode == 2 and "too short" in weak.stderr and "short'" not in weak.stderr


def test_with_a_token_every_request_needs_it(tmp_path: Path) -> None:
    server = start_server(tmp_path / "home", "--host", "0.0.0.0", token=TOKEN)
    try:
        assert "token required" in server.log.read_text()
        status, headers, body = server.request("/api/jobs", auth=False)
        assert status == 401 and json.loads(body)["error"] == "this server needs its token"
        assert headers["www-authenticate"].startswith("Bearer")
        status, _headers, body = server.request(
            "/api/jobs", auth=False, headers={"Authorization": "Bearer wrong-token-0123456789"}
        )
        assert status == 401
        assert server.json("/api/jobs") == []
        data, kind = multipart({}, {"document": ("a.md", b"# A\n\nHi.\n")})
        status, _headers, _body = server.request(
            "/api/jobs", method="POST", data=data, headers={"Content-Type": kind}, auth=False
        )
        assert status == 401
        assert TOKEN not in server.log.read_text()
    finally:
        server.stop()


def test_a_busy_port_is_a_message(tmp_path: Path) -> None:
    server = start_server(tmp_path / "one")
    try:
        port = server.url.rstrip("/").rsplit(":", 1)[1]
        busy = narrate_serve(tmp_path / "two", "--port", port)
        assert busy.returncode == 2
        assert f"cannot listen on 127.0.0.1:{port}" in busy.stderr and "--port" in busy.stderr
    finally:
        server.stop()


def _submit(server: Server, document: Path, **fields: str) -> str:
    csrf = server.json("/api/session")["csrf"]
    data, kind = multipart(fields, {"document": (document.name, document.read_bytes())})
    status, _headers, body = server.request(
        "/api/jobs", method="POST", data=data, headers={"Content-Type": kind, "X-CSRF-Token": csrf}
    )
    assert status == 201, body
    return str(json.loads(body)["job"])


def test_a_job_goes_on_after_the_server_restarts(tmp_path: Path) -> None:
    home = tmp_path / "home"
    # leases far longer than the test may take: a resume that waited for them to lapse
    # would fail, however slow the machine is
    lease = {"NARRATE_LEASE_S": "1800"}
    server = start_server(home, extra_env=lease)
    try:
        job = _submit(server, SAMPLE, engine="stub", engine_options="latency_ms=800")
        deadline = time.monotonic() + 60
        while server.json(f"/api/jobs/{job}")["segments"]["done"] == 0:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        server.process.send_signal(signal.SIGINT)  # Ctrl-C
        server.process.wait(30)
        assert server.process.returncode is not None
    finally:
        server.stop()
    stopped_at = time.monotonic()
    again = start_server(home, extra_env=lease)
    try:
        deadline = time.monotonic() + 600
        while (view := again.json(f"/api/jobs/{job}"))["status"] != "done":
            assert view["status"] == "running" and time.monotonic() < deadline, view
            time.sleep(0.2)
        assert time.monotonic() - stopped_at < 600  # no wait for the 1800 s leases to lapse
        files = again.json(f"/api/jobs/{job}/downloads")
        while files["state"] != "ready":
            assert time.monotonic() < deadline
            time.sleep(0.2)
            files = again.json(f"/api/jobs/{job}/downloads")
        assert len(files["files"]) == 3 * 3 + 1
    finally:
        again.stop()
