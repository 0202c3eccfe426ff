"""The ``narrate`` command end to end, as a user runs it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from renderer.audio import decoded_duration_ms

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "lighthouse.md"


def narrate(env: dict[str, str], *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "narrate", *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def check_output_folder(out: Path) -> dict[str, object]:
    """Every promise of the output contract, for any rendered folder."""
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest) >= {"job", "input", "engine", "voice", "chapters"}
    for chapter in manifest["chapters"]:
        assert set(chapter) >= {"index", "title", "audio", "captions", "duration_ms", "words"}
        audio = out / chapter["audio"]
        assert re.fullmatch(r"\d{2,}-[a-z0-9-]+\.(mp3|wav|opus)", chapter["audio"])
        assert abs(decoded_duration_ms(audio) - chapter["duration_ms"]) <= 60
        vtt = (out / chapter["captions"]["vtt"]).read_text()
        srt = (out / chapter["captions"]["srt"]).read_text()
        assert vtt.startswith("WEBVTT")
        assert "-->" in srt
    return manifest


def check_word_track(env: dict[str, str], job: str, manifest: dict[str, object]) -> None:
    result = narrate(env, "captions", job, "--format", "json")
    assert result.returncode == 0, result.stderr
    track = json.loads(result.stdout)
    assert track["job"] == job
    chapters = manifest["chapters"]
    assert isinstance(chapters, list)
    assert [c["index"] for c in track["chapters"]] == [c["index"] for c in chapters]
    for exported, entry in zip(track["chapters"], chapters, strict=True):
        words = exported["words"]
        assert len(words) == entry["words"] > 0
        starts = [w["start_ms"] for w in words]
        assert starts == sorted(starts), "caption times must never go back"
        assert all(w["start_ms"] <= w["end_ms"] <= entry["duration_ms"] for w in words)
        offsets = [w["char_start"] for w in words]
        assert offsets == sorted(offsets) and len(set(offsets)) == len(offsets)


def test_render_sample_end_to_end(env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = narrate(env, "render", SAMPLE, "--out", out)
    assert result.returncode == 0, result.stderr
    manifest = check_output_folder(out)
    chapters = manifest["chapters"]
    assert isinstance(chapters, list)
    assert [c["title"] for c in chapters] == [
        "Chapter 1: The Storm",
        "Chapter 2: The Silence",
        "Chapter 3: The North Window",
    ]
    assert chapters[0]["audio"] == "01-chapter-1-the-storm.mp3"
    assert "segments" in result.stderr
    job = str(manifest["job"])
    check_word_track(env, job, manifest)
    vtt = narrate(env, "captions", job, "--format", "vtt", "--chapter", "2")
    assert vtt.returncode == 0 and vtt.stdout.startswith("WEBVTT")
    assert "Mara noticed the silence" in vtt.stdout.replace("\n", " ")

    again = narrate(env, "render", SAMPLE, "--out", out, "--json")
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert report["synthesized"] == 0 and report["reused"] == report["segments"] > 0
    assert "nothing to synthesize" in again.stderr
    assert report["manifest"]["chapters"] == [{**c, "audio": c["audio"]} for c in chapters] or [
        c["duration_ms"] for c in report["manifest"]["chapters"]
    ] == [c["duration_ms"] for c in chapters]


def test_render_wav_with_options(env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = narrate(
        env, "render", SAMPLE, "--out", out, "--format", "wav", "--sample-rate", "16000",
        "--rate", "1.5", "--voice", "en-gb-x-rp", "--chapters", "2", "--quiet",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "segments" not in result.stderr
    manifest = check_output_folder(out)
    assert manifest["voice"] == "en-gb-x-rp"
    (chapter,) = manifest["chapters"]  # type: ignore[misc]
    assert chapter["index"] == 2  # numbered as in the document, not the selection
    assert chapter["audio"] == "02-chapter-2-the-silence.wav"


def test_plan_json_contract(env: dict[str, str]) -> None:
    result = narrate(env, "plan", SAMPLE, "--json")
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    for chapter in plan["chapters"]:
        assert set(chapter) == {"index", "title", "segments"}
        for segment in chapter["segments"]:
            assert set(segment) >= {"index", "text", "ssml", "chars"}
            assert segment["ssml"].startswith("<speak>")
            assert segment["chars"] == len(segment["text"])
    text = " ".join(s["ssml"] for c in plan["chapters"] for s in c["segments"])
    assert "stopped &amp; the storm" in text


def test_read_along_before_the_input_says_how_to_write_it(
    env: dict[str, str], tmp_path: Path
) -> None:
    """--read-along's value is optional, so it takes the next word: when that is the
    input, the message says what happened and how to write it."""
    result = narrate(env, "render", "--read-along", SAMPLE, "--out", tmp_path / "out")
    assert result.returncode == 2
    assert "it looks like your INPUT" in result.stderr
    assert "--read-along=word" in result.stderr
    assert not (tmp_path / "out").exists()


def test_voices_lists_espeak_voices(env: dict[str, str]) -> None:
    result = narrate(env, "voices", "--engine", "espeak")
    assert result.returncode == 0
    assert re.search(r"^en-us\s", result.stdout, re.M)
    assert "licence of these voices: GPL-3.0-or-later (espeak-ng)" in result.stdout


def write_broken_epub(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mimetype", "application/epub+zip")
        archive.writestr("META-INF/container.xml", "<container><rootfiles>")
    return path


BOMB = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<html><body><h1>Bomb</h1><p>&lol3;</p></body></html>"""


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.md", None, "not found|does not exist|no such"),
        ("book.pdf", b"%PDF-1.4 whatever", "kind of document|format"),
        ("empty.md", b"   \n\n", "no text|empty"),
        ("latin1.txt", "Caf\xe9 au lait".encode("latin-1"), "UTF-8"),
        ("broken.epub", "broken-epub", "EPUB"),
        ("bomb.html", BOMB.encode(), "entit|DOCTYPE|refus"),
    ],
)
def test_bad_input_exits_2_with_one_clear_message(
    env: dict[str, str], tmp_path: Path, name: str, content: bytes | str | None, message: str
) -> None:
    source = tmp_path / name
    if content == "broken-epub":
        write_broken_epub(source)
    elif isinstance(content, bytes):
        source.write_bytes(content)
    out = tmp_path / "out"
    result = narrate(env, "render", source, "--out", out)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert re.search(message, result.stderr, re.I), result.stderr
    assert result.stderr.startswith("narrate: error:")
    assert not out.exists()


