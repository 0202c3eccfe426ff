"""Local checks of a voice-clone sample before it is uploaded (reference §8.2).

The service wants WAV (16-bit), MP3 or M4A; at most 10 MB; a sample rate of at least
16 kHz; 10-20 s recommended and 60 s at most; at least 5 s of continuous clean speech,
no pause over 2 s, and (our reading of "mostly speech") speech in at least 60% of it.
Every problem is reported, each with what to do, instead of stopping at the first.

Speech is found with a simple energy detector on 20 ms frames of the audio decoded by
the bundled ffmpeg to 16 kHz mono: a frame is speech when its RMS reaches 10% of the
95th-percentile frame RMS (and an absolute floor of about -50 dBFS); gaps under 300 ms
(pauses between words) do not break "continuous" speech.
"""

from __future__ import annotations

import re
import subprocess
from array import array
from dataclasses import dataclass
from math import sqrt
from pathlib import Path

MAX_BYTES = 10 * 1024 * 1024
MIN_RATE_HZ = 16_000
MAX_SECONDS = 60.0
RECOMMENDED_SECONDS = (10.0, 20.0)
MIN_CONTINUOUS_SPEECH_S = 5.0
MAX_SILENCE_S = 2.0
MIN_SPEECH_SHARE = 0.6
ANALYSIS_RATE_HZ = 16_000
FRAME_MS = 20
BRIDGE_MS = 300
ABSOLUTE_FLOOR = 100  # RMS on the 16-bit scale (about -50 dBFS)


@dataclass(frozen=True)
class Problem:
    check: str
    message: str
    fatal: bool = True  # False: a recommendation, not a rule


@dataclass(frozen=True)
class SpeechStats:
    duration_s: float
    speech_share: float
    longest_speech_s: float
    longest_silence_s: float


def sniff_format(head: bytes) -> str | None:
    """``wav``, ``mp3``, ``m4a`` from the first bytes, or None."""
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "mp3"
    if head[4:8] == b"ftyp":
        return "m4a"
    return None


def wav_bits(data: bytes) -> int | None:
    """Bits per sample of a WAV file's PCM ``fmt`` chunk."""
    pos = 12
    while pos + 8 <= len(data):
        chunk, size = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "little")
        if chunk == b"fmt " and size >= 16:
            return int.from_bytes(data[pos + 22 : pos + 24], "little")
        pos += 8 + size + (size & 1)
    return None


def probe_rate(path: Path) -> int | None:
    """The first audio stream's sample rate, as ffmpeg reports it."""
    from renderer.audio import ffmpeg_exe

    result = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, check=False
    )
    match = re.search(r"Audio:.*?(\d+) Hz", result.stderr.decode(errors="replace"))
    return int(match.group(1)) if match else None


