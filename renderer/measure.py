"""Measuring audio as the stores do: RMS, peaks, noise floor, silence at the ends, and
loudness per ITU-R BS.1770 (integrated loudness, loudness range, true peak).

Two measurements run side by side on the same samples, streamed (memory does not grow
with the file):

* :class:`LevelMeter` (numpy, here): RMS level and sample peak of the whole file in dBFS
  (0 dB is a full-scale square wave, so a full-scale sine reads -3 dB, as ACX, Audacity
  and ffmpeg's astats count), the **noise floor** (the RMS of the quietest 500 ms window,
  as ACX Check measures it) and the **silence at the head and the tail** (the time before
  the first and after the last 10 ms window louder than :data:`SILENCE_DB`).
* the **true peak** (:class:`TruePeak`): the highest value of the signal oversampled 4x
  (BS.1770-4 Annex 2), computed only around the samples that could hold it (an
  interpolated value cannot exceed the largest of its 12 neighbours by more than the
  filter's gain, so samples more than 6 dB under the highest peak so far are skipped):
  as exact as oversampling everything, at a small fraction of its cost.
* ffmpeg's ``ebur128`` filter (BS.1770-4 with gating): integrated loudness and loudness
  range from its log (:func:`parse_ebur128`), and the short-term loudness curve for the
  report's plot from the metadata it attaches to every frame (:func:`parse_curve`).

:func:`measure_file` decodes any file ffmpeg reads (the *encoded* file, since encoding
raises inter-sample peaks); :class:`StreamMeter` measures PCM as it is produced (the
first pass of mastering).
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import tempfile
import threading
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
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
    true_peak_db: float = FLOOR_DB


def _interpolation_phases() -> np.ndarray:
    """Windowed-sinc taps for the values at 1/4, 2/4 and 3/4 between two samples, from
    the 12 samples around them (6 each side): a 4x oversampling interpolator."""
    offsets = np.arange(-5, 7)
    phases = []
    for quarter in (1, 2, 3):
        x = quarter / 4 - offsets
        taps = np.sinc(x) * (0.5 + 0.5 * np.cos(np.pi * x / 6.5))
        phases.append(taps / taps.sum())
    return np.array(phases)


_PHASES = _interpolation_phases()
#: no interpolated value exceeds its neighbours' largest by more than this factor
_MAX_GAIN = float(np.abs(_PHASES).sum(axis=1).max())
_CONTEXT = 6


class TruePeak:
    """The largest absolute value of a signal oversampled 4x, fed in chunks; evaluated
    only around samples within ``_MAX_GAIN`` of the highest value so far."""

    def __init__(self) -> None:
        self.peak = 0.0
        self.tail = np.zeros(0)

    def feed(self, samples: np.ndarray) -> None:
        """``samples``: one channel, floats (any scale)."""
        if not samples.size:
            return
        buffer = np.concatenate([self.tail, samples]) if self.tail.size else samples
        self._scan(buffer)
        # the last samples lack right-hand context: kept, and scanned with the next chunk
        self.tail = buffer[-(2 * _CONTEXT + 1) :].copy()

    def finish(self) -> float:
        if self.tail.size:
            self._scan(np.concatenate([self.tail, np.zeros(_CONTEXT + 1)]))
            self.tail = np.zeros(0)
        return self.peak

    def _scan(self, buffer: np.ndarray) -> None:
        magnitude = np.abs(buffer)
        self.peak = max(self.peak, float(magnitude.max()))
        threshold = self.peak / _MAX_GAIN
        last = buffer.size - _CONTEXT - 1
        if last <= _CONTEXT:
            return
        candidates = np.flatnonzero(magnitude[_CONTEXT:last] >= threshold) + _CONTEXT
        if not candidates.size:
            return
        # the intervals on each side of a candidate: starting at i - 1 and at i
        starts = np.concatenate([candidates - 1, candidates])
        windows = buffer[starts[:, None] + np.arange(-5, 7)]
        values = windows @ _PHASES.T
        self.peak = max(self.peak, float(np.abs(values).max()))


class LevelMeter:
    """Streaming RMS, peak, noise floor and end silences of interleaved s16le PCM."""

    def __init__(self, sample_rate_hz: int, channels: int = 1) -> None:
        self.rate = sample_rate_hz
        self.channels = channels
        self.block = max(1, sample_rate_hz * _BLOCK_MS // 1000) * channels
        self.pending = np.zeros(0)
        self.squares = 0.0
        self.samples = 0
        self.peak = 0.0
        self.heard = False  # a window above the silence threshold has been seen
        self.head_blocks = 0
        self.tail_blocks = 0
        self.hop_blocks = _HOP_MS // _BLOCK_MS
        self.hop: list[float] = []  # block energies of the hop being filled
        self.window: deque[float] = deque(maxlen=NOISE_WINDOW_MS // _HOP_MS)
        self.quietest: float | None = None
        self.silence_energy = (10 ** (SILENCE_DB / 20) * _FULL_SCALE) ** 2 * self.block
        self.true_peak = [TruePeak() for _ in range(channels)]

    def feed(self, pcm: bytes) -> None:
        """Interleaved s16le samples."""
        self.feed_samples(np.frombuffer(pcm, dtype="<i2").astype(np.float64))

    def feed_float(self, pcm: bytes) -> None:
        """Interleaved f32le samples (1.0 is full scale; a decoded file may exceed it)."""
        self.feed_samples(np.frombuffer(pcm, dtype="<f4").astype(np.float64) * _FULL_SCALE)

    def feed_samples(self, samples: np.ndarray) -> None:
        """Interleaved samples on the 16-bit scale (32768 is full scale), as floats."""
        if self.pending.size:
            samples = np.concatenate([self.pending, samples])
        whole = samples.size - samples.size % self.block
        self.pending = samples[whole:].copy()
        if whole:
            self._blocks(samples[:whole].reshape(-1, self.block))

    def _blocks(self, blocks: np.ndarray) -> None:
        flat = blocks.reshape(-1)
        for channel, meter in enumerate(self.true_peak):
            meter.feed(flat[channel :: self.channels])
        energies = np.einsum("ij,ij->i", blocks, blocks)
        self.squares += float(energies.sum())
        self.samples += blocks.size
        self.peak = max(self.peak, float(np.abs(blocks).max()))
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
            self.peak = max(self.peak, float(np.abs(tail).max()))
            for channel, meter in enumerate(self.true_peak):
                meter.feed(tail[channel :: self.channels])
            self.pending = np.zeros(0)
        true_peak = max(meter.finish() for meter in self.true_peak)
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
            true_peak_db=db(true_peak / _FULL_SCALE),
        )


# --- BS.1770 loudness through ffmpeg's ebur128 ----------------------------------------------


@dataclass(frozen=True)
class Loudness:
    integrated_lufs: float
    loudness_range_lu: float
    true_peak_dbtp: float
    #: ``(seconds, short-term LUFS)``, thinned to about :data:`CURVE_POINTS` points
    curve: tuple[tuple[float, float], ...] = ()


_SUMMARY_RE = {
    "I": re.compile(r"^\s*I:\s*(-?inf|-?[\d.]+)\s*LUFS"),
    "LRA": re.compile(r"^\s*LRA:\s*(-?inf|-?[\d.]+)\s*LU"),
    "Peak": re.compile(r"^\s*Peak:\s*(-?inf|-?[\d.]+)\s*dBFS"),
}


def _number(text: str) -> float:
    return FLOOR_DB if "inf" in text else max(FLOOR_DB, float(text))


def parse_ebur128(lines: Iterable[str], curve: Sequence[tuple[float, float]] = ()) -> Loudness:
    """The summary that ffmpeg's ``ebur128`` logs at the end (its ``Summary:`` block)."""
    summary: dict[str, float] = {}
    in_summary = False
    for line in lines:
        if "Summary:" in line:
            in_summary = True
            continue
        if in_summary:
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


