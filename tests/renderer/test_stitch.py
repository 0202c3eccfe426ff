from __future__ import annotations

import math
import struct
import wave
from pathlib import Path

import pytest

from narrate.errors import AudioToolError, UsageError
from renderer.audio import decode_pcm, decoded_duration_ms, write_wav_atomic
from renderer.stitch import AudioFormat, StitchPart, stitch

RATE = 22050


def tone(seconds: float, rate: int = RATE) -> bytes:
    count = int(seconds * rate)
    return b"".join(
        struct.pack("<h", int(9000 * math.sin(2 * math.pi * 440 * i / rate))) for i in range(count)
    )


@pytest.fixture
def parts(tmp_path: Path) -> list[StitchPart]:
    result = []
    for index, seconds in enumerate([1.0, 0.5, 2.0]):
        path = tmp_path / f"seg{index}.wav"
        write_wav_atomic(path, tone(seconds), RATE)
        result.append(StitchPart(path, pause_after_ms=250 if index < 2 else 0))
    return result


@pytest.mark.parametrize("container", ["mp3", "wav", "opus"])
def test_stitched_file_decodes_to_the_timeline_duration(
    parts: list[StitchPart], tmp_path: Path, container: str
) -> None:
    out = tmp_path / f"chapter.{container}"
    timeline = stitch(parts, out, AudioFormat(container))
    assert abs(timeline.duration_ms - (1000 + 250 + 500 + 250 + 2000)) <= 1
    assert abs(decoded_duration_ms(out) - timeline.duration_ms) <= 5
    assert [round(s / RATE, 3) for s in timeline.part_starts] == [0, 1.25, 2.0]


def test_pauses_are_silent_and_segments_keep_their_order(
    parts: list[StitchPart], tmp_path: Path
) -> None:
    out = tmp_path / "chapter.wav"
    stitch(parts, out, AudioFormat("wav"))
    samples = struct.unpack(f"<{len(decode_pcm(out, RATE)) // 2}h", decode_pcm(out, RATE))
    pause = samples[int(1.02 * RATE) : int(1.23 * RATE)]
    speech = samples[int(1.3 * RATE) : int(1.7 * RATE)]
    assert max(abs(s) for s in pause) == 0
    assert max(abs(s) for s in speech) > 8000


def test_output_sample_rate_is_applied(parts: list[StitchPart], tmp_path: Path) -> None:
    out = tmp_path / "chapter.wav"
    stitch(parts, out, AudioFormat("wav", sample_rate_hz=44100))
    with wave.open(str(out)) as wav:
        assert wav.getframerate() == 44100
        assert abs(wav.getnframes() / 44100 - 4.0) < 0.01


def test_mixed_sample_rates_are_refused(parts: list[StitchPart], tmp_path: Path) -> None:
    odd = tmp_path / "odd.wav"
    write_wav_atomic(odd, tone(0.2, 16000), 16000)
    with pytest.raises(AudioToolError, match="mixed sample rates"):
        stitch([*parts, StitchPart(odd, 0)], tmp_path / "x.mp3", AudioFormat())


def test_failed_encode_leaves_no_output(parts: list[StitchPart], tmp_path: Path) -> None:
    out = tmp_path / "chapter.mp3"
    with pytest.raises(AudioToolError):
        stitch(parts, out, AudioFormat("mp3", sample_rate_hz=9000))
    assert list(tmp_path.glob("*.mp3")) == []
    assert list(tmp_path.glob(".tmp-*")) == []


@pytest.mark.parametrize(
    "kwargs", [{"container": "aiff"}, {"sample_rate_hz": 4000}, {"sample_rate_hz": 96000}]
)
def test_bad_formats_are_usage_errors(kwargs: dict[str, object]) -> None:
    with pytest.raises(UsageError):
        AudioFormat(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("container", ["wav", "mp3"])
def test_gap_parts_become_silence_of_their_length_in_their_place(
    parts: list[StitchPart], tmp_path: Path, container: str
) -> None:
    # a partial chapter: a gap first, then 1 s of speech (+250 ms), a gap, 2 s of speech
    with_gaps = [
        StitchPart(None, 100, 400),
        parts[0],
        StitchPart(None, 250, 600),
        parts[2],
    ]
    out = tmp_path / f"chapter.{container}"
    timeline = stitch(with_gaps, out, AudioFormat(container))
    assert [round(s / RATE, 3) for s in timeline.part_starts] == [0, 0.5, 1.75, 2.6]
    assert abs(timeline.duration_ms - (400 + 100 + 1000 + 250 + 600 + 250 + 2000)) <= 1
    assert abs(decoded_duration_ms(out) - timeline.duration_ms) <= 5
    if container != "wav":
        return
    pcm = decode_pcm(out, RATE)
    samples = struct.unpack(f"<{len(pcm) // 2}h", pcm)

    def loudest(start_s: float, end_s: float) -> int:
        return int(max(abs(s) for s in samples[int(start_s * RATE) : int(end_s * RATE)]))

    assert loudest(0, 0.49) == 0  # the leading gap and its pause
    assert loudest(0.52, 1.48) > 8000
    assert loudest(1.51, 2.59) == 0  # pause, gap, pause
    assert loudest(2.62, 4.58) > 8000


def test_a_chapter_of_gaps_only_cannot_be_stitched(tmp_path: Path) -> None:
    with pytest.raises(AudioToolError, match="nothing to stitch"):
        stitch([StitchPart(None, 0, 500)], tmp_path / "x.wav", AudioFormat("wav"))
