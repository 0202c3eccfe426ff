"""Stitching: stream a chapter's segment audio, with pauses, through ffmpeg into one file.

PCM is streamed to ffmpeg's stdin a chunk at a time, so memory stays at one chunk and the
cost is linear in the audio length (never ``AudioSegment + AudioSegment`` in a loop,
which copies the whole track each time).
"""

from __future__ import annotations

import contextlib
import subprocess
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from narrate.errors import AudioToolError, UsageError
from narrate.files import atomic_path
from renderer.audio import SAMPLE_WIDTH_BYTES, ffmpeg_exe, wav_info

CHUNK_FRAMES = 1 << 16

#: container -> (file extension, ffmpeg arguments before the bit rate, default kbit/s)
_FORMATS: dict[str, tuple[str, list[str], int | None]] = {
    "mp3": ("mp3", ["-c:a", "libmp3lame", "-f", "mp3"], 128),
    "wav": ("wav", ["-c:a", "pcm_s16le", "-f", "wav"], None),
    "opus": ("opus", ["-c:a", "libopus", "-f", "opus"], 48),
}
OUTPUT_FORMATS = tuple(_FORMATS)
#: bit rates the encoders accept, kbit/s
_BITRATE_KBPS = {"mp3": (8, 320), "opus": (6, 510)}
#: sample rates libopus encodes; other rates are resampled to 48 kHz for Opus
_OPUS_RATES = (8000, 12000, 16000, 24000, 48000)


@dataclass(frozen=True)
class AudioFormat:
    """What the stitched file should be. ``sample_rate_hz=None`` keeps the engine's rate."""

    container: str = "mp3"
    sample_rate_hz: int | None = None
    bitrate_kbps: int | None = None

    def __post_init__(self) -> None:
        if self.container not in _FORMATS:
            raise UsageError(
                f"unknown audio format {self.container!r}",
                hint=f"choose one of {', '.join(OUTPUT_FORMATS)}",
            )
        limits = _BITRATE_KBPS.get(self.container)
        if self.bitrate_kbps is not None and (
            limits is None or not limits[0] <= self.bitrate_kbps <= limits[1]
        ):
            allowed = f"{limits[0]}-{limits[1]} kbit/s" if limits else "no bit rate"
            raise UsageError(
                f"bit rate {self.bitrate_kbps} kbit/s does not suit {self.container}",
                hint=f"{self.container} takes {allowed}",
            )
        if self.sample_rate_hz is not None and not 8000 <= self.sample_rate_hz <= 48000:
            raise UsageError(
                f"sample rate {self.sample_rate_hz} Hz is out of range",
                hint="give a rate between 8000 and 48000 Hz, e.g. 22050 or 44100",
            )

    @property
    def extension(self) -> str:
        return _FORMATS[self.container][0]

    def ffmpeg_output_args(self, source_rate_hz: int) -> list[str]:
        _ext, args, default_kbps = _FORMATS[self.container]
        rate = self.sample_rate_hz or source_rate_hz
        if self.container == "opus" and rate not in _OPUS_RATES:
            rate = 48000
        out = ["-ar", str(rate), *args]
        kbps = self.bitrate_kbps or default_kbps
        if kbps is not None:
            out[-2:-2] = ["-b:a", f"{kbps}k"]
        return out


@dataclass(frozen=True)
class StitchPart:
    """One segment's audio (a mono 16-bit WAV file) and the silence to put after it.

    A part without a WAV (``wav_path=None``) is a gap: ``gap_ms`` of silence standing in
    for a segment that could not be rendered (a partial stitch).
    """

    wav_path: Path | None
    pause_after_ms: int
    gap_ms: int = 0


@dataclass(frozen=True)
class Timeline:
    """Where each part starts on the stitched timeline, in samples at ``sample_rate_hz``."""

    sample_rate_hz: int
    part_starts: tuple[int, ...]
    sample_count: int

    def ms(self, samples: int) -> int:
        return samples * 1000 // self.sample_rate_hz

    @property
    def duration_ms(self) -> int:
        return self.ms(self.sample_count)


def plan_timeline(parts: Sequence[StitchPart], gap_rate_hz: int | None = None) -> Timeline:
    """Lay the parts end to end with their pauses (reads only the WAV headers).

    ``gap_rate_hz`` is the sample rate when every part is a gap (no WAV to take it from).
    """
    infos = [wav_info(part.wav_path) if part.wav_path else None for part in parts]
    rates = {info[0] for info in infos if info is not None}
    if not rates and gap_rate_hz and parts:
        rates = {gap_rate_hz}
    if not rates:
        raise AudioToolError("nothing to stitch: the chapter has no audio segments")
    if len(rates) > 1:
        raise AudioToolError(f"segment audio has mixed sample rates ({sorted(rates)} Hz)")
    rate = rates.pop()
    starts: list[int] = []
    position = 0
    for part, info in zip(parts, infos, strict=True):
        starts.append(position)
        frames = info[1] if info is not None else _pause_frames(part.gap_ms, rate)
        position += frames + _pause_frames(part.pause_after_ms, rate)
    return Timeline(rate, tuple(starts), position)


def stitch(
    parts: Sequence[StitchPart], out_path: Path, fmt: AudioFormat, gap_rate_hz: int | None = None
) -> Timeline:
    """Write ``parts`` with their pauses to ``out_path`` (atomically) and return the timeline."""
    timeline = plan_timeline(parts, gap_rate_hz)
    with atomic_path(out_path) as tmp:
        _encode(parts, timeline.sample_rate_hz, tmp, fmt)
    return timeline


def _encode(parts: Sequence[StitchPart], rate: int, tmp: Path, fmt: AudioFormat) -> None:
    command = [
        ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
        "-f", "s16le", "-ar", str(rate), "-ac", "1", "-i", "pipe:0",
        *fmt.ffmpeg_output_args(rate), str(tmp),
    ]  # fmt: skip
    with subprocess.Popen(
        command, stdin=subprocess.PIPE, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL
    ) as process:
        assert process.stdin is not None and process.stderr is not None
        try:
            _feed(parts, rate, process.stdin)
            process.stdin.close()
        except BrokenPipeError:  # ffmpeg died; its stderr says why
            with contextlib.suppress(BrokenPipeError):
                process.stdin.close()
        errors = process.stderr.read().decode(errors="replace").strip()
        if process.wait() != 0:
            raise AudioToolError(f"ffmpeg failed to encode {fmt.container}: {errors[-500:]}")


def _feed(parts: Sequence[StitchPart], rate: int, sink: IO[bytes]) -> None:
    for part in parts:
        if part.wav_path is None:
            _silence(part.gap_ms, rate, sink)
        else:
            with wave.open(str(part.wav_path), "rb") as wav:
                while chunk := wav.readframes(CHUNK_FRAMES):
                    sink.write(chunk)
        _silence(part.pause_after_ms, rate, sink)


def _silence(duration_ms: int, rate: int, sink: IO[bytes]) -> None:
    remaining = _pause_frames(duration_ms, rate) * SAMPLE_WIDTH_BYTES
    while remaining > 0:
        step = min(remaining, CHUNK_FRAMES * SAMPLE_WIDTH_BYTES)
        sink.write(bytes(step))
        remaining -= step


def _pause_frames(pause_ms: int, rate: int) -> int:
    return pause_ms * rate // 1000
