"""``narrate render --engine cosyvoice`` end to end against the simulator (subprocesses).

The output contract is espeak's: manifest, chapter audio, captions. On top of it: chapter
durations equal the audio the simulator made plus narrate's pauses, captions cover every
word (every character in Chinese), transient faults are survived, a fatal one is
reported with the segment, the service's code and what to do, and ``narrate estimate``
predicts the simulator's bill exactly.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from jobs.planning import plan_document
from jobs.render import RenderRequest, policy_for, read_document
from renderer.audio import decoded_duration_ms
from renderer.cosyvoice.billing import is_han
from renderer.cosyvoice.config import from_env
from renderer.cosyvoice.engine import CosyVoiceEngine
from renderer.cosyvoice.simulator import SimulatorThread
from renderer.cosyvoice.simulator.server import server_sentences
from renderer.cosyvoice.simulator.voice import speak
from renderer.cosyvoice.text import parse_ssml, plan_task, sentence_spans
from renderer.edit import AudioSegment, speech_span
from renderer.timing import tokenize

RATE_HZ = 24000
#: run the CLI with the CosyVoice commands registered (as narrate/cli.py will do)
CLI = (
    "import sys; from narrate import cli; from narrate.cli_cosyvoice import register; "
    "register(cli.cli, cli.voices); sys.argv[0] = 'narrate'; cli.main()"
)
Stats = Callable[[SimulatorThread], dict[str, Any]]


def narrate(env: dict[str, str], *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CLI, *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture
def cosy_env(env: dict[str, str]) -> Callable[[SimulatorThread], dict[str, str]]:
    def make(simulator: SimulatorThread) -> dict[str, str]:
        return {
            **env,
            "NARRATE_COSYVOICE_URL": simulator.url,
            "DASHSCOPE_API_KEY": "e2e-key",
            "NARRATE_WORKERS": "2",
        }

    return make


def expected_chapter_ms(path: Path, chapters: str | None, env: dict[str, str]) -> list[int]:
    """Chapter durations from the simulator's voice: its audio per sentence and narrate's
    local breaks, each segment trimmed to its speech as the stitch does, and the stitcher's
    pauses between segments."""
    engine = CosyVoiceEngine(config=from_env(env))
    document = read_document(RenderRequest(path, "cosyvoice", chapters=chapters))
    durations = []
    for chapter in plan_document(document, policy_for(engine)):
        frames = 0
        for segment in chapter.segments:
            plan = plan_task(segment.ssml)
            pcm = b""
            if plan.ssml_mode:  # one message; the service speaks aliases sentence by sentence
                parsed = parse_ssml(plan.messages[0].text, aliases=True)
                for part, breaks in server_sentences(parsed.text, parsed.breaks):
                    if part.strip():
                        pcm += speak(part, sample_rate=RATE_HZ, breaks=breaks).pcm
            else:  # narrate's own breaks go between the sentences, where they stand
                text = plan.text.rstrip()
                breaks = sorted(plan.breaks)
                for a, b in sentence_spans(text):
                    while breaks and breaks[0][0] <= a:
                        pcm += bytes(2 * (breaks.pop(0)[1] * RATE_HZ // 1000))
                    pcm += speak(text[a:b], sample_rate=RATE_HZ).pcm
                pcm += bytes(2 * sum(ms * RATE_HZ // 1000 for _p, ms in breaks))
            audio = AudioSegment(data=pcm, sample_width=2, frame_rate=RATE_HZ, channels=1)
            frames += speech_span(audio).frames + segment.pause_after_ms * RATE_HZ // 1000
        durations.append(frames * 1000 // RATE_HZ)
    return durations


def check_render(
    env: dict[str, str], out: Path, source: Path, chapters: str | None, *, chinese: bool
) -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads((out / "manifest.json").read_text())
    assert manifest["engine"] == "cosyvoice" and manifest["voice"] == "longanyang"
    assert [c["duration_ms"] for c in manifest["chapters"]] == expected_chapter_ms(
        source, chapters, env
    )
    track = json.loads(narrate(env, "captions", manifest["job"], "--format", "json").stdout)
    document = read_document(RenderRequest(source, "cosyvoice", chapters=chapters))
    for entry, exported, chapter in zip(
        manifest["chapters"], track["chapters"], document.chapters, strict=True
    ):
        assert re.fullmatch(r"\d{2,}-[a-z0-9-]+\.wav", entry["audio"])
        assert abs(decoded_duration_ms(out / entry["audio"]) - entry["duration_ms"]) <= 60
        assert (out / entry["captions"]["vtt"]).read_text().startswith("WEBVTT")
        assert "-->" in (out / entry["captions"]["srt"]).read_text()
        words = exported["words"]
        spans = [(w["char_start"], w["char_end"]) for w in words]
        assert spans == tokenize(chapter.text), "every word is captioned, once, in order"
        starts = [w["start_ms"] for w in words]
        assert starts == sorted(starts)
        assert all(w["start_ms"] <= w["end_ms"] <= entry["duration_ms"] for w in words)
        if chinese:
            han = [i for i, ch in enumerate(chapter.text) if is_han(ch)]
            covered = {i for a, b in spans for i in range(a, b)}
            assert set(han) <= covered
            assert sum(1 for w in words if any(is_han(c) for c in w["text"])) == len(han)
    return manifest


def estimate(env: dict[str, str], source: Path, *args: str) -> dict[str, Any]:
    result = narrate(env, "estimate", source, "--engine", "cosyvoice", *args, "--json")
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


@pytest.mark.parametrize(
    ("name", "chapters", "chinese"),
    [("d2l-en_calculus.md", "1-2", False), ("lunyu_ch1-8_zh.txt", None, True)],
    ids=["english", "chinese"],
)
def test_render_matches_the_simulator(
    corpus: Path,
    cosyvoice_simulator: SimulatorThread,
    cosy_env: Callable[[SimulatorThread], dict[str, str]],
    http_stats: Stats,
    tmp_path: Path,
    name: str,
    chapters: str | None,
    chinese: bool,
) -> None:
    env = cosy_env(cosyvoice_simulator)
    source = corpus / name
    selection = ("--chapters", chapters) if chapters else ()
    out = tmp_path / "out"
    result = narrate(
        env, "render", source, "--out", out, "--engine", "cosyvoice", "--format", "wav",
        "--quiet", "--json", *selection,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    check_render(env, out, source, chapters, chinese=chinese)
    stats = http_stats(cosyvoice_simulator)
    assert json.loads(result.stdout)["billed_chars"] == stats["billed_characters"]
    predicted = estimate(env, source, "--model", "cosyvoice-v3-flash", *selection)
    assert stats["rejected_by_rate_limit"] == 0
    assert stats["max_tasks_started_in_one_second"] <= 3
    assert stats["tasks_started"] == stats["tasks_finished"] == predicted["requests"]
    assert predicted["billed_characters"] == stats["billed_characters"]
    assert predicted["price"] == f"{predicted['billed_characters'] / 10_000:.4f}"


def test_render_survives_transient_faults(
    corpus: Path,
    start_simulator: Callable[..., SimulatorThread],
    cosy_env: Callable[[SimulatorThread], dict[str, str]],
    http_stats: Stats,
    tmp_path: Path,
) -> None:
    simulator = start_simulator(
        faults=("internal", "drop", "throttle", "truncate"), fail_rate=0.2, seed=7
    )
    env = cosy_env(simulator)
    source = corpus / "d2l-en_calculus.md"
    out = tmp_path / "out"
    result = narrate(
        env, "render", source, "--out", out, "--engine", "cosyvoice", "--format", "wav",
        "--chapters", "1-2", "--quiet",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    check_render(env, out, source, "1-2", chinese=False)
    stats = http_stats(simulator)
    assert stats["faults_injected"] >= 2
    truncated = stats["faults_by_kind"].get("truncate", 0)  # finished, but refused by narrate
    requests = estimate(env, source, "--chapters", "1-2")["requests"]
    assert stats["tasks_finished"] - truncated == requests


def test_fatal_fault_names_segment_code_and_remedy(
    start_simulator: Callable[..., SimulatorThread],
    cosy_env: Callable[[SimulatorThread], dict[str, str]],
    tmp_path: Path,
) -> None:
    simulator = start_simulator(faults=("arrears",), fault_marker="lighthouse")
    source = tmp_path / "book.md"
    source.write_text("# One\n\nThe sea was calm.\n\n# Two\n\nThe lighthouse stood alone.\n")
    out = tmp_path / "out"
    result = narrate(
        cosy_env(simulator), "render", source, "--out", out, "--engine", "cosyvoice", "--quiet"
    )
    assert result.returncode == 1
    assert not (out / "manifest.json").exists()
    line = next(x for x in result.stderr.splitlines() if "Arrearage" in x)
    assert "chapter 2 (Two), segment" in line and "(task " in line
    assert "top it up" in result.stderr


def test_render_without_a_key_stops_before_the_job(
    cosyvoice_simulator: SimulatorThread,
    cosy_env: Callable[[SimulatorThread], dict[str, str]],
    tmp_path: Path,
) -> None:
    env = cosy_env(cosyvoice_simulator)
    del env["DASHSCOPE_API_KEY"]
    source = tmp_path / "a.md"
    source.write_text("Hello.\n")
    result = narrate(env, "render", source, "--out", tmp_path / "o", "--engine", "cosyvoice")
    assert result.returncode == 2
    assert "DASHSCOPE_API_KEY is not set" in result.stderr


def test_estimate_with_a_lexicon_matches_the_billed_render(
    cosyvoice_simulator: SimulatorThread,
    cosy_env: Callable[[SimulatorThread], dict[str, str]],
    http_stats: Callable[[SimulatorThread], dict[str, Any]],
    tmp_path: Path,
) -> None:
    env = cosy_env(cosyvoice_simulator)
    source = tmp_path / "book.md"
    source.write_text("# One\n\nMara kept the light. Mara wound the clock at nine.\n")
    lexicon = tmp_path / "lexicon.txt"
    lexicon.write_text("Mara = marra the keeper\n")
    plain = estimate(env, source)["billed_characters"]
    predicted = estimate(env, source, "--lexicon", str(lexicon))["billed_characters"]
    assert predicted > plain  # the alias is what is sent and billed
    result = narrate(
        env, "render", source, "--out", tmp_path / "out", "--engine", "cosyvoice",
        "--lexicon", lexicon, "--quiet", "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert http_stats(cosyvoice_simulator)["billed_characters"] == predicted
    assert json.loads(result.stdout)["billed_chars"] == predicted
