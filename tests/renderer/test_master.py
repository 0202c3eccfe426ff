"""Segment editing and mastering: exact pauses whatever the engine pads, room tone, one
gain and a limiter only where needed, checked on the encoded file."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from renderer.audio import decode_pcm
from renderer.check import check
from renderer.edit import RoomTone, load, speech_span
from renderer.m4b import BookChapter, assemble
from renderer.master import (
    FirstPass,
    Gain,
    correct,
    encode_checked,
    filter_chain,
    first_pass,
    layout_for,
    master,
    output_format,
    plan_gain,
)
from renderer.measure import measure_file
from renderer.profiles import profile
from renderer.stitch import AudioFormat, Layout, StitchPart, stitch, trim
from tests.renderer.signals import encode, noise, silence, speechlike, write_wav

RATE = 22050


def padded(tmp_path: Path, name: str, lead_s: float, speech_s: float, trail_s: float) -> Path:
    body = np.concatenate(
        [silence(lead_s, RATE), speechlike(speech_s, -20.0, RATE), silence(trail_s, RATE)]
    )
    return write_wav(tmp_path / f"{name}.wav", body, RATE)


def test_speech_span_keeps_the_speech_and_a_little_around_it(tmp_path: Path) -> None:
    audio = load(padded(tmp_path, "a", 0.4, 2.0, 0.9))
    span = speech_span(audio)
    assert span.start_frame / RATE == pytest.approx(0.38, abs=0.02)
    assert span.end_frame / RATE == pytest.approx(2.44, abs=0.02)
    quiet = write_wav(tmp_path / "q.wav", silence(1.0, RATE), RATE)
    assert speech_span(load(quiet)).frames == RATE, "all quiet: kept whole"


def test_pauses_are_exactly_planned_whatever_the_engine_padded(tmp_path: Path) -> None:
    parts = trim(
        [
            StitchPart(padded(tmp_path, "a", 0.05, 1.0, 0.30), 500),
            StitchPart(padded(tmp_path, "b", 0.60, 1.0, 1.20), 500),
            StitchPart(padded(tmp_path, "c", 0.00, 1.0, 0.00), 0),
        ]
    )
    out = tmp_path / "chapter.wav"
    timeline = stitch(parts, out, AudioFormat("wav"))
    samples = np.frombuffer(decode_pcm(out, RATE), dtype="<i2").astype(float)
    loud = np.abs(samples) > 300
    edges = np.flatnonzero(np.diff(loud.astype(int)))
    # the quiet stretches between the three bursts: 20 ms kept before, 40 ms after speech
    gaps = [
        (edges[i + 1] - edges[i]) / RATE
        for i in range(len(edges) - 1)
        if not loud[edges[i] + 1] and (edges[i + 1] - edges[i]) / RATE > 0.3
    ]
    assert gaps == pytest.approx([0.56, 0.56], abs=0.03)
    assert timeline.part_trims[1] / RATE == pytest.approx(0.58, abs=0.02)


def test_room_tone_is_steady_low_and_the_same_every_time() -> None:
    tone = RoomTone(-70.0, RATE)
    samples = np.frombuffer(tone.pcm(RATE * 5, 123), dtype="<i2").astype(float)
    rms_db = 20 * np.log10(np.sqrt(np.mean(samples**2)) / 32768)
    assert rms_db == pytest.approx(-70.0, abs=0.5)
    assert tone.pcm(1000, 5) == RoomTone(-70.0, RATE).pcm(1000, 5)


def test_room_tone_fills_pauses_and_ends(tmp_path: Path) -> None:
    parts = trim([StitchPart(padded(tmp_path, "a", 0.2, 1.0, 0.2), 800)])
    out = tmp_path / "c.wav"
    stitch(parts, out, AudioFormat("wav"), layout=Layout(-65.0, 750, 2000))
    measures = measure_file(out)
    assert measures.noise_floor_db == pytest.approx(-65.0, abs=1.5)
    assert measures.head_silence_ms == pytest.approx(750 + 20, abs=20)
    assert measures.tail_silence_ms == pytest.approx(800 + 2000 + 40, abs=20)


def test_plan_gain_aims_at_the_target_and_limits_only_when_needed() -> None:
    acx, podcast = profile("acx"), profile("podcast")
    assert plan_gain(FirstPass(-26.0, -12.0), acx) == Gain(6.0)
    # peaks would reach -2: spare loudness down to -20.5 RMS, then limit
    assert plan_gain(FirstPass(-26.0, -8.0), acx) == Gain(5.5, -3.5)
    # podcast aims at -19 LUFS (mono)
    assert plan_gain(FirstPass(-24.0, -12.0), podcast) == Gain(5.0)
    assert plan_gain(FirstPass(-24.0, -5.0), podcast) == Gain(5.0, -1.5)


def test_the_first_pass_of_an_rms_master_comes_from_the_trimmed_segments(
    tmp_path: Path,
) -> None:
    parts = trim(
        [StitchPart(padded(tmp_path, f"s{i}", 0.3, 3.0, 0.5), 600) for i in range(3)], levels=True
    )
    acx = profile("acx")
    from_spans = first_pass(parts, acx)
    streamed = first_pass(parts, replace(acx, mastering=replace(acx.mastering, aim="lufs")))
    out = tmp_path / "silent-ends.wav"
    stitch(parts, out, AudioFormat("wav"), layout=replace(layout_for(acx), room_tone_dbfs=None))
    measured = measure_file(out)
    assert from_spans.level_db == pytest.approx(measured.rms_db, abs=0.05)
    assert from_spans.true_peak_dbtp == pytest.approx(measured.true_peak_dbtp, abs=0.1)
    assert streamed.level_db == pytest.approx(measured.integrated_lufs, abs=0.1)


@pytest.mark.parametrize("name", ["acx", "podcast", "broadcast"])
def test_master_lands_within_the_profile_on_the_encoded_file(tmp_path: Path, name: str) -> None:
    chosen = profile(name)
    parts = trim(
        [
            StitchPart(
                write_wav(
                    tmp_path / f"s{i}.wav", speechlike(8.0, -30.0 + 3 * i, RATE, seed=i), RATE
                ),
                700,
            )
            for i in range(4)
        ]
    )
    fmt = output_format(chosen, AudioFormat("mp3"))
    out = tmp_path / f"chapter.{fmt.extension}"
    mastered = master(parts, out, fmt, chosen)
    report = check(measure_file(out), chosen)
    assert report.passed, [(r.rule, r.shown, r.limit) for r in report.failures]
    assert mastered.report.passed
    if name == "broadcast":
        assert report.measures.integrated_lufs == pytest.approx(-23.0, abs=0.3)
    if name == "acx":
        assert report.measures.noise_floor_db == pytest.approx(-70.0, abs=2.0)


def test_correct_moves_loudness_back_and_lowers_a_missed_ceiling(tmp_path: Path) -> None:
    broadcast = profile("broadcast")
    wav = write_wav(
        tmp_path / "x.wav", speechlike(10.0, -20.0, RATE) + noise(10.0, -80, RATE), RATE
    )
    report = check(measure_file(wav), broadcast)
    better = correct(Gain(0.0), report, broadcast)
    assert better is not None
    assert better.gain_db == pytest.approx(-23.0 - report.measures.integrated_lufs, abs=0.01)


def test_an_encoded_book_over_its_limits_is_corrected_and_encoded_again(tmp_path: Path) -> None:
    """Chapters that pass losslessly can fail once encoded together (AAC raises peaks):
    the book is measured, corrected (gain, limiter) and encoded again until it passes."""
    rate = 44100
    chapters = []
    burst = np.arange(int(0.02 * rate)) / rate
    for i in range(2):
        samples = speechlike(15.0, -21.0, rate, seed=i)
        for start in range(2 * rate, samples.size - rate, 3 * rate):  # loud 20 ms bursts
            samples[start : start + burst.size] = 0.99 * np.sin(2 * np.pi * 3000 * burst)
        wav = write_wav(tmp_path / f"c{i}.wav", samples, rate)
        chapters.append(BookChapter(f"Chapter {i}", encode(wav, tmp_path / f"c{i}.flac")))
    book = tmp_path / "book.m4b"
    podcast = profile("podcast")
    peaks: list[float] = []

    def encode_book(gain: Gain) -> None:
        filters = filter_chain(gain, rate) if gain != Gain(0.0) else []
        assemble(chapters, book, AudioFormat("m4b"), filters=filters)
        peaks.append(measure_file(book).true_peak_dbtp)

    checked = encode_checked(encode_book, book, podcast, Gain(0.0))
    assert peaks[0] > podcast.mastering.ceiling_dbtp  # as assembled, it fails
    assert checked.attempts >= 2 and checked.gain.limit_dbtp is not None
    report = check(measure_file(book), podcast)
    assert report.passed, [(r.rule, r.shown, r.limit) for r in report.failures]
    assert report.measures.true_peak_dbtp <= podcast.mastering.ceiling_dbtp