@pytest.mark.parametrize(
    "args",
    [
        ["--rate", "9"],
        ["--voice", "klingon"],
        ["--format", "aiff"],
        ["--master", "acx", "--format", "wav"],
        ["--master", "acx", "--bitrate", "128"],
        ["--cover", "README.md"],
        ["--chapters", "7-9"],
        ["--sample-rate", "100"],
    ],
)
def test_bad_options_exit_2(env: dict[str, str], tmp_path: Path, args: list[str]) -> None:
    out = tmp_path / "out"
    result = narrate(env, "render", SAMPLE, "--out", out, *args)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()


def test_hostile_chapter_title_stays_inside_out(env: dict[str, str], tmp_path: Path) -> None:
    source = tmp_path / "evil.md"
    source.write_text("# ../../x\n\nA short body.\n\n# /etc/passwd\n\nAnother body.\n")
    out = tmp_path / "nested" / "out"
    result = narrate(env, "render", source, "--out", out, "--format", "wav", "-q")
    assert result.returncode == 0, result.stderr
    names = sorted(p.name for p in out.iterdir())
    assert "01-x.wav" in names and "02-etc-passwd.wav" in names
    assert not (tmp_path / "x.wav").exists() and not (tmp_path / "nested" / "x.wav").exists()


def test_unknown_job_exits_2(env: dict[str, str]) -> None:
    result = narrate(env, "captions", "0" * 32, "--format", "json")
    assert result.returncode == 2
    assert "no job" in result.stderr


