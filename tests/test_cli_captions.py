"""``narrate captions`` and ``--caption-profile`` end to end: captions cut to a profile,
every rule they break warned about and recorded, and ``--check`` on any caption file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.renderer.test_caption_check import FOREIGN_VTT

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "lighthouse.md"


@dataclass(frozen=True)
class Render:
    out: Path
    manifest: dict[str, Any]
    stderr: str

    @property
    def job(self) -> str:
        return str(self.manifest["job"])

    @property
    def chapters(self) -> list[dict[str, Any]]:
        chapters: list[dict[str, Any]] = self.manifest["chapters"]
        return chapters


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("captions-home")


def narrate(home: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NARRATE_HOME": str(home)}
    env.pop("NARRATE_DATABASE_URL", None)
    env.pop("NARRATE_STORAGE_DIR", None)
    return subprocess.run(
        [sys.executable, "-m", "narrate", *map(str, args)],
        env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip


def render(home: Path, source: Path, out: Path, *options: str) -> Render:
    result = narrate(home, "render", source, "--out", out, "--quiet", *options)
    assert result.returncode == 0, result.stderr
    return Render(out, json.loads((out / "manifest.json").read_text()), result.stderr)


@pytest.fixture(scope="module")
def standard(home: Path, tmp_path_factory: pytest.TempPathFactory) -> Render:
    """The sample rendered with espeak and the default caption profile."""
    return render(home, SAMPLE, tmp_path_factory.mktemp("standard"))


def check(home: Path, *args: str | Path) -> tuple[int, list[dict[str, Any]]]:
    result = narrate(home, "captions", "--check", "--json", *args)
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, json.loads(result.stdout)


def assert_every_miss_was_warned(home: Path, rendered: Render, profile: str = "standard") -> int:
    """``--check`` of every caption file finds exactly the rules narrate warned about: the
    same counts in the manifest, and a printed warning for each. Returns the misses."""
    recorded = {
        (w["captions"], w["rule"]): w
        for chapter in rendered.chapters
        for w in chapter.get("caption_warnings", [])
    }
    printed = [line for line in rendered.stderr.splitlines() if line.startswith("warning: ")]
    assert len(printed) == len(recorded)
    vtts = [rendered.out / str(c["captions"]["vtt"]) for c in rendered.chapters]
    code, reports = check(home, "--profile", profile, *vtts)
    misses = 0
    found = set()
    for path, report in zip(vtts, reports, strict=True):
        assert report["file"] == str(path)
        for rule, count in report["counts"].items():
            warning = recorded[(path.name, rule)]
            assert warning["cues"] == count and warning["profile"] == profile
            assert any(path.name in line and warning["message"] in line for line in printed)
            found.add((path.name, rule))
            misses += count
    assert found == set(recorded)
    assert code == (1 if misses else 0)
    # the SubRip files hold the same cues
    srts = [rendered.out / str(c["captions"]["srt"]) for c in rendered.chapters]
    _, srt_reports = check(home, "--profile", profile, *srts)
    assert [r["counts"] for r in srt_reports] == [r["counts"] for r in reports]
    return misses


def cue_speeds(vtt: str) -> list[float]:
    """Characters per second of every cue of a WebVTT text."""
    speeds = []
    for block in vtt.split("\n\n")[1:]:
        timing, *lines = block.strip().split("\n")
        start, end = (_ms(t) for t in timing.split(" --> "))
        speeds.append(sum(map(len, lines)) * 1000 / (end - start))
    return speeds


def _ms(stamp: str) -> int:
    hours, minutes, seconds = stamp.split(":")
    return round((int(hours) * 3600 + int(minutes) * 60 + float(seconds)) * 1000)


# --- captions cut to a profile ----------------------------------------------------------------


def test_every_rule_the_sample_breaks_was_warned_about(home: Path, standard: Render) -> None:
    assert standard.manifest["caption_profile"] == "standard"
    misses = assert_every_miss_was_warned(home, standard)
    # espeak speaks the sample at about 18 characters a second: some cues cannot keep 17
    assert misses > 0
    assert "read faster than 17 chars/s" in standard.stderr


@pytest.mark.parametrize("name", ["d2l-en_calculus.md", "d2l-en_linear-algebra.md"])
def test_every_rule_a_lesson_breaks_was_warned_about(
    home: Path, corpus: Path, tmp_path: Path, name: str
) -> None:
    lesson = render(home, corpus / name, tmp_path / "out")
    assert_every_miss_was_warned(home, lesson)


def test_children_profile_reads_slower(home: Path, standard: Render, tmp_path: Path) -> None:
    children = render(home, SAMPLE, tmp_path / "out", "--caption-profile", "children")
    assert children.manifest["caption_profile"] == "children"
    assert_every_miss_was_warned(home, children, "children")
    for adult, child in zip(standard.chapters, children.chapters, strict=True):
        adult_speeds = cue_speeds((standard.out / adult["captions"]["vtt"]).read_text())
        child_speeds = cue_speeds((children.out / child["captions"]["vtt"]).read_text())
        assert sum(child_speeds) / len(child_speeds) < sum(adult_speeds) / len(adult_speeds)
    # the job keeps its profile: its captions print as written; --profile re-cuts them
    first = children.chapters[0]["captions"]["vtt"]
    kept = narrate(home, "captions", children.job)
    assert kept.returncode == 0 and kept.stdout == (children.out / first).read_text()
    recut = narrate(home, "captions", children.job, "--profile", "standard")
    assert recut.returncode == 0
    assert recut.stdout == (standard.out / standard.chapters[0]["captions"]["vtt"]).read_text()
    assert "warning: captions of chapter 1" in recut.stderr


def test_a_job_from_before_profiles_is_cut_to_standard(
    home: Path, standard: Render, tmp_path: Path
) -> None:
    from sqlalchemy import create_engine, text

    job = render(home, SAMPLE, tmp_path / "children", "--caption-profile", "children").job
    engine = create_engine(f"sqlite:///{home / 'narrate.db'}")
    with engine.begin() as connection:  # as an older narrate stored it: no caption_profile
        options = json.loads(
            connection.execute(
                text("SELECT options FROM jobs WHERE id = :id"), {"id": job}
            ).scalar_one()
        )
        del options["caption_profile"]
        connection.execute(
            text("UPDATE jobs SET options = :options WHERE id = :id"),
            {"options": json.dumps(options), "id": job},
        )
    engine.dispose()
    fetched = narrate(home, "fetch", job, "--out", tmp_path / "fetched")
    assert fetched.returncode == 0, fetched.stderr
    manifest = json.loads((tmp_path / "fetched" / "manifest.json").read_text())
    assert manifest["caption_profile"] == "standard"
    for ours, theirs in zip(manifest["chapters"], standard.chapters, strict=True):
        assert (tmp_path / "fetched" / ours["captions"]["vtt"]).read_text() == (
            standard.out / theirs["captions"]["vtt"]
        ).read_text()
    # fetch says what render said
    assert [ln for ln in fetched.stderr.splitlines() if ln.startswith("warning: ")] == [
        ln for ln in standard.stderr.splitlines() if ln.startswith("warning: ")
    ]


def test_submit_takes_the_caption_profile_and_a_wrong_one_is_refused(home: Path) -> None:
    helped = narrate(home, "submit", "--help")
    assert helped.returncode == 0 and "--caption-profile" in helped.stdout
    wrong = narrate(home, "render", SAMPLE, "--out", "x", "--caption-profile", "teletext")
    assert wrong.returncode == 2 and "teletext" in wrong.stderr


# --- checking any caption file ------------------------------------------------------------


def test_a_foreign_file_is_checked_cue_by_cue(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "foreign.vtt"
    path.write_text(FOREIGN_VTT)
    result = narrate(home, "captions", "--check", path)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0] == f"{path}: FAILS standard: 8 of 9 cues break a rule " + (
        "(line_chars 1, lines 1, chars_per_s 1, min_duration 1, max_duration 1, gap 1, "
        "overlap 1, article_break 1)"
    )
    cues = [int(line.split()[1]) for line in lines[1:]]
    assert cues == [1, 2, 3, 4, 5, 6, 7, 8]
    assert "00:00:09.100 --> 00:00:10.100" in lines[3] and "41 chars/s" in lines[3]
    code, reports = check(home, "--profile", "broadcast", path)
    assert code == 1 and reports[0]["profile"] == "broadcast"


def test_a_file_that_keeps_every_rule_passes(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "fine.srt"
    path.write_text("1\n00:00:01,000 --> 00:00:03,000\nA short line.\n")
    result = narrate(home, "captions", "--check", path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{path}: passes standard (1 cues)\n"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"WEBVTT\n\n00:00:01.000 --> later\nhi\n", "line 3: not a WebVTT cue timing"),
        (b"\xff\xfe\x00garbage", "not UTF-8"),
        (b"<html>not captions</html>", "neither WebVTT nor SubRip"),
    ],
)
def test_a_malformed_file_exits_2_without_a_traceback(
    home: Path, tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    result = narrate(home, "captions", "--check", path)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert result.stderr.startswith("narrate: error: ")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["captions", "--check"], "--check needs the caption files"),
        (["captions", "--check", "missing.vtt"], "does not exist"),
        (["captions", "--check", "a.vtt", "--format", "srt"], "--check reads caption files"),
        (["captions", "--check", "a.vtt", "--chapter", "2"], "--check reads caption files"),
        (["captions", "out/01-i.vtt"], "narrate captions --check out/01-i.vtt"),
        (["captions"], "give one job id"),
        (["captions", "JOB", "--json"], "--json goes with --check"),
        (["captions", "JOB", "--format", "json", "--profile", "children"], "no cues"),
        (["captions", "no-such-job"], "no job 'no-such-job'"),
    ],
)
def test_misuse_is_explained(home: Path, args: list[str], message: str) -> None:
    result = narrate(home, *args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
