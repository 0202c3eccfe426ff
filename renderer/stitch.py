"""Stitching: stream a chapter's segment audio, with pauses, through ffmpeg into one file.

Each segment is edited on its own (:mod:`renderer.edit`: the engine's silence trimmed to
the speech, short fades at the cuts) and its PCM streamed to ffmpeg's stdin, then its
pause (digital silence, or room tone when the layout asks for it), so memory holds one
segment and the cost is linear in the audio length (never ``AudioSegment +
AudioSegment`` in a loop, which copies the whole track each time). A :class:`Layout` adds
room tone at the head and the tail; ``filters`` (gain, a limiter: :mod:`renderer.master`)
run in the same ffmpeg process as the encoder.
"""

from __future__ import annotations

import contextlib
import subprocess
import wave
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import IO

from narrate.errors import AudioToolError, UsageError
from narrate.files import atomic_path
from renderer.audio import SAMPLE_WIDTH_BYTES, ffmpeg_exe, wav_info
from renderer.edit import RoomTone, Span, edited, load, mix, speech_span

CHUNK_FRAMES = 1 << 16

#: container -> (file extension, ffmpeg arguments before the bit rate, default kbit/s)
_FORMATS: dict[str, tuple[str, list[str], int | None]] = {
    # LAME's faster psychoacoustics (-q 7): transparent for speech at these bit rates,
    # and the encoder is most of a render's time
    "mp3": (
        "mp3",
        ["-c:a", "libmp3lame", "-abr", "0", "-compression_level", "7", "-f", "mp3"],
        128,
    ),
    "wav": ("wav", ["-c:a", "pcm_s16le", "-f", "wav"], None),
    # libopus at complexity 5, not 10: 2.9x faster (11 min of speech: 2.4 s of CPU, not
    # 6.8 s) and, decoded, as close to the source (SNR 21.6 dB against 18.8, the same band
    # energies within 0.2 dB up to 9 kHz)
    "opus": ("opus", ["-c:a", "libopus", "-compression_level", "5", "-f", "opus"], 48),
    "flac": ("flac", ["-c:a", "flac", "-f", "flac"], None),
    # one file for a whole book (AAC in MP4 with chapters: jobs.book), never a chapter's
    # ffmpeg's AAC with its fast coder, not twoloop: 5.4x faster (11 min of speech: 1.7 s
    # of CPU, not 9.2 s; a whole book is one encode) and, decoded, as close to the source
    # (SNR 28.6 dB against 22.5, band energies within 0.4 dB)
    "m4b": ("m4b", ["-c:a", "aac", "-aac_coder", "fast", "-f", "ipod"], 64),
}
OUTPUT_FORMATS = tuple(_FORMATS)
#: CPU seconds a stitch spends per second of audio (trimming, streaming, encoding) at each
#: container's default bit rate, from 22,050 Hz segments kept at that rate (Opus: made
#: 48 kHz); measured on 11 min of the novel on this project's 2-core machine
#: (.venv/bin/python bench/render_book.py shows the whole render). m4b: the chapters as
#: FLAC; then :data:`_BOOK_S_PER_AUDIO_S`.
_STITCH_CPU_S_PER_AUDIO_S = {
    "mp3": 0.0027,
    "wav": 0.00045,
    "opus": 0.0049,
    "flac": 0.00087,
    "m4b": 0.00087,
}
#: an m4b's one encode of the whole book, after its chapters: wall seconds per second of
#: audio (the novel: 42 s for 2.8 h), on one core, after everything else
_BOOK_S_PER_AUDIO_S = {"m4b": 0.0042}
#: the rate those were measured at, and how the cost grows with the output's rate (44.1 kHz
#: from 22.05 kHz segments costs 1.5x: MP3 0.0041, FLAC 0.0013)
_MEASURED_RATE_HZ = 22050
_RATE_EXPONENT = 0.6
#: bit rates the encoders accept, kbit/s
_BITRATE_KBPS = {"mp3": (8, 320), "opus": (6, 510), "m4b": (16, 320)}
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

    def stitch_cpu_s_per_audio_s(self, source_rate_hz: int = _MEASURED_RATE_HZ) -> float:
        """About how much CPU a stitch into this format spends per second of audio made
        from segments at ``source_rate_hz`` (measured: ``_STITCH_CPU_S_PER_AUDIO_S``)."""
        base = _STITCH_CPU_S_PER_AUDIO_S[self.container]
        if self.container == "opus":
            return base
        rate = self.sample_rate_hz or source_rate_hz
        return float(base * (rate / _MEASURED_RATE_HZ) ** _RATE_EXPONENT)

    def book_s_per_audio_s(self) -> float:
        """The time the one encode of a whole book takes per second of audio, after the
        chapters (m4b), else 0."""
        return _BOOK_S_PER_AUDIO_S.get(self.container, 0.0)

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
    for a segment that could not be rendered (a partial stitch). ``span`` is the part of
    the WAV that is kept (:func:`trim`); None keeps all of it.
    """

    wav_path: Path | None
    pause_after_ms: int
    gap_ms: int = 0
    span: Span | None = None


@dataclass(frozen=True)
class Layout:
    """What surrounds the speech: room tone (None: digital silence) at ``room_tone_dbfs``
    in pauses, and ``head_ms``/``tail_ms`` of it before the first and after the last part."""

    room_tone_dbfs: float | None = None
    head_ms: int = 0
    tail_ms: int = 0


@dataclass(frozen=True)
class Timeline:
    """Where each part starts on the stitched timeline, in samples at ``sample_rate_hz``.

    ``part_trims`` is how many samples were cut from the start of each part's WAV: word
    times of the segment move back by as much.
    """

    sample_rate_hz: int
    part_starts: tuple[int, ...]
    sample_count: int
    part_trims: tuple[int, ...] = ()
    part_lengths: tuple[int, ...] = ()

    def ms(self, samples: int) -> int:
        return samples * 1000 // self.sample_rate_hz

    @property
    def duration_ms(self) -> int:
        return self.ms(self.sample_count)


def trim(parts: Sequence[StitchPart], *, levels: bool = False) -> list[StitchPart]:
    """``parts`` with the span of speech of each WAV found (reads one WAV at a time), and
    its levels with ``levels`` (what an RMS-aimed master needs)."""
    return [
        StitchPart(
            p.wav_path, p.pause_after_ms, p.gap_ms, speech_span(load(p.wav_path), levels=levels)
        )
        if p.wav_path is not None
        else p
        for p in parts
    ]


def plan_timeline(
    parts: Sequence[StitchPart], gap_rate_hz: int | None = None, layout: Layout = Layout()
) -> Timeline:
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
    trims: list[int] = []
    lengths: list[int] = []
    position = _pause_frames(layout.head_ms, rate)
    for part, info in zip(parts, infos, strict=True):
        starts.append(position)
        if info is None:
            frames, trimmed = _pause_frames(part.gap_ms, rate), 0
        elif part.span is None:
            frames, trimmed = info[1], 0
        else:
            frames, trimmed = part.span.frames, part.span.start_frame
        trims.append(trimmed)
        lengths.append(frames)
        position += frames + _pause_frames(part.pause_after_ms, rate)
    position += _pause_frames(layout.tail_ms, rate)
    return Timeline(rate, tuple(starts), position, tuple(trims), tuple(lengths))


def stitch(
    parts: Sequence[StitchPart],
    out_path: Path,
    fmt: AudioFormat,
    gap_rate_hz: int | None = None,
    *,
    layout: Layout = Layout(),
    filters: Sequence[str] = (),
) -> Timeline:
    """Write ``parts`` with their pauses to ``out_path`` (atomically) and return the timeline."""
    timeline = plan_timeline(parts, gap_rate_hz, layout)
    with atomic_path(out_path) as tmp:
        _encode(
            lambda sink: stream_pcm(parts, timeline, layout, sink.write),
            timeline.sample_rate_hz,
            tmp,
            fmt,
            filters,
        )
    return timeline


def _encode(
    produce: Callable[[IO[bytes]], None],
    rate: int,
    tmp: Path,
    fmt: AudioFormat,
    filters: Sequence[str],
) -> None:
    chain = ["-af", ",".join(filters)] if filters else []
    command = [
        ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
        "-f", "s16le", "-ar", str(rate), "-ac", "1", "-i", "pipe:0",
        *chain, *fmt.ffmpeg_output_args(rate), str(tmp),
    ]  # fmt: skip
    with subprocess.Popen(
        command, stdin=subprocess.PIPE, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL
    ) as process:
        assert process.stdin is not None and process.stderr is not None
        try:
            produce(process.stdin)
            process.stdin.close()
        except BrokenPipeError:  # ffmpeg died; its stderr says why
            with contextlib.suppress(BrokenPipeError):
                process.stdin.close()
        errors = process.stderr.read().decode(errors="replace").strip()
        if process.wait() != 0:
            raise AudioToolError(f"ffmpeg failed to encode {fmt.container}: {errors[-500:]}")


def stream_pcm(
    parts: Sequence[StitchPart],
    timeline: Timeline,
    layout: Layout,
    write: Callable[[bytes], object],
) -> None:
    """Write the stitched PCM of ``parts`` (mono s16le at the timeline's rate), one
    segment and one pause at a time."""
    rate = timeline.sample_rate_hz
    quiet = _Quiet(layout.room_tone_dbfs, rate, write)
    quiet.write(_pause_frames(layout.head_ms, rate))
    for part in parts:
        if part.wav_path is None:
            quiet.write(_pause_frames(part.gap_ms, rate))
        elif part.span is None:
            with wave.open(str(part.wav_path), "rb") as wav:
                while chunk := wav.readframes(CHUNK_FRAMES):
                    write(chunk)
                    quiet.skip(len(chunk) // SAMPLE_WIDTH_BYTES)
        else:
            quiet.under(edited(load(part.wav_path), part.span))
        quiet.write(_pause_frames(part.pause_after_ms, rate))
    quiet.write(_pause_frames(layout.tail_ms, rate))


class _Quiet:
    """Pauses: digital silence, or room tone that runs on, under the speech too, as in a
    room: the engine's own silences between words and sentences get it as well, so no
    stretch of the chapter is digital zero."""

    def __init__(self, level_dbfs: float | None, rate: int, write: Callable[[bytes], object]):
        self.tone = _room_tone(level_dbfs, rate) if level_dbfs is not None else None
        self.write_pcm = write
        self.position = 0

    def skip(self, frames: int) -> None:
        self.position += frames

    def under(self, pcm: bytes) -> None:
        """Write a segment's PCM with the room tone mixed under it (if there is one)."""
        frames = len(pcm) // SAMPLE_WIDTH_BYTES
        if self.tone is not None:
            pcm = mix(pcm, self.tone.pcm(frames, self.position))
        self.write_pcm(pcm)
        self.position += frames

    def write(self, frames: int) -> None:
        while frames > 0:
            step = min(frames, CHUNK_FRAMES)
            if self.tone is None:
                self.write_pcm(bytes(step * SAMPLE_WIDTH_BYTES))
            else:
                self.write_pcm(self.tone.pcm(step, self.position))
            self.position += step
            frames -= step


@cache
def _room_tone(level_dbfs: float, rate: int) -> RoomTone:
    return RoomTone(level_dbfs, rate)


def _pause_frames(pause_ms: int, rate: int) -> int:
    return pause_ms * rate // 1000
