"""Delivery profiles: the rules a store or a broadcaster checks, and how narrate masters to
them (../shared/reference/delivery-standards.md, section 5).

* ``acx`` (ACX/Audible, the de-facto bar of the audiobook stores): RMS between -23 and
  -18 dB, peak at most -3 dB (and true peak at most -3 dBTP, since MP3 encoding raises
  inter-sample peaks), noise floor at most -60 dB, 44.1 kHz mono MP3 at 192 kbit/s CBR,
  0.5-1 s of room tone at the head and 1-5 s at the tail, at most 120 minutes a file.
* ``podcast``: integrated loudness -16 LUFS +-1 for stereo, -19 LUFS +-1 for mono; true
  peak at most -1 dBTP.
* ``broadcast`` (EBU R128): -23 LUFS +-0.5 LU, true peak at most -1 dBTP.

Each profile also says how narrate masters to it: what it aims at (RMS or integrated
loudness), the true-peak ceiling of the limiter (a little under the rule, so the encoded
file still passes), room tone, and the output format it requires, if any.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from narrate.errors import UsageError

if TYPE_CHECKING:  # measuring needs numpy; the CLI imports the profile names at start
    from renderer.measure import Measures

Bounds = Callable[["Measures"], tuple[float | None, float | None]]


@dataclass(frozen=True)
class Rule:
    """One check: ``measure`` of a file must lie within ``bounds`` (either end optional)."""

    key: str
    label: str
    measure: str  # the Measures attribute
    unit: str
    bounds: Bounds

    def limits(self, measures: Measures) -> tuple[float | None, float | None]:
        return self.bounds(measures)


def _fixed(low: float | None, high: float | None) -> Bounds:
    return lambda _measures: (low, high)


@dataclass(frozen=True)
class Mastering:
    """How to master to a profile."""

    #: "rms" (ACX counts RMS) or "lufs" (integrated loudness)
    aim: str
    #: where to aim, by channel count (1 = mono)
    target_db: Callable[[int], float]
    #: the limiter's true-peak ceiling before encoding (under the rule: encoding adds)
    ceiling_dbtp: float
    #: the least the aim may move down to spare limiting (ACX: RMS down to -22.5 dB)
    lowest_db: Callable[[int], float] | None = None
    room_tone_db: float | None = None
    head_ms: int = 0
    tail_ms: int = 0
    #: required output: container, sample rate, channels, bit rate (None: the user's)
    container: str | None = None
    sample_rate_hz: int | None = None
    bitrate_kbps: int | None = None
    max_file_ms: int | None = None


@dataclass(frozen=True)
class Profile:
    name: str
    summary: str
    rules: tuple[Rule, ...]
    mastering: Mastering


def _podcast_target(channels: int) -> float:
    return -19.0 if channels == 1 else -16.0


ACX = Profile(
    "acx",
    "ACX/Audible audiobook chapters",
    (
        Rule("rms", "RMS level", "rms_db", "dB", _fixed(-23.0, -18.0)),
        Rule("peak", "peak level", "peak_db", "dB", _fixed(None, -3.0)),
        Rule("true_peak", "true peak", "true_peak_dbtp", "dBTP", _fixed(None, -3.0)),
        Rule("noise_floor", "noise floor", "noise_floor_db", "dB", _fixed(None, -60.0)),
        Rule("sample_rate", "sample rate", "sample_rate_hz", "Hz", _fixed(44100, 44100)),
        Rule("bitrate", "bit rate", "bitrate_kbps", "kbit/s", _fixed(192, None)),
        Rule("cbr", "constant bit rate", "constant_bitrate", "", _fixed(1, 1)),
        Rule("mono", "channels", "channels", "", _fixed(1, 1)),
        Rule("head", "room tone at the head", "head_silence_ms", "ms", _fixed(500, 1000)),
        Rule("tail", "room tone at the tail", "tail_silence_ms", "ms", _fixed(1000, 5000)),
        Rule("length", "duration", "duration_ms", "ms", _fixed(None, 120 * 60 * 1000)),
    ),
    Mastering(
        aim="rms",
        target_db=lambda _channels: -20.0,
        lowest_db=lambda _channels: -20.5,
        ceiling_dbtp=-3.5,
        room_tone_db=-70.0,
        head_ms=750,
        tail_ms=2000,
        container="mp3",
        sample_rate_hz=44100,
        bitrate_kbps=192,
        max_file_ms=120 * 60 * 1000,
    ),
)

PODCAST = Profile(
    "podcast",
    "podcast loudness (-16 LUFS stereo, -19 LUFS mono)",
    (
        Rule(
            "loudness",
            "integrated loudness",
            "integrated_lufs",
            "LUFS",
            lambda m: (_podcast_target(m.channels) - 1.0, _podcast_target(m.channels) + 1.0),
        ),
        Rule("true_peak", "true peak", "true_peak_dbtp", "dBTP", _fixed(None, -1.0)),
    ),
    Mastering(aim="lufs", target_db=_podcast_target, ceiling_dbtp=-1.5, head_ms=300, tail_ms=500),
)

BROADCAST = Profile(
    "broadcast",
    "EBU R128 broadcast (-23 LUFS)",
    (
        Rule("loudness", "integrated loudness", "integrated_lufs", "LUFS", _fixed(-23.5, -22.5)),
        Rule("true_peak", "true peak", "true_peak_dbtp", "dBTP", _fixed(None, -1.0)),
    ),
    Mastering(
        aim="lufs", target_db=lambda _channels: -23.0, ceiling_dbtp=-1.5, head_ms=300, tail_ms=500
    ),
)

PROFILES: dict[str, Profile] = {p.name: p for p in (ACX, PODCAST, BROADCAST)}
PROFILE_NAMES = tuple(PROFILES)


def profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise UsageError(
            f"unknown delivery profile {name!r}", hint=f"choose one of {', '.join(PROFILES)}"
        ) from None