_CURVE_TIME_RE = re.compile(r"pts_time:\s*([\d.]+)")
_CURVE_VALUE_RE = re.compile(r"lavfi\.r128\.S=(-?inf|-?[\d.]+)")


def parse_curve(lines: Iterable[str], duration_s: float) -> list[tuple[float, float]]:
    """The short-term loudness curve from the per-frame metadata ``ebur128`` attaches
    (printed by ``ametadata``), thinned to about :data:`CURVE_POINTS` points."""
    step_s = max(1.0, duration_s / CURVE_POINTS)
    curve: list[tuple[float, float]] = []
    time_s: float | None = None
    next_s = 0.0
    for line in lines:
        stamp = _CURVE_TIME_RE.search(line)
        if stamp:
            time_s = float(stamp.group(1))
            continue
        value = _CURVE_VALUE_RE.match(line)
        if value and time_s is not None and time_s >= next_s:
            curve.append((round(time_s, 1), _number(value.group(1))))
            next_s = time_s + step_s
    return curve


class _Ebur128:
    """ffmpeg's ``ebur128`` filter for one run: loudness from its log, the short-term curve
    through a metadata file (logging every frame to stderr costs a fifth of the run)."""

    def __init__(self) -> None:
        fd, name = tempfile.mkstemp(prefix="narrate-ebur128-", suffix=".txt")
        os.close(fd)
        self.path = Path(name)

    def filters(self) -> str:
        target = str(self.path)
        for char in "\\':,;[]=":
            target = target.replace(char, "\\" + char)
        # then the decoded samples in large frames: ffmpeg hands every frame between its
        # threads (a futex each), and an MP3's 1,152-sample frames cost 7% of a measure
        return (
            "ebur128=peak=none:framelog=quiet:metadata=1,"
            f"ametadata=mode=print:key=lavfi.r128.S:file={target},"
            "asetnsamples=n=65536:p=0"
        )

    def result(self, log: Iterable[str], duration_s: float) -> Loudness:
        try:
            with self.path.open(encoding="utf-8", errors="replace") as lines:
                curve = parse_curve(lines, duration_s)
        finally:
            self.path.unlink(missing_ok=True)
        return parse_ebur128(log, curve)

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)


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
        true_peak_dbtp=levels.true_peak_db,
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
    loudness = _Ebur128()
    command = [
        ffmpeg_exe(), "-hide_banner", "-nostdin", "-nostats", "-loglevel", "info", "-i", str(path),
        "-af", loudness.filters(), "-f", "f32le", "-acodec", "pcm_f32le",
        "-ar", str(facts.sample_rate_hz), "-ac", str(facts.channels), "pipe:1",
    ]  # fmt: skip
    meter = LevelMeter(facts.sample_rate_hz, facts.channels)
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        assert process.stdout is not None and process.stderr is not None
        log = _LogReader(process.stderr)
        log.start()
        for chunk in _chunks(process.stdout):
            meter.feed_float(chunk)
        code = process.wait()
        log.join()
    if code != 0:
        loudness.discard()
        raise InputError(f"ffmpeg could not decode {path.name}: {log.errors()}")
    return combine(facts, meter.result(), loudness.result(log.lines, facts.duration_ms / 1000))


def _chunks(stream: IO[bytes], size: int = 1 << 20) -> Iterator[bytes]:
    while chunk := stream.read(size):
        yield chunk


class StreamMeter:
    """Measures mono s16le PCM as it is written (levels here, loudness in an ffmpeg
    process reading it from a pipe): the first pass of mastering, with no file written."""

    def __init__(self, sample_rate_hz: int, duration_ms: int) -> None:
        self.levels = LevelMeter(sample_rate_hz)
        self.duration_s = duration_ms / 1000
        self.loudness = _Ebur128()
        command = [
            ffmpeg_exe(), "-hide_banner", "-nostdin", "-nostats", "-loglevel", "info",
            "-f", "s16le", "-ar", str(sample_rate_hz), "-ac", "1", "-i", "pipe:0",
            "-af", self.loudness.filters(), "-f", "null", "-",
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
            self.loudness.discard()
            raise AudioToolError(f"ffmpeg could not measure the audio: {self.log.errors()}")
        return self.levels.result(), self.loudness.result(self.log.lines, self.duration_s)

    def abort(self) -> None:
        self.process.kill()
        self.process.wait()
        self.log.join()
        self.loudness.discard()

    @property
    def sample_width(self) -> int:
        return SAMPLE_WIDTH_BYTES
