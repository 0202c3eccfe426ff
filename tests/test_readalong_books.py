"""Read-along EPUBs of real inputs, made as a user makes them (``narrate render
--read-along``, ``narrate fetch --read-along``) with espeak: each passes epubcheck with no
error, and its SMIL clip times are the word track ``narrate captions --format json`` prints."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SAMPLE
from tests.epub_checks import check_clips_match_track, epubcheck, overlays


def narrate(env: dict[str, str], *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "narrate", *map(str, args)],
        env=env, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip


def render_read_along(
    env: dict[str, str], source: Path, out: Path, *options: str
) -> tuple[dict[str, Any], Path, dict[str, Any]]:
    result = narrate(env, "render", source, "--out", out, "--quiet", *options)
    assert result.returncode == 0, result.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    epub = out / manifest["read_along"]
    captions = narrate(env, "captions", manifest["job"], "--format", "json")
    assert captions.returncode == 0, captions.stderr
    return manifest, epub, json.loads(captions.stdout)


def assert_valid(epub: Path) -> None:
    verdict = epubcheck(epub)
    assert verdict.errors == [], verdict.errors
    assert verdict.returncode == 0


def test_the_sample_story(env: dict[str, str], tmp_path: Path) -> None:
    manifest, epub, track = render_read_along(env, SAMPLE, tmp_path / "out", "--read-along")
    assert manifest["read_along"] == "the-lighthouse-keeper-s-clock.epub"
    assert_valid(epub)
    check_clips_match_track(epub, track, "word")


def test_a_markdown_lesson_with_formulas(corpus: Path, env: dict[str, str], tmp_path: Path) -> None:
    lesson = corpus / "d2l-en_calculus.md"
    manifest, epub, track = render_read_along(
        env, lesson, tmp_path / "out", "--read-along", "sentence"
    )
    assert_valid(epub)
    check_clips_match_track(epub, track, "sentence")
    # the same job at word level, asked for at fetch
    fetched = tmp_path / "fetched"
    result = narrate(env, "fetch", manifest["job"], "--out", fetched, "--read-along")
    assert result.returncode == 0, result.stderr
    word_epub = fetched / manifest["read_along"]
    assert_valid(word_epub)
    placed = check_clips_match_track(word_epub, track, "word")
    assert len(placed) == len(manifest["chapters"])


@pytest.mark.slow
def test_the_time_machine_epub(corpus: Path, env: dict[str, str], tmp_path: Path) -> None:
    book = corpus / "h-g-wells_the-time-machine.epub"
    started = time.monotonic()
    manifest, epub, track = render_read_along(env, book, tmp_path / "out", "--read-along")
    assert manifest["read_along"] == "the-time-machine.epub"
    assert_valid(epub)
    placed = check_clips_match_track(epub, track, "word", min_placed=0.99)
    words = sum(len(c["words"]) for c in track["chapters"])
    assert sum(placed.values()) > 0.98 * words
    smils = overlays(epub)
    assert len(smils) == 13  # the 13 chapters read; the matter has no overlay
    with zipfile.ZipFile(epub) as made, zipfile.ZipFile(book) as original:
        for info in original.infolist():
            marked = info.filename.startswith("epub/text/chapter") or info.filename in (
                "epub/text/epilogue.xhtml",
                "epub/content.opf",
            )
            if not marked:  # not spoken: byte for byte the book's
                assert made.read(info.filename) == original.read(info.filename), info.filename
    print(
        f"\nTime Machine read-along: {sum(placed.values())} word pars of {words} words, "
        f"{epub.stat().st_size / 1e6:.1f} MB, {time.monotonic() - started:.0f} s with the render"
    )
