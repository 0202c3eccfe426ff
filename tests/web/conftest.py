"""Fixtures of the web page's tests: a ``narrate serve`` subprocess on a free port with a
home of its own (SQLite, no broker), and headless Chromium from the Debian packages.

Chromium and its driver come from the system (``.ci/run`` installs ``chromium`` and
``chromium-driver``); the driver's path is always given, so Selenium never downloads one.
Missing, they skip these tests on a developer's machine and fail them in CI.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, need

ARTIFACTS = Path(os.environ.get("NARRATE_TEST_ARTIFACTS") or REPO / "tests" / "artifacts")
CHROMIUM = os.environ.get("NARRATE_TEST_CHROMIUM") or shutil.which("chromium") or ""
CHROMEDRIVER = os.environ.get("NARRATE_TEST_CHROMEDRIVER") or shutil.which("chromedriver") or ""
_ANNOUNCED = re.compile(r"narrate serve: (http://\S+/) ")


@dataclass
class Server:
    """A running ``narrate serve``."""

    url: str
    home: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    log: Path
    token: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def request(
        self,
        path: str,
        *,
        method: str = "GET",
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
        auth: bool = True,
    ) -> tuple[int, dict[str, str], bytes]:
        sent = dict(self.headers if auth else {})
        sent.update(headers or {})
        request = urllib.request.Request(self.url + path.lstrip("/"), data, sent, method=method)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read()

    def json(self, path: str, **options: Any) -> Any:
        status, _headers, body = self.request(path, **options)
        assert status == 200, (status, body[:500])
        return json.loads(body)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_server(
    home: Path, *args: str, token: str | None = None, extra_env: dict[str, str] | None = None
) -> Server:
    """``narrate serve --port 0 ARGS`` with its own home; waits until it answers."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("NARRATE_") or key.startswith("NARRATE_TEST_")
    }
    env.update(NARRATE_WORKERS="2", PYTHONUNBUFFERED="1")
    env.update(extra_env or {})
    env["NARRATE_HOME"] = str(home)
    if token:
        env["NARRATE_SERVE_TOKEN"] = token
    home.mkdir(parents=True, exist_ok=True)
    log = home / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "narrate", "serve", "--port", "0", *args],
            env=env,
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = _ANNOUNCED.search(log.read_text(errors="replace"))
        if found:
            url = found.group(1).replace("0.0.0.0", "127.0.0.1")
            server = Server(url, home, env, process, log, token)
            if token:
                server.headers = {"Authorization": f"Bearer {token}"}
            return server
        if process.poll() is not None:
            raise AssertionError(f"narrate serve exited {process.returncode}: {log.read_text()}")
        time.sleep(0.1)
    process.kill()
    raise AssertionError(f"narrate serve did not start: {log.read_text()}")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    running = start_server(tmp_path / "home")
    try:
        yield running
    finally:
        running.stop()


def chrome_options(width: int = 1280, height: int = 900) -> Any:
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--autoplay-policy=no-user-gesture-required",
        "--mute-audio",
        "--disable-extensions",
        "--no-first-run",
        f"--window-size={width},{height}",
    ):
        options.add_argument(argument)
    return options


def start_browser(width: int = 1280, height: int = 900) -> Any:
    """Headless Chromium through the system's chromedriver (never a downloaded one)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    driver = webdriver.Chrome(
        options=chrome_options(width, height), service=Service(executable_path=CHROMEDRIVER)
    )
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(60)
    return driver


@pytest.fixture
def browser() -> Iterator[Any]:
    need(bool(CHROMIUM), "chromium is not installed (apt-get install chromium)")
    need(bool(CHROMEDRIVER), "chromedriver is not installed (apt-get install chromium-driver)")
    driver = start_browser()
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
