"""``narrate check``: every rule, on files made to pass or to fail one rule at a time."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from renderer.check import check
from renderer.measure import Measures
from renderer.profiles import profile
from tests.renderer.signals import encode, noise, silence, speechlike, write_wav


def narrate(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "narrate", *map(str, args)], capture_output=True, text=True
    )


def acx_like(tmp_path: Path, name: str, rms_db: float, *, clip: bool = False) -> Path:
    """Room tone at the ends and, between, a tone rising and falling like speech (a low
    crest factor: its peaks stay about 6 dB over its RMS) at ``rms_db``, or clipped at
    full scale when asked."""
    t = np.arange(30 * 44100) / 44100
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * 0.7 * t)
    speech = np.sin(2 * np.pi * 220 * t) * envelope
    speech *= 10 ** (rms_db / 20) / np.sqrt(np.mean(speech**2))
    if clip:
        speech = np.clip(speech * 4, -1.0, 1.0)
    body = np.concatenate([silence(0.75), speech, silence(2.0)])
    body = body + noise(body.size / 44100, -72.0)
    wav = write_wav(tmp_path / f"{name}.wav", body)
    return encode(wav, tmp_path / f"{name}.mp3", "-b:a", "192k", "-ar", "44100", "-ac", "1")


def failed(result: subprocess.CompletedProcess[str]) -> dict[str, set[str]]:
    reports = json.loads(result.stdout)
    return {
        Path(r["file"]).name: {rule["rule"] for rule in r["rules"] if not rule["passed"]}
        for r in reports
    }


def test_good_clipped_loud_and_quiet_files(tmp_path: Path) -> None:
    good = acx_like(tmp_path, "good", -19.5)  # with the quiet ends, about -20 in all
    clipped = acx_like(tmp_path, "clipped", -20.0, clip=True)
    loud = acx_like(tmp_path, "loud", -12.0)
    quiet = acx_like(tmp_path, "quiet", -32.0)
    ok = narrate("check", good, "--profile", "acx", "--json")
    assert ok.returncode == 0, failed(ok)
    assert "passes acx" in narrate("check", good).stdout
    result = narrate("check", clipped, loud, quiet, "--profile", "acx", "--json")
    assert result.returncode == 1
    problems = failed(result)
    assert problems["clipped.mp3"] == {"rms", "peak", "true_peak"}
    assert problems["loud.mp3"] == {"rms"}
    assert problems["quiet.mp3"] == {"rms"}
    text = narrate("check", quiet, "--profile", "acx")
    assert "FAIL  RMS level" in text.stdout and "-23 dB to -18 dB" in text.stdout


def test_format_rules(tmp_path: Path) -> None:
    wav = write_wav(
        tmp_path / "s.wav", np.concatenate([silence(0.7), speechlike(5, -20), silence(2)])
    )
    low = encode(wav, tmp_path / "low.mp3", "-b:a", "128k", "-ar", "22050")
    vbr = encode(wav, tmp_path / "vbr.mp3", "-q:a", "2", "-ar", "44100")
    stereo = encode(wav, tmp_path / "stereo.mp3", "-b:a", "192k", "-ac", "2")
    problems = failed(narrate("check", low, vbr, stereo, "--profile", "acx", "--json"))
    assert {"bitrate", "sample_rate"} <= problems["low.mp3"]
    assert "cbr" in problems["vbr.mp3"]
    assert "mono" in problems["stereo.mp3"]


def test_podcast_and_broadcast_loudness(tmp_path: Path) -> None:
    wav = write_wav(tmp_path / "s.wav", speechlike(20, -20))
    path = encode(wav, tmp_path / "s.mp3", "-b:a", "128k")
    reports = {
        name: json.loads(narrate("check", path, "--profile", name, "--json").stdout)[0]
        for name in ("podcast", "broadcast")
    }
    lufs = reports["podcast"]["measures"]["integrated_lufs"]
    assert reports["podcast"]["passed"] == (-20.0 <= round(lufs, 1) <= -18.0)
    assert reports["broadcast"]["passed"] is False  # far from -23


def test_bad_input_exits_2(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not audio")
    result = narrate("check", text)
    assert result.returncode == 2 and "cannot be read as audio" in result.stderr
    missing = narrate("check", tmp_path / "missing.mp3")
    assert missing.returncode == 2
    assert narrate("check", text, "--profile", "loud").returncode == 2


def _measures(**values: object) -> Measures:
    base: dict[str, object] = {
        "codec": "mp3", "sample_rate_hz": 44100, "channels": 1, "duration_ms": 60_000,
        "bitrate_kbps": 192, "constant_bitrate": True, "rms_db": -20.0, "peak_db": -4.0,
        "true_peak_dbtp": -3.8, "integrated_lufs": -19.0, "loudness_range_lu": 4.0,
        "noise_floor_db": -70.0, "head_silence_ms": 750, "tail_silence_ms": 2000,
    }  # fmt: skip
    return Measures(**{**base, **values})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("values", "failing"),
    [
        ({}, set()),
        ({"rms_db": -23.04}, set()),  # -23.0 at the meters' precision
        ({"rms_db": -23.2}, {"rms"}),
        ({"noise_floor_db": -55.0}, {"noise_floor"}),
        ({"head_silence_ms": 300, "tail_silence_ms": 6000}, {"head", "tail"}),
        ({"duration_ms": 121 * 60_000}, {"length"}),
        ({"bitrate_kbps": None}, {"bitrate"}),
    ],
)
def test_acx_rules(values: dict[str, object], failing: set[str]) -> None:
    report = check(_measures(**values), profile("acx"))
    assert {r.rule for r in report.failures} == failing
    assert report.passed == (not failing)


def test_podcast_target_depends_on_channels() -> None:
    podcast = profile("podcast")
    assert check(_measures(integrated_lufs=-19.0, true_peak_dbtp=-1.5), podcast).passed
    assert not check(_measures(integrated_lufs=-19.0, channels=2), podcast).passed
    assert check(_measures(integrated_lufs=-16.2, channels=2, true_peak_dbtp=-1.0), podcast).passed
