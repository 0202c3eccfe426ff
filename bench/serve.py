#!/usr/bin/env python3
"""Benchmark: how fast ``narrate serve``'s pages load for a whole book, and how closely the
player's highlight follows the audio.

    .venv/bin/python bench/serve.py [--input BOOK] [--repeat 5] [--home DIR]

Renders the book once with ``narrate render`` into a fresh home (about 1.5 minutes for the
novel's 13 chapters; ``--home`` reuses a home a previous run kept), starts ``narrate serve``
on it, and loads in headless Chromium (Debian's ``chromium`` and ``chromedriver``):

* the jobs page, the job page and the player of the longest chapter, ``--repeat`` times
  each: navigation timing (first byte, DOMContentLoaded, load) and, for the player, the
  moment its text is laid out with every word a span (``narrate:player-ready``);
* the JSON answers behind them: the job's status, the chapter (text and word track) and a
  search of the whole book's words;
* the highlight's lag while the longest chapter plays (10 s, muted): when each word's span
  is lit against when the audio clock reached the word's start, and the same for a
  highlight that would follow ``timeupdate`` events.

Prints medians (and ranges) in milliseconds.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.web.conftest import start_browser, start_server  # noqa: E402
from tests.web.test_browser import LAG_PROBE, lag_figures  # noqa: E402

DEFAULT_INPUT = REPO.parent / "shared" / "corpus" / "h-g-wells_the-time-machine.epub"

NAVIGATION = """
const [n] = performance.getEntriesByType('navigation');
const ready = performance.getEntriesByName('narrate:player-ready')[0];
return {ttfb: n.responseStart - n.startTime, dcl: n.domContentLoadedEventEnd - n.startTime,
        load: n.loadEventEnd - n.startTime, ready: ready ? ready.startTime : null,
        bytes: n.transferSize};
"""


def render(book: Path, home: Path) -> float:
    env = {"NARRATE_HOME": str(home), "PATH": "/usr/bin:/bin"}
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "narrate", "render", str(book), "--out", str(home / "out"), "-q"],
        env=env,
        cwd=REPO,
        check=True,
    )
    return time.monotonic() - started


def timed_get(url: str) -> tuple[float, int]:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as response:
        size = len(response.read())
    return (time.perf_counter() - started) * 1000, size


def page_figures(driver: Any, url: str, repeat: int, wait_ready: bool) -> dict[str, list[float]]:
    figures: dict[str, list[float]] = {"ttfb": [], "dcl": [], "load": [], "ready": []}
    for _ in range(repeat):
        driver.get(url)
        if wait_ready:
            deadline = time.monotonic() + 60
            while not driver.execute_script("return document.body.dataset.ready === '1'"):
                assert time.monotonic() < deadline, "the player never got ready"
                time.sleep(0.02)
        else:
            time.sleep(0.2)
        measured = driver.execute_script(NAVIGATION)
        for key in figures:
            if measured.get(key) is not None:
                figures[key].append(float(measured[key]))
    return figures


def show(name: str, figures: dict[str, list[float]]) -> None:
    parts = []
    for key, values in figures.items():
        if values:
            parts.append(
                f"{key} {statistics.median(values):.0f} ms ({min(values):.0f}-{max(values):.0f})"
            )
    print(f"{name:34s} " + ", ".join(parts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", type=Path, default=DEFAULT_INPUT)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--home", type=Path, help="keep (or reuse) the rendered home here")
    args = parser.parse_args()
    if not shutil.which("chromium") or not shutil.which("chromedriver"):
        raise SystemExit("needs chromium and chromedriver (apt-get install chromium-driver)")
    scratch = None
    home = args.home
    if home is None:
        scratch = tempfile.TemporaryDirectory(prefix="narrate-bench-serve-")
        home = Path(scratch.name) / "home"
    if not (home / "out" / "manifest.json").is_file():
        print(f"rendering {args.input.name} ...", flush=True)
        print(f"narrate render: {render(args.input, home):.1f} s")
    server = start_server(home)
    driver = start_browser(1280, 900)
    try:
        job = server.json("/api/jobs")[0]["job"]
        view = server.json(f"/api/jobs/{job}")
        chapters = view["chapters"]
        longest = max(chapters, key=lambda c: c["duration_ms"] or 0)
        print(
            f"job {job}: {len(chapters)} chapters, {view['segments']['total']} segments; "
            f"longest chapter {longest['index']} ({(longest['duration_ms'] or 0) / 60000:.1f} min)"
        )
        base = server.url
        # the job page asks for the downloads once: the export of a finished job, timed
        started = time.monotonic()
        while server.json(f"/api/jobs/{job}/downloads")["state"] != "ready":
            time.sleep(0.1)
        print(f"{'export for downloads':34s} {(time.monotonic() - started) * 1000:.0f} ms")
        page_figures(driver, base, 1, False)  # warm the browser's cache of the static files
        show("jobs page", page_figures(driver, base, args.repeat, False))
        show(
            f"job page ({len(chapters)} chapters)",
            page_figures(driver, f"{base}jobs/{job}", args.repeat, False),
        )
        player = f"{base}jobs/{job}/chapters/{longest['index']}"
        show(
            f"player (chapter {longest['index']})", page_figures(driver, player, args.repeat, True)
        )
        words = driver.execute_script("return document.querySelectorAll('#text .w').length")
        for name, path in (
            ("GET /api/jobs/{job}", f"api/jobs/{job}"),
            (
                f"GET chapter {longest['index']} (text+words)",
                f"api/jobs/{job}/chapters/{longest['index']}",
            ),
            ("GET search 'time' (whole book)", f"api/jobs/{job}/search?q=time"),
        ):
            times = []
            for _ in range(args.repeat):
                ms, size = timed_get(base + path)
                times.append(ms)
            print(
                f"{name:34s} median {statistics.median(times):.0f} ms "
                f"({min(times):.0f}-{max(times):.0f}), {size / 1024:.0f} KB"
            )
        print(f"{'words laid out in the player':34s} {words}")
        driver.get(player)
        while not driver.execute_script("return document.body.dataset.ready === '1'"):
            time.sleep(0.05)
        probe = driver.execute_async_script(LAG_PROBE, 10)
        lag = lag_figures(probe)
        print(
            f"{'highlight lag (rAF)':34s} mean {lag['mean_ms']:.1f} ms, "
            f"p90 {lag['p90_ms']:.1f} ms, max {lag['max_ms']:.1f} ms over {lag['words']} words"
        )
        print(
            f"{'a timeupdate-driven highlight':34s} mean {lag['timeupdate_mean_ms']:.1f} ms, "
            f"max {lag['timeupdate_max_ms']:.1f} ms"
        )
        print(json.dumps({"lag": lag}))
    finally:
        driver.quit()
        server.stop()
        if scratch is not None:
            scratch.cleanup()


if __name__ == "__main__":
    main()
