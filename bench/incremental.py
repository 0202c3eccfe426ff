#!/usr/bin/env python3
"""Benchmark: what an edit of a manuscript costs to render again.

    .venv/bin/python bench/incremental.py [--chapter 2] [--engine espeak]

Renders the novel (Markdown edition) once, cold, then four edited copies of it on the same
database and storage, each near the start of one chapter (``--chapter``, its second body
paragraph):

* a word changed,
* a sentence added,
* a paragraph added (before it),
* a paragraph removed.

For each, prints the segments synthesized again (``narrate render --json``: segments not
found in storage) and the chapters stitched again (chapter files that had to be made; the
others were found in storage, made by an earlier render), each against the total, and the
wall time against the cold render's. Each edit is made to the original text and rendered
on top of everything rendered before it, as an author's successive drafts would be.
It also checks each edit against its promise: only the segments of the touched paragraph
plus at most one neighbouring segment on each side, and only the edited chapter stitched.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
NOVEL = REPO.parent / "shared" / "corpus" / "h-g-wells_the-time-machine.md"

Edit = Callable[[list[str]], list[str]]


def chapter_blocks(text: str) -> list[list[str]]:
    """The Markdown's chapters (each a list of blocks; the heading first)."""
    chapters: list[list[str]] = []
    for block in text.split("\n\n"):
        if block.startswith("# "):
            chapters.append([])
        if chapters:
            chapters[-1].append(block)
    return chapters


def edits(target: int) -> dict[str, Edit]:
    """Each edit of the target paragraph (its index in the chapter's blocks)."""

    def word(blocks: list[str]) -> list[str]:
        words = blocks[target].split(" ")
        words[3] = "remarkably"
        return [*blocks[:target], " ".join(words), *blocks[target + 1 :]]

    def sentence(blocks: list[str]) -> list[str]:
        edited = blocks[target] + " Nobody said a word for a long while."
        return [*blocks[:target], edited, *blocks[target + 1 :]]

    def paragraph_added(blocks: list[str]) -> list[str]:
        new = "The clock on the mantel struck nine, and the fire settled in the grate."
        return [*blocks[:target], new, *blocks[target:]]

    def paragraph_removed(blocks: list[str]) -> list[str]:
        return [*blocks[:target], *blocks[target + 1 :]]

    return {
        "word changed": word,
        "sentence added": sentence,
        "paragraph added": paragraph_added,
        "paragraph removed": paragraph_removed,
    }


def render(
    env: dict[str, str], source: Path, out: Path, engine: str
) -> tuple[dict[str, Any], float]:
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "narrate", "render", source, "--out", out, "--engine", engine,
         "--quiet", "--json"],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"render failed: {result.stderr}")
    return json.loads(result.stdout), elapsed


def allowed(source: Path, engine: str, chapter: int, target: int, removed: bool) -> int:
    """Segments the edit may cost: those holding the touched paragraph (none when it was
    removed), plus one neighbouring segment on each side."""
    sys.path.insert(0, str(REPO))
    from jobs.render import RenderRequest, prepare

    planned = prepare(RenderRequest(source, engine)).plan[chapter - 1]
    if removed:
        return 2
    blocks = planned.text.split("\n\n")
    start = sum(len(b) + 2 for b in blocks[:target])
    end = start + len(blocks[target])
    holding = [s for s in planned.segments if s.char_start < end and start < s.char_end]
    return len(holding) + 2


def chapter_files(storage: Path) -> set[str]:
    folder = storage / "chapters"
    if not folder.is_dir():
        return set()
    return {p.name for p in folder.iterdir() if not p.name.endswith(".json")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chapter", type=int, default=2, help="1-based chapter to edit")
    parser.add_argument("--engine", default="espeak")
    args = parser.parse_args()
    text = NOVEL.read_text(encoding="utf-8")
    chapters = chapter_blocks(text)
    preamble = text.split("\n\n# ", 1)[0] if not text.startswith("# ") else ""
    blocks = chapters[args.chapter - 1]
    target = 2  # the heading is block 0: its second body paragraph, near the start
    with tempfile.TemporaryDirectory(prefix="narrate-incremental-") as tmp:
        home = Path(tmp)
        env = {**os.environ, "NARRATE_HOME": str(home / "home")}
        for name in ("NARRATE_DATABASE_URL", "NARRATE_STORAGE_DIR", "NARRATE_BROKER_URL"):
            env.pop(name, None)
        storage = home / "home" / "storage"
        source = home / "novel.md"
        source.write_text(text, encoding="utf-8")
        report, cold_s = render(env, source, home / "out-0", args.engine)
        total_segments = report["segments"]
        total_chapters = len(report["manifest"]["chapters"])
        print(f"cold render: {total_segments} segments, {total_chapters} chapters, {cold_s:.1f} s")
        print(f"edits near the start of chapter {args.chapter} (its paragraph {target}):")
        print(f"{'edit':20s} {'segments':>14s} {'chapters':>10s} {'time':>14s}  promise")
        failures = 0
        for number, (name, edit) in enumerate(edits(target).items(), start=1):
            edited = [*chapters[: args.chapter - 1], edit(blocks), *chapters[args.chapter :]]
            body = "\n\n".join("\n\n".join(c) for c in edited)
            source.write_text(f"{preamble}\n\n{body}" if preamble else body, encoding="utf-8")
            before = chapter_files(storage)
            report, seconds = render(env, source, home / f"out-{number}", args.engine)
            made = len(chapter_files(storage) - before)
            synthesized = report["synthesized"]
            bound = allowed(source, args.engine, args.chapter, target, "removed" in name)
            kept = synthesized <= bound and made <= 1
            failures += not kept
            share = synthesized / report["segments"]
            print(
                f"{name:20s} {synthesized:5d}/{report['segments']:<5d} ({share:5.1%})"
                f" {made:3d}/{total_chapters:<3d}  {seconds:5.1f} s ({seconds / cold_s:4.2f}x)"
                f"  {'kept' if kept else 'BROKEN'} (at most {bound} segments, 1 chapter)"
            )
    if failures:
        sys.exit(f"{failures} edit(s) cost more than their paragraph and one neighbour each side")


if __name__ == "__main__":
    main()
