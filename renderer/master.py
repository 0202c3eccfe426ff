"""Mastering a chapter to a delivery profile: one linear gain from a measured first pass, a
true-peak limiter only where the gain would push peaks over the ceiling, then a check of
the *encoded* file, corrected and encoded again when it misses.

Never per-sentence normalisation, never a dynamic loudness filter that compresses speech:
the chapter keeps its own dynamics, moved as a whole.

1. **Measure** (:func:`first_pass`): RMS and true peak from the levels each segment's
   trim found (no pass of its own); integrated loudness by streaming the edited chapter
   once through the meters (:class:`~renderer.measure.StreamMeter`), no file written.
2. **Decide** (:func:`plan_gain`, pure): the gain that puts the profile's aim (RMS for
   ACX, integrated loudness otherwise) on its target; if the true peak would then cross
   the profile's ceiling, ACX first gives up loudness it can spare (RMS down to -20.5 dB),
   and a limiter takes the rest: ffmpeg's ``alimiter`` at the output's sample rate, holding
   sample peaks :data:`INTER_SAMPLE_MARGIN_DB` under the true-peak ceiling, with a fast
   attack and its latency compensated (word times do not move).
3. **Encode** with that gain, the limiter if any and room tone (the profile's level after
   the gain) in the pauses and at the ends; **measure the encoded file** and check it;
   when loudness or true peak missed (encoding moves both a little), :func:`correct`
   adjusts and it is encoded again, at most :data:`MAX_ATTEMPTS` times.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from narrate.errors import UsageError
from renderer.check import Report, check
from renderer.measure import StreamMeter, db, measure_file
from renderer.profiles import Profile
from renderer.stitch import AudioFormat, Layout, StitchPart, Timeline, plan_timeline, stream_pcm
from renderer.stitch import stitch as encode_parts

MAX_ATTEMPTS = 3
#: how far under a missed limit a correction aims (dB)
CORRECTION_MARGIN_DB = 0.3


@dataclass(frozen=True)
class Gain:
    """The whole chapter's gain, and the limiter's true-peak ceiling (None: no limiter)."""

    gain_db: float
    limit_dbtp: float | None = None


@dataclass(frozen=True)
class Mastered:
    timeline: Timeline
    report: Report
    gain: Gain
    attempts: int
    #: the chapter before any gain
    measured: FirstPass


@dataclass(frozen=True)
class FirstPass:
    """The chapter before any gain: what the profile aims at (RMS dB or integrated LUFS)
    and its true peak."""

    level_db: float
    true_peak_dbtp: float


def plan_gain(measured: FirstPass, profile: Profile, channels: int = 1) -> Gain:
    """The gain (and limiter) that brings a chapter to ``profile`` (pure)."""
    mastering = profile.mastering
    target = mastering.target_db(channels)
    gain = target - measured.level_db
    over = measured.true_peak_dbtp + gain - mastering.ceiling_dbtp
    if over <= 0:
        return Gain(round(gain, 2))
    if mastering.lowest_db is not None:  # loudness the profile can spare before limiting
        spare = min(over, max(0.0, target - mastering.lowest_db(channels)))
        gain -= spare
        over -= spare
        if over <= 0:
            return Gain(round(gain, 2))
    return Gain(round(gain, 2), mastering.ceiling_dbtp)


def correct(gain: Gain, report: Report, profile: Profile) -> Gain | None:
    """A better gain after measuring the encoded file (pure), or None when it is good.

    Loudness (RMS for ACX) is moved back to the target when it left the middle half of
    the allowed range (encoding and limiting move it by a few tenths); a peak over its
    limit lowers the limiter's ceiling by the excess. What is not a matter of level
    (format, silence at the ends) is left to the report.
    """
    results = {r.rule: r for r in report.results}
    better = gain
    aim = results.get("rms") or results.get("loudness")
    if aim is not None and isinstance(aim.measured, float) and None not in (aim.low, aim.high):
        low, high = float(aim.low or 0), float(aim.high or 0)
        quarter = (high - low) / 4
        if not low + quarter <= aim.measured <= high - quarter:
            target = profile.mastering.target_db(report.measures.channels)
            better = replace(better, gain_db=round(better.gain_db + target - aim.measured, 2))
    excess = max(
        (
            float(r.measured) - float(r.high)
            for r in report.failures
            if r.rule in ("true_peak", "peak") and r.measured is not None and r.high is not None
        ),
        default=0.0,
    )
    if excess > 0:
        ceiling = better.limit_dbtp
        if ceiling is None:
            ceiling = profile.mastering.ceiling_dbtp
        better = replace(better, limit_dbtp=round(ceiling - excess - CORRECTION_MARGIN_DB, 2))
    return None if better == gain else better


#: the limiter holds sample peaks this far under its true-peak ceiling: what lies between
#: samples rarely rises more (measured on the encoded file, and corrected when it does)
INTER_SAMPLE_MARGIN_DB = 0.5


def filter_chain(gain: Gain, sample_rate_hz: int) -> list[str]:
    """ffmpeg filters applying ``gain``: a volume change, and the limiter if it has one,
    at the output's sample rate (4x oversampling it costs more than all the rest)."""
    chain = [f"volume={gain.gain_db:.2f}dB"]
    if gain.limit_dbtp is not None:
        limit = 10 ** ((gain.limit_dbtp - INTER_SAMPLE_MARGIN_DB) / 20)
        chain += [
            f"aresample={sample_rate_hz}",
            f"alimiter=limit={limit:.5f}:attack=1:release=60:level=0:latency=1",
        ]
    return chain


