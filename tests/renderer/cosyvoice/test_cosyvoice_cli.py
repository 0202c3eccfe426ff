"""The CosyVoice commands: voices create/list/status/delete, estimate, simulate."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import urllib.request
import wave
from array import array
from collections.abc import Callable
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from narrate import cli
from narrate.cli_cosyvoice import register
from narrate.errors import NarrateError
from renderer.cosyvoice.simulator import SimulatorThread


@pytest.fixture
def run(
    cosyvoice_simulator: SimulatorThread, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Result]:
    monkeypatch.setenv("NARRATE_COSYVOICE_URL", cosyvoice_simulator.url)
    monkeypatch.setenv("DASHSCOPE_API_KEY", "cli-key")
    register(cli.cli, cli.voices)
    register(cli.cli, cli.voices)  # idempotent

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(cli.cli, list(args))

    return invoke


def failure(result: Result) -> NarrateError:
    assert isinstance(result.exception, NarrateError), result.output
    return result.exception


def test_register_adds_each_command_once() -> None:
    group, voices = click.Group("narrate"), click.Group("voices")
    group.add_command(voices)
    register(group, voices)
    register(group, voices)
    assert set(group.commands) == {"simulate", "voices"}
    assert set(voices.commands) == {"create", "list", "status", "delete"}


def test_clone_from_url_then_list_status_delete(run: Callable[..., Result]) -> None:
    created = run(
        "voices", "create", "--clone", "https://example.com/me.wav",
        "--target-model", "cosyvoice-v3-flash", "--prefix", "me1", "--wait",
        "--poll-interval", "0.1", "--json",
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    report = json.loads(created.stdout)
    voice_id = report["voice_id"]
    assert report["status"] == "OK" and voice_id.startswith("cosyvoice-v3-flash-me1-")
    listed = run("voices", "list")
    assert voice_id in listed.stdout and "OK" in listed.stdout
    status = run("voices", "status", voice_id)
    assert "OK (ready to use); target model cosyvoice-v3-flash" in status.stdout
    assert run("voices", "delete", voice_id).exit_code == 0
    assert voice_id not in run("voices", "list").stdout
    missing = failure(run("voices", "status", voice_id))
    assert "InvalidParameter" in missing.message and missing.exit_code == 1


def test_design_saves_the_preview(run: Callable[..., Result], tmp_path: Path) -> None:
    preview = tmp_path / "preview.wav"
    result = run(
        "voices", "create", "--design", "A calm, warm male narrator in his fifties",
        "--target-model", "cosyvoice-v3.5-plus", "--preview-out", str(preview),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "-vd-" in result.stdout and preview.read_bytes()[:4] == b"RIFF"
    with_v2 = failure(run("voices", "create", "--design", "x", "--target-model", "cosyvoice-v2"))
    assert "no voice design" in with_v2.message and with_v2.exit_code == 2


def good_sample(path: Path) -> Path:
    rate = 16000
    data = array(
        "h",
        (
            int(8000 * math.sin(2 * math.pi * 180 * i / rate)) if i % 4160 < 3200 else 0
            for i in range(12 * rate)
        ),
    )
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(data.tobytes())
    return path


def test_local_file_is_checked_and_needs_a_public_url(
    run: Callable[..., Result], tmp_path: Path
) -> None:
    sample = good_sample(tmp_path / "me.wav")
    args = ("voices", "create", "--clone", str(sample), "--target-model", "cosyvoice-v3-flash")
    no_url = failure(run(*args))
    assert "passed the local checks" in no_url.message and no_url.exit_code == 2
    assert no_url.hint is not None and "--public-url" in no_url.hint
    ok = run(*args, "--public-url", "https://bucket.example.com/me.wav")
    assert ok.exit_code == 0 and ok.stdout.startswith("cosyvoice-v3-flash-narrate-")
    silent = tmp_path / "silent.wav"
    with wave.open(str(silent), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(bytes(2 * 8000 * 3))
    bad = run("voices", "create", "--clone", str(silent), "--target-model", "cosyvoice-v3-flash")
    assert failure(bad).exit_code == 2
    assert "problem: sample_rate" in bad.stderr and "problem: continuous_speech" in bad.stderr


def test_estimate_prints_the_figures(run: Callable[..., Result], tmp_path: Path) -> None:
    source = tmp_path / "book.md"
    source.write_text("# One\n\n你好，世界。Hello.\n\n# Two\n\nMore text here.\n")
    result = run("estimate", str(source), "--model", "cosyvoice-v3-plus")
    assert result.exit_code == 0, result.output
    # heading "One" (3) + 你好，世界。(10) + Hello. (6): Han characters count 2
    assert "1. One: 2 requests, 15 characters, 19 billed" in result.stdout
    total = re.search(
        r"total: (\d+) characters, (\d+) billed characters, (\d+) requests", result.stdout
    )
    assert total is not None
    assert "minimum time at 3 requests/s" in result.stdout
    assert "cosyvoice-v3-plus at 2 CNY per 10,000 characters" in result.stdout
    prices = tmp_path / "prices.json"
    prices.write_text('{"currency": "USD", "per_10k_chars": {"cosyvoice-v3-plus": 0.3}}')
    data = json.loads(
        run(
            "estimate",
            str(source),
            "--model",
            "cosyvoice-v3-plus",
            "--prices",
            str(prices),
            "--json",
        ).stdout
    )
    assert data["currency"] == "USD" and data["billed_characters"] == int(total.group(2))
    assert data["requests"] == int(total.group(3)) == 4
    wrong = failure(
        run("estimate", str(source), "--model", "cosyvoice-v3.5-plus", "--voice", "longanyang")
    )
    assert wrong.exit_code == 2 and "no system voices" in wrong.message


def test_simulate_command_serves_stats(tmp_path: Path) -> None:
    code = (
        "import sys; from narrate import cli; from narrate.cli_cosyvoice import register; "
        "register(cli.cli, cli.voices); sys.argv[0] = 'narrate'; cli.main()"
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            code,
            "simulate",
            "cosyvoice",
            "--port",
            "0",
            "--fault",
            "internal",
            "--fail-rate",
            "0.5",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        port = re.search(r"127\.0\.0\.1:(\d+)/api-ws", line)
        assert port is not None, line
        with urllib.request.urlopen(f"http://127.0.0.1:{port.group(1)}/stats", timeout=5) as r:
            stats = json.loads(r.read())
        assert stats["tasks_started"] == 0 and stats["faults_injected"] == 0
    finally:
        process.terminate()
        process.wait(10)