def test_render_on_postgresql_after_db_upgrade(
    env: dict[str, str], postgres_url: str, tmp_path: Path
) -> None:
    env = {**env, "NARRATE_DATABASE_URL": postgres_url}
    out = tmp_path / "out"
    refused = narrate(env, "render", SAMPLE, "--out", out)
    assert refused.returncode == 2
    assert "narrate db upgrade" in refused.stderr
    assert not out.exists()
    upgraded = narrate(env, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    result = narrate(env, "render", SAMPLE, "--out", out, "--chapters", "1-2")
    assert result.returncode == 0, result.stderr
    manifest = check_output_folder(out)
    check_word_track(env, str(manifest["job"]), manifest)


def test_failed_segment_exits_1_names_it_and_writes_no_manifest(
    env: dict[str, str], tmp_path: Path
) -> None:
    source = tmp_path / "book.md"
    source.write_text(
        "# One\n\nA fine first chapter.\n\n# Two\n\nThis sentence asks for STUB-FATAL here.\n"
    )
    out = tmp_path / "out"
    out.mkdir()
    (out / "manifest.json").write_text("{}")  # an earlier, complete render's
    result = narrate(env, "render", source, "--out", out, "--engine", "stub", "--json")
    assert result.returncode == 1, result.stderr
    assert "chapter 2 (Two), segment 1" in result.stderr
    assert "fatal fault" in result.stderr
    assert "Traceback" not in result.stderr
    # nothing was exported: the earlier result is untouched, no new manifest vouches for it
    assert (out / "manifest.json").read_text() == "{}"
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json"]
    report = json.loads(result.stdout)
    assert report["status"] == "failed" and report["manifest"] is None
    assert [(f["chapter"], f["segment"]) for f in report["failures"]] == [(2, 1)]


def test_transient_failures_are_retried_until_the_job_succeeds(
    env: dict[str, str], tmp_path: Path
) -> None:
    source = tmp_path / "book.md"
    source.write_text("# One\n\nThe engine fails twice on STUB-TRANSIENT and then works.\n")
    out = tmp_path / "out"
    result = narrate(env, "render", source, "--out", out, "--engine", "stub", "--format", "wav")
    assert result.returncode == 0, result.stderr
    manifest = check_output_folder(out)
    check_word_track(env, str(manifest["job"]), manifest)


def test_unwritable_out_and_bad_bitrate_exit_2_before_any_work(
    env: dict[str, str], tmp_path: Path
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for args in (["--out", blocker / "sub"], ["--out", tmp_path / "o", "--bitrate", "-5"]):
        result = narrate(env, "render", SAMPLE, *args)
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr and "internal error" not in result.stderr


def test_outputs_get_the_usual_file_mode(env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = narrate(env, "render", SAMPLE, "--out", out, "--engine", "stub", "-q")
    assert result.returncode == 0, result.stderr
    umask = os.umask(0o022)
    os.umask(umask)
    assert {p.stat().st_mode & 0o777 for p in out.iterdir()} == {0o666 & ~umask}


def test_captions_default_to_the_first_rendered_chapter(
    env: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = narrate(env, "render", SAMPLE, "--out", out, "--engine", "stub", "--chapters", "2-3")
    assert result.returncode == 0, result.stderr
    job = json.loads((out / "manifest.json").read_text())["job"]
    vtt = narrate(env, "captions", job, "--format", "srt")
    assert vtt.returncode == 0, vtt.stderr
    assert "Chapter 2" in vtt.stdout
    missing = narrate(env, "captions", job, "--chapter", "1")
    assert missing.returncode == 2 and "its chapters: 2, 3" in missing.stderr
