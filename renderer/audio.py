"""Small audio I/O helpers: WAV files written atomically, the bundled ffmpeg, decoding."""

from __future__ import annotations

import subprocess
import wave
from functools import cache
from pathlib import Path

import imageio_ffmpeg

from narrate.errors import AudioToolError
from narrate.files import atomic_path

SAMPLE_WIDTH_BYTES = 2  # all PCM in narrate is signed 16-bit little-endian mono


@cache
def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary shipped by the imageio-ffmpeg wheel."""
    return str(imageio_ffmpeg.get_ffmpeg_exe())


def write_wav_atomic(path: Path, pcm: bytes, sample_rate_hz: int) -> None:
    """Write mono 16-bit ``pcm`` as a WAV file; readers never see a half-written file."""
    with atomic_path(path) as tmp, wave.open(str(tmp), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(SAMPLE_WIDTH_BYTES)
        wav.setframerate(sample_rate_hz)
        wav.writeframes(pcm)


def wav_info(path: Path) -> tuple[int, int]:
    """``(sample_rate_hz, sample_count)`` of a mono 16-bit WAV file."""
    with wave.open(str(path), "rb") as wav:
        if wav.getnchannels() != 1 or wav.getsampwidth() != SAMPLE_WIDTH_BYTES:
            raise AudioToolError(f"{path} is not mono 16-bit PCM")
        return wav.getframerate(), wav.getnframes()


def decode_pcm(path: Path, sample_rate_hz: int) -> bytes:
    """Decode any audio file ffmpeg reads to mono 16-bit PCM at ``sample_rate_hz``."""
    command = [
        ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-i", str(path),
        "-f", "s16le", "-ac", "1", "-ar", str(sample_rate_hz), "pipe:1",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, check=False)
    if result.returncode != 0:
        message = result.stderr.decode(errors="replace").strip()[-500:]
        raise AudioToolError(f"ffmpeg could not decode {path}: {message}")
    return result.stdout


def decoded_duration_ms(path: Path) -> int:
    """Duration of an audio file as ffmpeg decodes it (independent of our own bookkeeping)."""
    rate = 48000
    return len(decode_pcm(path, rate)) // SAMPLE_WIDTH_BYTES * 1000 // rate
