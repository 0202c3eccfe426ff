"""Test signals with known levels, written as WAV (and encoded with ffmpeg when asked)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from renderer.audio import ffmpeg_exe, write_wav_atomic

RATE = 44100


def sine(seconds: float, peak_dbfs: float, hz: float = 440.0, rate: int = RATE) -> np.ndarray:
    """A sine of ``peak_dbfs`` peak (its RMS is 3.01 dB lower), as float samples."""
    t = np.arange(int(seconds * rate)) / rate
    return (10 ** (peak_dbfs / 20)) * np.sin(2 * np.pi * hz * t)


def silence(seconds: float, rate: int = RATE) -> np.ndarray:
    return np.zeros(int(seconds * rate))


def noise(seconds: float, rms_dbfs: float, rate: int = RATE, seed: int = 7) -> np.ndarray:
    generator = np.random.default_rng(seed)
    samples = generator.standard_normal(int(seconds * rate))
    return samples * (10 ** (rms_dbfs / 20)) / np.sqrt(np.mean(samples**2))


def speechlike(seconds: float, rms_dbfs: float, rate: int = RATE, seed: int = 3) -> np.ndarray:
    """Bursts of modulated noise with pauses, at about ``rms_dbfs`` over the whole."""
    generator = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    envelope = np.clip(np.sin(2 * np.pi * 1.7 * t) + 0.3 * np.sin(2 * np.pi * 5.3 * t), 0, None)
    signal = generator.standard_normal(t.size) * envelope
    return signal * (10 ** (rms_dbfs / 20)) / np.sqrt(np.mean(signal**2))


def write_wav(path: Path, samples: np.ndarray, rate: int = RATE) -> Path:
    pcm = np.clip(np.round(samples * 32767), -32768, 32767).astype("<i2").tobytes()
    write_wav_atomic(path, pcm, rate)
    return path


def encode(wav: Path, out: Path, *args: str) -> Path:
    """``wav`` encoded by ffmpeg into ``out`` (format from its extension), with ``args``."""
    command = [
        ffmpeg_exe(),
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-i",
        str(wav),
        *args,
        str(out),
    ]
    subprocess.run(command, check=True)
    return out
