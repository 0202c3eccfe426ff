"""Measuring audio: levels against known signals, and against two independent meters on
real files (ffmpeg's astats for RMS and peak, pyloudnorm for BS.1770 loudness)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pyloudnorm
import pytest

from renderer.audio import decode_pcm, ffmpeg_exe
from renderer.audiofile import audio_facts
from renderer.measure import LevelMeter, measure_file, parse_curve, parse_ebur128
from tests.renderer.signals import RATE, encode, noise, silence, sine, speechlike, write_wav


def test_a_sine_reads_its_level_and_its_peak() -> None:
    levels = LevelMeter(RATE)
    samples = sine(2.0, -6.0)
    levels.feed(np.round(samples * 32767).astype("<i2").tobytes())
    result = levels.result()
    assert result.peak_db == pytest.approx(-6.0, abs=0.05)
    assert result.rms_db == pytest.approx(-9.01, abs=0.05), "a sine's RMS is 3 dB under its peak"
    assert result.duration_ms == 2000


def test_noise_floor_is_the_quietest_half_second_and_silence_is_measured_at_the_ends() -> None:
    samples = np.concatenate(
        [silence(0.7), sine(1.0, -10.0), noise(0.8, -65.0), sine(1.0, -10.0), silence(2.2)]
    )
    levels = LevelMeter(RATE)
    levels.feed(np.round(samples * 32767).astype("<i2").tobytes())
    result = levels.result()
    assert result.head_silence_ms == pytest.approx(700, abs=10)
    assert result.tail_silence_ms == pytest.approx(2200, abs=10)
    assert result.noise_floor_db == -120.0, "digital silence is the quietest"
    levels = LevelMeter(RATE)
    with_tone = samples + noise(samples.size / RATE, -70.0, seed=1)
    levels.feed(np.round(with_tone * 32767).astype("<i2").tobytes())
    assert levels.result().noise_floor_db == pytest.approx(-70.0, abs=1.0)


def test_feeding_in_odd_pieces_changes_nothing() -> None:
    samples = speechlike(3.0, -20.0)
    pcm = np.round(samples * 32767).astype("<i2").tobytes()
    whole = LevelMeter(RATE)
    whole.feed(pcm)
    pieces = LevelMeter(RATE)
    for at in range(0, len(pcm), 1234):  # even sizes, cut anywhere in the blocks
        pieces.feed(pcm[at : at + 1234])
    assert pieces.result() == whole.result()


def test_parse_ebur128_reads_the_summary() -> None:
    log = [
        "[Parsed_ebur128_0 @ 0x1] Summary:",
        "  Integrated loudness:",
        "    I:         -20.4 LUFS",
        "    Threshold: -30.4 LUFS",
        "  Loudness range:",
        "    LRA:         3.5 LU",
    ]
    loudness = parse_ebur128(log)
    assert (loudness.integrated_lufs, loudness.loudness_range_lu) == (-20.4, 3.5)


def test_parse_curve_thins_the_frames_to_a_few_hundred_points() -> None:
    lines = []
    for frame in range(6000):  # ten minutes of 100 ms frames
        lines += [f"frame:{frame} pts:{frame * 4410} pts_time:{frame / 10}", "lavfi.r128.S=-21.5"]
    lines[1] = "lavfi.r128.S=-inf"
    curve = parse_curve(lines, duration_s=600)
    assert 550 <= len(curve) <= 601
    assert curve[0] == (0.0, -120.0) and curve[1] == (1.0, -21.5)


def _astats(path: Path) -> dict[str, float]:
    result = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostats", "-i", str(path), "-af",
         "astats=measure_overall=RMS_level+Peak_level:measure_perchannel=none",
         "-f", "null", "-"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    found = dict(re.findall(r"(RMS level|Peak level) dB: (-?[\d.]+)", result.stderr))
    return {key: float(value) for key, value in found.items()}


@pytest.mark.parametrize("suffix", ["wav", "mp3", "m4a", "opus"])
def test_measures_agree_with_independent_meters(tmp_path: Path, suffix: str) -> None:
    wav = write_wav(tmp_path / "speech.wav", np.concatenate([silence(0.5), speechlike(20, -21.0)]))
    path = wav if suffix == "wav" else encode(wav, tmp_path / f"speech.{suffix}")
    measures = measure_file(path)
    stats = _astats(path)
    assert measures.rms_db == pytest.approx(stats["RMS level"], abs=0.5)
    assert measures.peak_db == pytest.approx(stats["Peak level"], abs=0.5)
    rate = 48000 if suffix == "opus" else RATE
    samples = np.frombuffer(decode_pcm(path, rate), dtype="<i2") / 32768.0
    reference = pyloudnorm.Meter(rate).integrated_loudness(samples)
    assert measures.integrated_lufs == pytest.approx(reference, abs=0.3)


def test_mp3_facts_include_a_constant_bit_rate(tmp_path: Path) -> None:
    wav = write_wav(tmp_path / "a.wav", speechlike(5, -20.0))
    cbr = audio_facts(encode(wav, tmp_path / "cbr.mp3", "-b:a", "192k"))
    assert (cbr.codec, cbr.bitrate_kbps, cbr.constant_bitrate) == ("mp3", 192, True)
    assert (cbr.sample_rate_hz, cbr.channels) == (44100, 1)
    vbr = audio_facts(encode(wav, tmp_path / "vbr.mp3", "-q:a", "4"))
    assert vbr.constant_bitrate is False


def test_bit_rates_are_read_across_the_whole_file(tmp_path: Path) -> None:
    """Files longer than one read block (1 MB) are scanned frame by frame to the end."""
    wav = write_wav(tmp_path / "long.wav", sine(80.0, -10.0))
    cbr = encode(wav, tmp_path / "long.mp3", "-b:a", "192k")
    assert cbr.stat().st_size > 1_500_000
    assert audio_facts(cbr).constant_bitrate is True
    assert audio_facts(cbr).bitrate_kbps == 192
