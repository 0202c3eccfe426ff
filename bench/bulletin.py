#!/usr/bin/env python3
"""Benchmark: a 5-minute bulletin on the embedded default (espeak-ng), from feeds to files.

    .venv/bin/python bench/bulletin.py [--target-s 300] [--repeat 2]

Writes two feeds of stories made from the novel's paragraphs (dated within the last day),
then, in one run, each cold (a fresh home, nothing reused):

* bulletin: ``narrate bulletin run DEF --out DIR --now ...`` (fetch, select, script, fit,
  render, measure, adjust, master to podcast loudness, write the files and feed.xml);
* reference: ``narrate render`` of the bulletin's own transcript as one Markdown chapter,
  mastered to the same profile (the same words, without the bulletin's work).

Prints both times (best of ``--repeat``), the ratio, the bulletin's duration against its
target and the rounds it took.
"""

from __future__ import annotations

import argparse
import datetime as dt
import email.utils
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NOVEL = REPO.parent / "shared" / "corpus" / "h-g-wells_the-time-machine.md"
NOW = dt.datetime(2026, 12, 2, 18, 0, tzinfo=dt.UTC)


def feeds(folder: Path) -> list[str]:
    paragraphs = [
        p.strip()
        for p in NOVEL.read_text().split("\n\n")
        if len(p.strip()) > 300 and not p.lstrip().startswith("#")
    ]
    names = []
    for number, name in enumerate(("north.xml", "south.xml")):
        items = []
        for k, text in enumerate(paragraphs[number * 40 : number * 40 + 40]):
            text = re.sub(r"[<>&]", " ", text)
            title = " ".join(text.split()[:7]).strip(",;:.")
            date = email.utils.format_datetime(NOW - dt.timedelta(minutes=20 * k + number))
            items.append(
                f"<item><title>{title}</title><description>{text}</description>"
                f"<pubDate>{date}</pubDate><guid>{name}-{k}</guid></item>"
            )
        body = "".join(items)
        (folder / name).write_text(
            f'<?xml version="1.0"?><rss version="2.0"><channel><title>{name[:-4].title()} '
            f"Gazette</title><language>en</language>{body}</channel></rss>"
        )
        names.append(name)
    return names


def run(command: list[str], home: Path) -> float:
    env = {**os.environ, "NARRATE_HOME": str(home)}
    for variable in ("NARRATE_DATABASE_URL", "NARRATE_STORAGE_DIR", "NARRATE_BROKER_URL"):
        env.pop(variable, None)
    started = time.perf_counter()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--target-s", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    narrate = [sys.executable, "-m", "narrate"]
    bulletin_runs, reference_runs = [], []
    manifest: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="narrate-bulletin-bench-") as tmp:
        folder = Path(tmp)
        tables = "".join(f'[[feeds]]\nurl = "{n}"\nmax_items = 20\n' for n in feeds(folder))
        definition = folder / "news.toml"
        definition.write_text(
            f'name = "Bench News"\ntimezone = "UTC"\ntarget_duration_s = {args.target_s}\n'
            f'max_item_age_h = 24\nengine = "espeak"\nvoice = "en-us"\n{tables}'
        )
        for attempt in range(args.repeat):
            out = folder / f"out{attempt}"
            command = [*narrate, "bulletin", "run", str(definition), "--out", str(out)]
            bulletin_runs.append(run([*command, "--now", NOW.isoformat()], folder / f"b{attempt}"))
            manifest = json.loads((out / "manifest.json").read_text())
            lines = (out / str(manifest["transcript"])).read_text().splitlines()[2:]
            script = folder / f"script{attempt}.md"
            spoken = [line for line in lines if line and not line.startswith("[")]
            script.write_text("# Bulletin\n\n" + "\n\n".join(spoken))
            reference = [*narrate, "render", str(script), "--out", str(folder / f"ref{attempt}")]
            reference_runs.append(
                run([*reference, "--quiet", "--master", "podcast"], folder / f"r{attempt}")
            )
            print(
                f"run {attempt + 1}: bulletin {bulletin_runs[-1]:.1f} s; "
                f"reference render {reference_runs[-1]:.1f} s"
            )
    best_bulletin, best_reference = min(bulletin_runs), min(reference_runs)
    duration_s = int(str(manifest["duration_ms"])) / 1000
    stories = manifest["items"]
    assert isinstance(stories, list)
    print(
        f"bulletin: {duration_s:.1f} s of audio for a {args.target_s} s target, "
        f"{len(stories)} stories, {manifest['rounds']} round(s)"
    )
    print(f"narrate bulletin run (cold):         {best_bulletin:.1f} s")
    print(f"narrate render of its script (cold): {best_reference:.1f} s")
    print(f"ratio bulletin / render: {best_bulletin / best_reference:.2f}")


if __name__ == "__main__":
    main()
