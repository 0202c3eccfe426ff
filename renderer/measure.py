"""Measuring audio as the stores do: RMS, peaks, noise floor, silence at the ends, and
loudness per ITU-R BS.1770 (integrated loudness, loudness range, true peak).

Two measurements run side by side on the same samples, streamed (memory does not grow
with the file):

* :class:`LevelMeter` (numpy, here): RMS level and sample peak of the whole file in dBFS
  (0 dB is a full-scale square wave, so a full-scale sine reads -3 dB, as ACX, Audacity
  and ffmpeg's astats count), the **noise floor** (the RMS of the quietest 500 ms window,
  as ACX Check measures it) and the **silence at the head and the tail** (the time before
  the first and after the last 10 ms window louder than :data:`SILENCE_DB`).
* ffmpeg's ``ebur128`` filter (BS.1770-4 with gating, and 4x oversampled true peak):
  integrated loudness, loudness range and true peak, plus the short-term loudness curve
  for the report's plot (:func:`parse_ebur128` reads its log).

:func:`measure_file` decodes any file ffmpeg reads (the *encoded* file, since encoding
raises inter-sample peaks); :class:`StreamMeter` measures PCM as it is produced (the
first pass of mastering).
"""

from __future__ import annotations

import math
import re
import subprocess
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np

from narrate.errors import AudioToolError, InputError
from renderer.audio import SAMPLE_WIDTH_BYTES, ffmpeg_exe
from renderer.audiofile import AudioFacts, audio_facts

#: a 10 ms window below this RMS (dBFS) is silence, for the head and tail measures; room
#: tone (about -70 dB) counts as silence, the quietest speech onsets do not
SILENCE_DB = -50.0
#: what a level of digital silence is reported as, instead of minus infinity
FLOOR_DB = -120.0
NOISE_WINDOW_MS = 500
_BLOCK_MS = 10
_HOP_MS = 100
#: points of the loudness curve kept per file (one every few seconds on long files)
CURVE_POINTS = 600
_FULL_SCALE = 32768.0


def db(ratio: float) -> float:
    """``20 log10(ratio)``, at least :data:`FLOOR_DB`."""
    return max(FLOOR_DB, 20 * math.log10(ratio)) if ratio > 0 else FLOOR_DB


@dataclass(frozen=True)
class Levels:
    rms_db: float
    peak_db: float
    noise_floor_db: float
    head_silence_ms: int
    tail_silence_ms: int
    duration_ms: int