def layout_for(profile: Profile, gain_db: float = 0.0) -> Layout:
    """Room tone and end silences of ``profile``; the room tone generated ``gain_db``
    under its level, since the gain comes after it."""
    mastering = profile.mastering
    tone = None if mastering.room_tone_db is None else mastering.room_tone_db - gain_db
    return Layout(tone, mastering.head_ms, mastering.tail_ms)


def output_format(profile: Profile, requested: AudioFormat) -> AudioFormat:
    """What the profile requires on top of what was asked (ACX: 44.1 kHz MP3 192k)."""
    mastering = profile.mastering
    bitrate = requested.bitrate_kbps
    if mastering.bitrate_kbps is not None:
        bitrate = max(bitrate or 0, mastering.bitrate_kbps)
    return AudioFormat(
        mastering.container or requested.container,
        mastering.sample_rate_hz or requested.sample_rate_hz,
        bitrate,
    )


def check_request(profile: Profile, requested: AudioFormat) -> None:
    """Refuse output options that contradict the profile (before any work is done)."""
    mastering = profile.mastering
    spec = (
        f"--master {profile.name} writes {mastering.container or 'any format'}"
        + (f" at {mastering.sample_rate_hz} Hz" if mastering.sample_rate_hz else "")
        + (f", {mastering.bitrate_kbps} kbit/s or more" if mastering.bitrate_kbps else "")
    )
    if mastering.container and requested.container != mastering.container:
        raise UsageError(
            f"{spec}, not {requested.container}",
            hint=f"drop --format, or use --format {mastering.container}",
        )
    if mastering.sample_rate_hz and requested.sample_rate_hz not in (
        None,
        mastering.sample_rate_hz,
    ):
        raise UsageError(f"{spec}, not {requested.sample_rate_hz} Hz", hint="drop --sample-rate")
    if (
        mastering.bitrate_kbps
        and (requested.bitrate_kbps or mastering.bitrate_kbps) < mastering.bitrate_kbps
    ):
        raise UsageError(
            f"{spec}, not {requested.bitrate_kbps} kbit/s",
            hint=f"drop --bitrate, or give {mastering.bitrate_kbps} or more",
        )


def first_pass(
    parts: Sequence[StitchPart], profile: Profile, gap_rate_hz: int | None = None
) -> FirstPass:
    """The chapter's level before any gain. RMS comes from the levels the trim found in
    each segment (pauses and ends add only samples); loudness needs a pass of its own:
    the edited chapter streamed once through the meters, no file written."""
    silent = replace(layout_for(profile), room_tone_dbfs=None)
    timeline = plan_timeline(parts, gap_rate_hz, silent)
    found = [p.span.levels if p.span else None for p in parts if p.wav_path is not None]
    known = [levels for levels in found if levels is not None]
    if profile.mastering.aim == "rms" and len(known) == len(found):
        energy = sum(levels.energy for levels in known)
        true_peak = max((levels.true_peak for levels in known), default=0.0)
        rms = math.sqrt(energy / timeline.sample_count) if timeline.sample_count else 0.0
        return FirstPass(db(rms / 32768.0), db(true_peak / 32768.0))
    meter = StreamMeter(timeline.sample_rate_hz, timeline.duration_ms)
    try:
        stream_pcm(parts, timeline, silent, meter.write)
    except BaseException:
        meter.abort()
        raise
    levels, loudness = meter.close()
    level = levels.rms_db if profile.mastering.aim == "rms" else loudness.integrated_lufs
    return FirstPass(level, levels.true_peak_db)


def needs_levels(profile: Profile | None) -> bool:
    """Whether the trim should find each segment's levels (an RMS-aimed master)."""
    return profile is not None and profile.mastering.aim == "rms"


def master(
    parts: Sequence[StitchPart],
    out_path: Path,
    fmt: AudioFormat,
    profile: Profile,
    gap_rate_hz: int | None = None,
) -> Mastered:
    """Stitch ``parts`` (already trimmed, with levels for an RMS-aimed profile:
    :func:`needs_levels`) into ``out_path`` mastered to ``profile``."""
    measured = first_pass(parts, profile, gap_rate_hz)
    out_rate = fmt.sample_rate_hz or plan_timeline(parts, gap_rate_hz).sample_rate_hz
    timelines: list[Timeline] = []

    def encode(gain: Gain) -> None:
        timelines.append(
            encode_parts(
                parts,
                out_path,
                fmt,
                gap_rate_hz,
                layout=layout_for(profile, gain.gain_db),
                filters=filter_chain(gain, out_rate),
            )
        )

    checked = encode_checked(encode, out_path, profile, plan_gain(measured, profile))
    return Mastered(timelines[-1], checked.report, checked.gain, checked.attempts, measured)


@dataclass(frozen=True)
class Checked:
    """An encoded file's check, with the gain it was encoded with last."""

    report: Report
    gain: Gain
    attempts: int


def encode_checked(
    encode: Callable[[Gain], object], out_path: Path, profile: Profile, gain: Gain
) -> Checked:
    """``encode(gain)`` writes ``out_path``; it is measured and checked against
    ``profile``, and encoded again with a corrected gain while it misses (:func:`correct`),
    at most :data:`MAX_ATTEMPTS` times in all."""
    attempt = 0
    while True:
        attempt += 1
        encode(gain)
        report = check(measure_file(out_path), profile)
        better = None if attempt >= MAX_ATTEMPTS else correct(gain, report, profile)
        if better is None:
            return Checked(report, gain, attempt)
        gain = better
