"""Whole real books from the shared corpus, rendered as a user would (slow: ~1-2 min)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jobs.render import RenderRequest, read_document
from renderer.audio import decoded_duration_ms

pytestmark = pytest.mark.slow

STORY_TITLES = ["I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII"]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("books-home")


def narrate(home: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NARRATE_HOME": str(home)}
    env.pop("NARRATE_DATABASE_URL", None)
    env.pop("NARRATE_STORAGE_DIR", None)
    return subprocess.run(
        [sys.executable, "-m", "narrate", *map(str, args)],
        env=env, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip


def render_and_check(home: Path, source: Path, out: Path) -> dict[str, object]:
    result = narrate(home, "render", source, "--out", out, "--quiet")
    assert result.returncode == 0, result.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    track = json.loads(narrate(home, "captions", manifest["job"], "--format", "json").stdout)
    document = read_document(RenderRequest(source))  # ingested and annotated, as rendered
    assert len(document.chapters) == len(manifest["chapters"]) == len(track["chapters"])
    for chapter, entry, words in zip(
        document.chapters, manifest["chapters"], track["chapters"], strict=True
    ):
        decoded = decoded_duration_ms(out / entry["audio"])
        assert abs(decoded - entry["duration_ms"]) <= 60, entry["audio"]
        texts = [w["text"] for w in words["words"]]
        assert " ".join(texts).split() == chapter.text.split(), "every word, in order"
        starts = [w["start_ms"] for w in words["words"]]
        assert starts == sorted(starts)
        assert words["words"][-1]["end_ms"] <= entry["duration_ms"]
        assert (out / entry["captions"]["vtt"]).read_text().startswith("WEBVTT")
    return manifest


def test_time_machine_epub_gives_the_13_story_chapters(
    corpus: Path, home: Path, tmp_path: Path
) -> None:
    manifest = render_and_check(home, corpus / "h-g-wells_the-time-machine.epub", tmp_path)
    chapters = manifest["chapters"]
    assert isinstance(chapters, list)
    assert [c["title"] for c in chapters] == [*STORY_TITLES, "Epilogue"]
    assert sorted(p.suffix for p in tmp_path.iterdir()) == sorted(
        [".mp3", ".vtt", ".srt"] * 13 + [".json"]
    )
    hours = sum(c["duration_ms"] for c in chapters) / 3_600_000
    assert 2.5 < hours < 4.5  # ~180k characters at espeak's 175 words per minute


def test_time_machine_markdown_matches_and_reuses_the_epub(
    corpus: Path, home: Path, tmp_path: Path
) -> None:
    manifest = render_and_check(home, corpus / "h-g-wells_the-time-machine.md", tmp_path)
    chapters = manifest["chapters"]
    assert isinstance(chapters, list)
    assert [c["title"] for c in chapters] == [f"Chapter {t}" for t in STORY_TITLES] + ["Epilogue"]


@pytest.mark.parametrize("name", ["d2l-en_calculus.md", "d2l-en_linear-algebra.md"])
def test_lessons_render_without_crashing(
    corpus: Path, home: Path, tmp_path: Path, name: str
) -> None:
    render_and_check(home, corpus / name, tmp_path)