class LevelMeter:
    """Streaming RMS, peak, noise floor and end silences of interleaved s16le PCM."""

    def __init__(self, sample_rate_hz: int, channels: int = 1) -> None:
        self.rate = sample_rate_hz
        self.channels = channels
        self.block = max(1, sample_rate_hz * _BLOCK_MS // 1000) * channels
        self.pending = np.zeros(0, dtype=np.int16)
        self.squares = 0.0
        self.samples = 0
        self.peak = 0
        self.heard = False  # a window above the silence threshold has been seen
        self.head_blocks = 0
        self.tail_blocks = 0
        self.hop_blocks = _HOP_MS // _BLOCK_MS
        self.hop: list[float] = []  # block energies of the hop being filled
        self.window: deque[float] = deque(maxlen=NOISE_WINDOW_MS // _HOP_MS)
        self.quietest: float | None = None
        self.silence_energy = (10 ** (SILENCE_DB / 20) * _FULL_SCALE) ** 2 * self.block

    def feed(self, pcm: bytes) -> None:
        samples = np.frombuffer(pcm, dtype="<i2")
        if self.pending.size:
            samples = np.concatenate([self.pending, samples])
        whole = samples.size - samples.size % self.block
        self.pending = samples[whole:].copy()
        if whole:
            self._blocks(samples[:whole].astype(np.float64).reshape(-1, self.block))

    def _blocks(self, blocks: np.ndarray) -> None:
        energies = np.einsum("ij,ij->i", blocks, blocks)
        self.squares += float(energies.sum())
        self.samples += blocks.size
        self.peak = max(self.peak, int(np.abs(blocks).max()))
        loud = np.flatnonzero(energies > self.silence_energy)
        if loud.size:
            if not self.heard:
                self.head_blocks += int(loud[0])
                self.heard = True
            self.tail_blocks = len(energies) - 1 - int(loud[-1])
        elif self.heard:
            self.tail_blocks += len(energies)
        else:
            self.head_blocks += len(energies)
        for energy in energies.tolist():
            self.hop.append(energy)
            if len(self.hop) == self.hop_blocks:
                self.window.append(sum(self.hop))
                self.hop = []
                if len(self.window) == self.window.maxlen:
                    total = sum(self.window)
                    self.quietest = total if self.quietest is None else min(self.quietest, total)

    def result(self) -> Levels:
        if self.pending.size:
            tail = self.pending.astype(np.float64)
            self.squares += float(tail @ tail)
            self.samples += tail.size
            self.peak = max(self.peak, int(np.abs(tail).max()))
            self.pending = np.zeros(0, dtype=np.int16)
        frames = self.samples // self.channels
        window_samples = (self.window.maxlen or 1) * self.hop_blocks * self.block
        if self.quietest is None:  # shorter than one window: the whole file is the window
            floor = self.squares / self.samples if self.samples else 0.0
        else:
            floor = self.quietest / window_samples
        per_block_ms = _BLOCK_MS
        return Levels(
            rms_db=db(math.sqrt(self.squares / self.samples) / _FULL_SCALE)
            if self.samples
            else FLOOR_DB,
            peak_db=db(self.peak / _FULL_SCALE),
            noise_floor_db=db(math.sqrt(floor) / _FULL_SCALE),
            head_silence_ms=(self.head_blocks if self.heard else 0) * per_block_ms,
            tail_silence_ms=(self.tail_blocks if self.heard else 0) * per_block_ms,
            duration_ms=frames * 1000 // self.rate if self.rate else 0,
        )


# --- BS.1770 loudness through ffmpeg's ebur128 ----------------------------------------------


@dataclass(frozen=True)
class Loudness:
    integrated_lufs: float
    loudness_range_lu: float
    true_peak_dbtp: float
    #: ``(seconds, short-term LUFS)``, thinned to about :data:`CURVE_POINTS` points
    curve: tuple[tuple[float, float], ...] = ()


_FRAME_RE = re.compile(r"\bt:\s*([\d.]+)\s.*?\bS:\s*(-?inf|-?[\d.]+)")
_SUMMARY_RE = {
    "I": re.compile(r"^\s*I:\s*(-?inf|-?[\d.]+)\s*LUFS"),
    "LRA": re.compile(r"^\s*LRA:\s*(-?inf|-?[\d.]+)\s*LU"),
    "Peak": re.compile(r"^\s*Peak:\s*(-?inf|-?[\d.]+)\s*dBFS"),
}


def _number(text: str) -> float:
    return FLOOR_DB if "inf" in text else max(FLOOR_DB, float(text))


def parse_ebur128(lines: Iterable[str], duration_s: float) -> Loudness:
    """The summary (and the short-term curve) from the log of ffmpeg's
    ``ebur128=peak=true:framelog=info``; reads the lines once."""
    step_s = max(1.0, duration_s / CURVE_POINTS)
    curve: list[tuple[float, float]] = []
    summary: dict[str, float] = {}
    in_summary = False
    next_s = 0.0
    for line in lines:
        if "Summary:" in line:
            in_summary = True
            continue
        if not in_summary:
            frame = _FRAME_RE.search(line)
            if frame and float(frame.group(1)) >= next_s:
                curve.append((round(float(frame.group(1)), 1), _number(frame.group(2))))
                next_s = float(frame.group(1)) + step_s
            continue
        for key, pattern in _SUMMARY_RE.items():
            found = pattern.match(line)
            if found:
                summary.setdefault(key, _number(found.group(1)))
    if "I" not in summary:
        raise AudioToolError("ffmpeg's ebur128 gave no loudness summary")
    return Loudness(
        integrated_lufs=summary["I"],
        loudness_range_lu=summary.get("LRA", 0.0),
        true_peak_dbtp=summary.get("Peak", FLOOR_DB),
        curve=tuple(curve),
    )


def _ebur128_filter() -> str:
    return "ebur128=peak=true:framelog=info"


class _LogReader(threading.Thread):
    """Reads a process's stderr on a thread of its own (so its pipe never fills)."""

    def __init__(self, stream: IO[bytes]) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.lines: list[str] = []

    def run(self) -> None:
        for raw in self.stream:
            self.lines.append(raw.decode(errors="replace").rstrip("\n"))

    def errors(self) -> str:
        return "\n".join(line for line in self.lines[-20:] if "t:" not in line)[-800:]


# --- everything about a file ------------------------------------------------------------------


@dataclass(frozen=True)
class Measures:
    """What ``narrate check`` reports of one file."""

    codec: str
    sample_rate_hz: int
    channels: int
    duration_ms: int
    bitrate_kbps: int | None
    constant_bitrate: bool | None
    rms_db: float
    peak_db: float
    true_peak_dbtp: float
    integrated_lufs: float
    loudness_range_lu: float
    noise_floor_db: float
    head_silence_ms: int
    tail_silence_ms: int
    curve: tuple[tuple[float, float], ...] = field(default=(), repr=False, compare=False)

    def summary(self) -> dict[str, object]:
        """The measures without the curve, rounded for people (JSON, tables)."""
        return {
            "codec": self.codec,
            "sample_rate_hz": self.sample_rate_hz,
            "channels": self.channels,
            "duration_ms": self.duration_ms,
            "bitrate_kbps": self.bitrate_kbps,
            "constant_bitrate": self.constant_bitrate,
            "rms_db": round(self.rms_db, 2),
            "peak_db": round(self.peak_db, 2),
            "true_peak_dbtp": round(self.true_peak_dbtp, 2),
            "integrated_lufs": round(self.integrated_lufs, 2),
            "loudness_range_lu": round(self.loudness_range_lu, 2),
            "noise_floor_db": round(self.noise_floor_db, 2),
            "head_silence_ms": self.head_silence_ms,
            "tail_silence_ms": self.tail_silence_ms,
        }


def combine(facts: AudioFacts, levels: Levels, loudness: Loudness) -> Measures:
    return Measures(
        codec=facts.codec,
        sample_rate_hz=facts.sample_rate_hz,
        channels=facts.channels,
        duration_ms=levels.duration_ms or facts.duration_ms,
        bitrate_kbps=facts.bitrate_kbps,
        constant_bitrate=facts.constant_bitrate,
        rms_db=levels.rms_db,
        peak_db=levels.peak_db,
        true_peak_dbtp=loudness.true_peak_dbtp,
        integrated_lufs=loudness.integrated_lufs,
        loudness_range_lu=loudness.loudness_range_lu,
        noise_floor_db=levels.noise_floor_db,
        head_silence_ms=levels.head_silence_ms,
        tail_silence_ms=levels.tail_silence_ms,
        curve=loudness.curve,
    )


def measure_file(path: Path) -> Measures:
    """Decode ``path`` once and measure everything (:class:`Measures`)."""
    if not path.is_file():
        raise InputError(f"{path} does not exist or is not a file", hint="check the path")
    facts = audio_facts(path)
    if facts.sample_rate_hz <= 0 or facts.channels <= 0:
        raise InputError(f"{path.name} has no audio stream narrate can measure")
    command = [
        ffmpeg_exe(), "-hide_banner", "-nostdin", "-nostats", "-loglevel", "info", "-i", str(path),
        "-af", _ebur128_filter(), "-f", "s16le", "-acodec", "pcm_s16le",
        "-ar", str(facts.sample_rate_hz), "-ac", str(facts.channels), "pipe:1",
    ]  # fmt: skip
    meter = LevelMeter(facts.sample_rate_hz, facts.channels)
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        assert process.stdout is not None and process.stderr is not None
        log = _LogReader(process.stderr)
        log.start()
        for chunk in _chunks(process.stdout):
            meter.feed(chunk)
        code = process.wait()
        log.join()
    if code != 0:
        raise InputError(f"ffmpeg could not decode {path.name}: {log.errors()}")
    return combine(facts, meter.result(), parse_ebur128(log.lines, facts.duration_ms / 1000))


def _chunks(stream: IO[bytes], size: int = 1 << 16) -> Iterator[bytes]:
    while chunk := stream.read(size):
        yield chunk


class StreamMeter:
    """Measures mono s16le PCM as it is written (levels here, loudness in an ffmpeg
    process reading it from a pipe): the first pass of mastering, with no file written."""

    def __init__(self, sample_rate_hz: int, duration_ms: int) -> None:
        self.levels = LevelMeter(sample_rate_hz)
        self.duration_s = duration_ms / 1000
        command = [
            ffmpeg_exe(), "-hide_banner", "-nostdin", "-nostats", "-loglevel", "info",
            "-f", "s16le", "-ar", str(sample_rate_hz), "-ac", "1", "-i", "pipe:0",
            "-af", _ebur128_filter(), "-f", "null", "-",
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        assert self.process.stderr is not None
        self.log = _LogReader(self.process.stderr)
        self.log.start()

    def write(self, pcm: bytes) -> None:
        assert self.process.stdin is not None
        self.levels.feed(pcm)
        self.process.stdin.write(pcm)

    def close(self) -> tuple[Levels, Loudness]:
        assert self.process.stdin is not None
        self.process.stdin.close()
        code = self.process.wait()
        self.log.join()
        if code != 0:
            raise AudioToolError(f"ffmpeg could not measure the audio: {self.log.errors()}")
        return self.levels.result(), parse_ebur128(self.log.lines, self.duration_s)

    def abort(self) -> None:
        self.process.kill()
        self.process.wait()
        self.log.join()

    @property
    def sample_width(self) -> int:
        return SAMPLE_WIDTH_BYTES
