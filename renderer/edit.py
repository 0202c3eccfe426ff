"""Segment-level editing with pydub: the engine's own silence trimmed, short fades at the
joins, and room tone for pauses.

Engines pad a segment with silence of their own (espeak-ng about 300 ms at the end,
cloud voices more, and unevenly), so a planned 500 ms pause between paragraphs came out
as anything from 500 to 900 ms. :func:`speech_span` finds where the speech of a segment
starts and ends (:data:`SILENCE_DBFS`, 10 ms steps, a little kept on each side so no
onset or decay is clipped); the stitch keeps only that span, so every pause is exactly
its planned length. :func:`edited` cuts the span with a :data:`FADE_MS` fade at each end
(a cut where the wave is not at zero clicks). Segments are edited one at a time: memory
holds one segment, whatever the chapter's length.

:class:`RoomTone` is low, steady noise for pauses instead of digital zeros (ACX asks for
room tone, and a noise floor of at most -60 dB): seeded, so the same chapter renders the
same samples.
"""

from __future__ import annotations

import math
import random
import warnings
from array import array
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from renderer.audio import SAMPLE_WIDTH_BYTES, ffmpeg_exe
from renderer.measure import TruePeak

with warnings.catch_warnings():  # pydub warns about audioop (3.13) and a missing ffmpeg
    warnings.simplefilter("ignore")
    from pydub import AudioSegment
    from pydub.silence import detect_leading_silence

AudioSegment.converter = ffmpeg_exe()

#: below this a 10 ms step counts as the engine's silence
SILENCE_DBFS = -50.0
#: kept before the first and after the last audible step (onsets, decays)
LEAD_KEEP_MS = 20
TRAIL_KEEP_MS = 40
FADE_MS = 5
_STEP_MS = 10


@dataclass(frozen=True)
class SpanLevels:
    """The levels of a kept span, on the 16-bit scale: its energy (sum of squares), its
    sample peak and its true peak."""

    energy: float
    peak: float
    true_peak: float


@dataclass(frozen=True)
class Span:
    """The frames of a segment's WAV that the stitch keeps: ``[start, end)``, and, when
    asked for, their levels: found while the segment is read anyway, they spare an
    RMS-aimed master a first pass over the chapter."""

    start_frame: int
    end_frame: int
    levels: SpanLevels | None = None

    @property
    def frames(self) -> int:
        return self.end_frame - self.start_frame


def load(path: Path) -> AudioSegment:
    """A mono 16-bit WAV file as a pydub segment."""
    return AudioSegment.from_wav(str(path))


def speech_span(audio: AudioSegment, *, levels: bool = False) -> Span:
    """Where the speech of a segment starts and ends (all of it when it is all quiet),
    and, with ``levels``, the levels of that span."""
    frames = int(audio.frame_count())
    if frames == 0:
        return Span(0, 0)
    lead_ms = detect_leading_silence(audio, SILENCE_DBFS, _STEP_MS)
    if lead_ms >= len(audio):  # nothing audible: keep it whole, it is what the engine said
        start, end = 0, frames
    else:
        trail_ms = detect_leading_silence(audio.reverse(), SILENCE_DBFS, _STEP_MS)
        rate = audio.frame_rate
        start = max(0, (lead_ms - LEAD_KEEP_MS) * rate // 1000)
        end = max(start, min(frames, frames - max(0, trail_ms - TRAIL_KEEP_MS) * rate // 1000))
    return Span(start, end, _levels(audio, start, end) if levels else None)


def _levels(audio: AudioSegment, start: int, end: int) -> SpanLevels:
    values = np.frombuffer(audio.get_sample_slice(start, end).raw_data, dtype="<i2").astype(
        np.float64
    )
    meter = TruePeak()
    meter.feed(values)
    peak = float(np.abs(values).max()) if values.size else 0.0
    return SpanLevels(float(values @ values), peak, meter.finish())


def edited(audio: AudioSegment, span: Span, fade_ms: int = FADE_MS) -> bytes:
    """The kept span as PCM, faded in and out at cuts (never at the file's own ends)."""
    kept = audio.get_sample_slice(span.start_frame, span.end_frame)
    length_ms = len(kept)
    fade = min(fade_ms, length_ms // 2)
    if fade > 0 and span.start_frame > 0:
        kept = kept.fade_in(fade)
    if fade > 0 and span.end_frame < int(audio.frame_count()):
        kept = kept.fade_out(fade)
    return bytes(kept.raw_data)


class RoomTone:
    """Deterministic low noise at ``level_dbfs`` RMS (0 dB = a full-scale square wave).

    A few seconds of gently low-passed noise, seeded, repeated as long as asked: at -70 dB
    no one hears it repeat, and the same pause always gets the same samples.
    """

    _SECONDS = 3

    def __init__(self, level_dbfs: float, sample_rate_hz: int, seed: int = 2026) -> None:
        self.rate = sample_rate_hz
        generator = random.Random(seed)
        count = self._SECONDS * sample_rate_hz
        raw = [generator.gauss(0.0, 1.0) for _ in range(count)]
        smooth, previous = [], 0.0
        for value in raw:  # one-pole low-pass: softer than white noise
            previous = 0.6 * previous + 0.4 * value
            smooth.append(previous)
        rms = math.sqrt(sum(v * v for v in smooth) / count)
        target = 32768.0 * 10 ** (level_dbfs / 20)
        scale = target / rms if rms else 0.0
        self.buffer = array("h", (max(-32768, min(32767, round(v * scale))) for v in smooth))
        self.loop = self.buffer.tobytes()

    def pcm(self, frames: int, offset_frames: int = 0) -> bytes:
        """``frames`` of room tone, continuing the loop at ``offset_frames``."""
        width = SAMPLE_WIDTH_BYTES
        out = bytearray()
        at = (offset_frames % len(self.buffer)) * width
        needed = frames * width
        while needed > 0:
            piece = self.loop[at : at + needed]
            out += piece
            needed -= len(piece)
            at = 0
        return bytes(out)


def mix(pcm: bytes, under: bytes) -> bytes:
    """``under`` mixed into ``pcm`` (two mono s16le buffers of one length), saturating."""
    speech = AudioSegment(data=pcm, sample_width=SAMPLE_WIDTH_BYTES, frame_rate=8000, channels=1)
    tone = AudioSegment(data=under, sample_width=SAMPLE_WIDTH_BYTES, frame_rate=8000, channels=1)
    return bytes(speech.overlay(tone).raw_data)
