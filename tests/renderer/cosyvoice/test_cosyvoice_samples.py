"""Local checks of clone samples: every problem found and explained."""

from __future__ import annotations

import math
import wave
from array import array
from pathlib import Path

from renderer.cosyvoice.samples import check_sample, judge, speech_stats

RATE = 16000


def speech(seconds: float, rate: int = RATE) -> array[int]:
    """Syllable-like bursts: 200 ms tone, 60 ms quiet (a short pause between words)."""
    out = array("h")
    n = int(seconds * rate)
    for i in range(n):
        in_burst = (i % int(0.26 * rate)) < int(0.2 * rate)
        out.append(int(8000 * math.sin(2 * math.pi * 180 * i / rate)) if in_burst else 0)
    return out


def silence(seconds: float, rate: int = RATE) -> array[int]:
    return array("h", bytes(2 * int(seconds * rate)))


def write_wav(path: Path, samples: array[int], rate: int = RATE, width: int = 2) -> Path:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(width)
        wav.setframerate(rate)
        if width == 2:
            wav.writeframes(samples.tobytes())
        else:
            wav.writeframes(b"".join((256 * s).to_bytes(3, "little", signed=True) for s in samples))
    return path


def test_a_good_sample_passes(tmp_path: Path) -> None:
    problems, stats = check_sample(write_wav(tmp_path / "ok.wav", speech(12)))
    assert problems == []
    assert stats is not None and 11.9 < stats.duration_s < 12.1
    assert stats.longest_speech_s > 11 and stats.speech_share > 0.7


def test_every_problem_is_reported(tmp_path: Path) -> None:
    samples = speech(3, 8000) + silence(3, 8000) + speech(3, 8000) + silence(3, 8000)
    problems, _ = check_sample(write_wav(tmp_path / "bad.wav", samples, rate=8000))
    checks = {p.check for p in problems}
    assert {"sample_rate", "continuous_speech", "silence", "speech_share"} <= checks
    messages = " ".join(p.message for p in problems)
    assert "8000 Hz" in messages and "at least 5 s" in messages and "2 s" in messages


def test_format_and_size_rules(tmp_path: Path) -> None:
    deep = check_sample(write_wav(tmp_path / "24bit.wav", speech(12), width=3))[0]
    assert [p.check for p in deep] == ["format"] and "16-bit" in deep[0].message
    text = tmp_path / "notes.txt"
    text.write_text("not audio at all")
    assert any(p.check == "format" for p in check_sample(text)[0])
    huge = judge(size=11 * 1024 * 1024, fmt="mp3", bits=None, rate=44100, stats=None)
    assert [p.check for p in huge] == ["size"]


def test_durations_outside_the_recommendation() -> None:
    long_stats = speech_stats(speech(61).tobytes())
    too_long = judge(size=1, fmt="wav", bits=16, rate=RATE, stats=long_stats)
    assert any(p.check == "duration" and p.fatal for p in too_long)
    short = judge(size=1, fmt="wav", bits=16, rate=RATE, stats=speech_stats(speech(7).tobytes()))
    assert [(p.check, p.fatal) for p in short] == [("duration", False)]