def speech_stats(pcm: bytes, sample_rate: int = ANALYSIS_RATE_HZ) -> SpeechStats:
    """Speech share, longest continuous speech and longest silence of mono s16le PCM."""
    samples = array("h")
    samples.frombytes(pcm[: len(pcm) // 2 * 2])
    frame = sample_rate * FRAME_MS // 1000
    rms = [
        sqrt(sum(s * s for s in samples[i : i + frame]) / frame)
        for i in range(0, len(samples) - frame + 1, frame)
    ]
    duration = len(samples) / sample_rate
    if not rms:
        return SpeechStats(duration, 0.0, 0.0, duration)
    loud = sorted(rms)[int(0.95 * (len(rms) - 1))]
    threshold = max(ABSOLUTE_FLOOR, 0.1 * loud)
    speech = [r >= threshold for r in rms]
    bridge = BRIDGE_MS // FRAME_MS
    # close gaps shorter than the bridge between speech frames
    bridged = list(speech)
    last = None
    for i, is_speech in enumerate(speech):
        if is_speech:
            if last is not None and 0 < i - last - 1 <= bridge:
                for k in range(last + 1, i):
                    bridged[k] = True
            last = i
    longest_speech = longest_silence = run_speech = run_silence = 0
    for value in bridged:
        run_speech = run_speech + 1 if value else 0
        longest_speech = max(longest_speech, run_speech)
    for value in speech:
        run_silence = 0 if value else run_silence + 1
        longest_silence = max(longest_silence, run_silence)
    seconds = FRAME_MS / 1000
    return SpeechStats(
        duration,
        sum(speech) / len(speech),
        longest_speech * seconds,
        longest_silence * seconds,
    )


def judge(
    *, size: int, fmt: str | None, bits: int | None, rate: int | None, stats: SpeechStats | None
) -> list[Problem]:
    """Every problem of a sample from its measurements (pure)."""
    problems: list[Problem] = []
    if size > MAX_BYTES:
        problems.append(
            Problem("size", f"the file is {size / 1e6:.1f} MB; the service takes at most 10 MB "
                    "(cut it to 10-20 s, or save it as MP3)")
        )  # fmt: skip
    if fmt is None:
        problems.append(
            Problem("format", "the file is not WAV, MP3 or M4A; convert it (e.g. "
                    "ffmpeg -i in.ext -ar 24000 -ac 1 -c:a pcm_s16le out.wav)")
        )  # fmt: skip
    elif fmt == "wav" and bits != 16:
        problems.append(
            Problem("format", f"the WAV file has {bits or 'unknown'}-bit samples; the service "
                    "takes 16-bit PCM WAV (ffmpeg -i in.wav -c:a pcm_s16le out.wav)")
        )  # fmt: skip
    if rate is not None and rate < MIN_RATE_HZ:
        problems.append(
            Problem("sample_rate", f"the sample rate is {rate} Hz; record at 16 kHz or more "
                    "(resampling a low-rate file up does not help)")
        )  # fmt: skip
    if stats is None:
        return problems
    low, high = RECOMMENDED_SECONDS
    if stats.duration_s > MAX_SECONDS:
        problems.append(
            Problem("duration", f"the sample lasts {stats.duration_s:.1f} s; at most 60 s is "
                    "accepted (10-20 s is best): cut it")
        )  # fmt: skip
    elif not low <= stats.duration_s <= high:
        problems.append(
            Problem("duration", f"the sample lasts {stats.duration_s:.1f} s; 10-20 s is "
                    "recommended", fatal=False)
        )  # fmt: skip
    if stats.longest_speech_s < MIN_CONTINUOUS_SPEECH_S:
        problems.append(
            Problem("continuous_speech", f"the longest stretch of continuous speech is "
                    f"{stats.longest_speech_s:.1f} s; the service needs at least 5 s of "
                    "uninterrupted, clean speech")
        )  # fmt: skip
    if stats.longest_silence_s > MAX_SILENCE_S:
        problems.append(
            Problem("silence", f"there is a silence of {stats.longest_silence_s:.1f} s; pauses "
                    "must not exceed 2 s (trim leading/trailing silence and long pauses)")
        )  # fmt: skip
    if stats.speech_share < MIN_SPEECH_SHARE:
        problems.append(
            Problem("speech_share", f"speech fills only {stats.speech_share:.0%} of the "
                    "sample; it must be at least 60% (trim silence, music and noise)")
        )  # fmt: skip
    return problems


def check_sample(path: Path) -> tuple[list[Problem], SpeechStats | None]:
    """Check a local clone sample; returns every problem and the measurements."""
    from narrate.errors import AudioToolError, InputError
    from renderer.audio import decode_pcm

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    fmt = sniff_format(data[:16])
    bits = wav_bits(data) if fmt == "wav" else None
    rate = probe_rate(path)
    stats = None
    try:
        stats = speech_stats(decode_pcm(path, ANALYSIS_RATE_HZ))
    except AudioToolError:
        if fmt is not None:
            return [Problem("format", f"{path.name} looks like {fmt} but cannot be decoded")], None
    return judge(size=len(data), fmt=fmt, bits=bits, rate=rate, stats=stats), stats
