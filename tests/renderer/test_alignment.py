"""Word times match the audio: checked against an independent forced aligner.

Each sentence is synthesised by :class:`EspeakEngine`, its words are timed by
:func:`align_words`, and pocketsphinx 5.1.1 force-aligns the same audio to the same
words. The two word start (and end) times must agree. The same check is run on times
shifted by 200 ms and on evenly spread times to show that it would catch them.

pocketsphinx needs 16 kHz input and does badly on espeak's digital-zero silence, so the
audio is resampled (FFT, band-limited), padded with silence at both ends and dithered
with a little noise. ``pytest -s`` prints the measured figures.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pytest
from pocketsphinx import Decoder

from renderer.engine import SynthesisRequest
from renderer.espeak import EspeakEngine
from renderer.timing import TimedWord, align_words, tokenize

# ordinary sentences, all words in cmudict; several hold the function words espeak
# merges into the previous word's event ("on the", "in the", "of the", "for an")
SENTENCES = [
    "The old lighthouse keeper climbed the stairs every evening at sunset.",
    "She packed her bags, locked the door, and walked down to the station in the rain.",
    "Nobody in the village could remember a winter as cold as that one.",
    "He said that the letters had been hidden in a box under the floor of the barn.",
    "After dinner they sat by the fire and talked about the journey ahead.",
    "The river was wide and slow, and the boats moved along it like sleepy animals.",
    "It was late when the train finally arrived, and the platform was almost empty.",
    "Her brother had always wanted to see the mountains on the far side of the valley.",
    "They found the path again at the edge of the forest, just before dark.",
    "Some of the books on the top shelf were older than the house itself.",
    "The children played on the beach until the sun went down behind the hills.",
    "We waited in the kitchen for an hour while the storm passed over the town.",
]

LEAD_MS = 200  # silence added before the audio for the aligner
TRAIL_MS = 500  # and after it
DITHER = 4.0  # noise standard deviation, in 16-bit steps
MAX_FAILED_SENTENCES = 2


@dataclass
class Aligned:
    sentence: str
    words: list[TimedWord]  # ours
    reference: list[tuple[str, int, int]]  # pocketsphinx: word, start ms, end ms
    interpolated: list[bool]  # whether our word got no mark of its own
    duration_ms: int


@dataclass
class Figures:
    count: int
    median_ms: float
    p90_ms: float
    max_ms: float
    within_50: float
    within_100: float
    mean_signed_ms: float

    def __str__(self) -> str:
        return (
            f"n={self.count} median={self.median_ms:.0f} ms p90={self.p90_ms:.0f} ms "
            f"max={self.max_ms:.0f} ms within50={self.within_50:.0%} "
            f"within100={self.within_100:.0%} mean signed={self.mean_signed_ms:+.1f} ms"
        )


def figures(differences: Sequence[int]) -> Figures:
    absolute = sorted(abs(d) for d in differences)
    n = len(absolute)
    return Figures(
        count=n,
        median_ms=statistics.median(absolute),
        p90_ms=absolute[min(n - 1, int(0.9 * n))],
        max_ms=absolute[-1],
        within_50=sum(d <= 50 for d in absolute) / n,
        within_100=sum(d <= 100 for d in absolute) / n,
        mean_signed_ms=statistics.mean(differences),
    )


def agrees(f: Figures) -> bool:
    """The acceptance test for word starts (measured: median ~10 ms, p90 ~30 ms)."""
    return (
        f.median_ms <= 30
        and f.p90_ms <= 80
        and f.within_100 >= 0.90
        and abs(f.mean_signed_ms) <= 30
    )


def to_16k(pcm: bytes) -> bytes:
    """espeak's 22050 Hz PCM as padded, dithered 16 kHz PCM for pocketsphinx."""
    x = np.frombuffer(pcm, dtype=np.int16).astype(np.float64)
    n_out = round(len(x) * 16000 / 22050)
    y = np.fft.irfft(np.fft.rfft(x)[: n_out // 2 + 1], n_out) * (n_out / len(x))
    y = np.concatenate([np.zeros(LEAD_MS * 16), y, np.zeros(TRAIL_MS * 16)])
    y += np.random.default_rng(0).normal(0.0, DITHER, len(y))
    return np.clip(np.round(y), -32768, 32767).astype("<i2").tobytes()


def normalise(word: str) -> str:
    return re.sub(r"[^a-z']", "", word.lower())


@pytest.fixture(scope="module")
def aligned() -> tuple[list[Aligned], list[str]]:
    engine = EspeakEngine()
    decoder = Decoder(samprate=16000, beam=1e-80, wbeam=1e-60, pbeam=1e-80, loglevel="FATAL")
    results: list[Aligned] = []
    failed: list[str] = []
    for sentence in SENTENCES:
        result = engine.synthesize(
            SynthesisRequest(ssml=f"<speak>{sentence}\n</speak>", voice="en-us")
        )
        words = align_words(sentence, result.marks, result.duration_ms)
        names = [normalise(w.text) for w in words]
        decoder.set_align_text(" ".join(names))
        decoder.start_utt()
        decoder.process_raw(to_16k(result.pcm), full_utt=True)
        decoder.end_utt()
        reference = [
            (
                re.sub(r"\(\d+\)$", "", seg.word),
                seg.start_frame * 10 - LEAD_MS,
                (seg.end_frame + 1) * 10 - LEAD_MS,
            )
            for seg in decoder.seg()
            if seg.word not in ("<s>", "</s>", "<sil>", "[NOISE]")
        ]
        # a failed alignment gives no result or stops early ("does not match grammar")
        if decoder.hyp() is None or [r[0] for r in reference] != names:
            failed.append(sentence)
            continue
        marked = {m.char_start for m in result.marks}
        interpolated = [not any(a <= c < b for c in marked) for a, b in tokenize(sentence)]
        results.append(Aligned(sentence, words, reference, interpolated, result.duration_ms))
    return results, failed


def test_most_sentences_align(aligned: tuple[list[Aligned], list[str]]) -> None:
    results, failed = aligned
    print(f"\naligned {len(results)} of {len(SENTENCES)} sentences; failed: {failed}")
    assert len(failed) <= MAX_FAILED_SENTENCES


def test_word_starts_match_forced_alignment(aligned: tuple[list[Aligned], list[str]]) -> None:
    results, _ = aligned
    starts = [
        w.start_ms - ref[1] for a in results for w, ref in zip(a.words, a.reference, strict=True)
    ]
    merged = [
        w.start_ms - ref[1]
        for a in results
        for w, ref, interp in zip(a.words, a.reference, a.interpolated, strict=True)
        if interp
    ]
    f = figures(starts)
    print(f"\nword starts vs pocketsphinx: {f}")
    print(f"  of which interpolated (no mark of their own): {figures(merged)}")
    assert f.count >= 100
    assert len(merged) >= 5  # the merged-word path is exercised
    assert agrees(f), f
    assert figures(merged).median_ms <= 40


def test_word_ends_match_forced_alignment(aligned: tuple[list[Aligned], list[str]]) -> None:
    results, _ = aligned
    ends = [w.end_ms - ref[2] for a in results for w, ref in zip(a.words, a.reference, strict=True)]
    f = figures(ends)
    print(f"\nword ends vs pocketsphinx: {f}")
    assert f.median_ms <= 40 and f.within_100 >= 0.85, f


def test_check_catches_shifted_times(aligned: tuple[list[Aligned], list[str]]) -> None:
    results, _ = aligned
    for shift in (-200, 200):
        f = figures(
            [
                w.start_ms + shift - ref[1]
                for a in results
                for w, ref in zip(a.words, a.reference, strict=True)
            ]
        )
        print(f"\nshifted by {shift:+d} ms: {f}")
        assert not agrees(f)


def test_check_catches_evenly_spread_times(aligned: tuple[list[Aligned], list[str]]) -> None:
    results, _ = aligned
    differences = []
    for a in results:
        even = align_words(a.sentence, [], a.duration_ms)
        differences += [w.start_ms - ref[1] for w, ref in zip(even, a.reference, strict=True)]
    f = figures(differences)
    print(f"\nevenly spread: {f}")
    assert not agrees(f)
