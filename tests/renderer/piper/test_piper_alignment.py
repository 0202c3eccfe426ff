"""Piper's word times match the audio, per the same independent forced aligner as espeak-ng.

Two checks, as for espeak (tests/renderer/test_alignment.py and
tests/jobs/test_chapter_alignment.py): a multi-paragraph text synthesized as one request
(pauses between paragraphs, several sentences each), and a chapter cut into several
segments, synthesized, trimmed and stitched by the job runner, with the words on the
chapter timeline. Each sentence's window is cut from the audio by our word times (plus
margins, never reaching into the neighbours' speech), pocketsphinx force-aligns the
window to its words, and the word starts must agree: median error at most 50 ms, 90th
percentile at most 150 ms. Shifted times must fail the same check. ``pytest -s`` prints
the figures.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from pocketsphinx import Decoder
from sqlalchemy import select

from jobs.creation import create_job
from jobs.db import make_engine, session_factory, transaction, upgrade
from jobs.export import chapter_words
from jobs.models import Chapter, Segment
from jobs.planning import Voicing, plan_document
from jobs.stitching import stitch_chapter
from jobs.storage import Storage
from jobs.synthesis import synthesize_segment
from renderer.audio import decode_pcm
from renderer.piper.engine import PiperEngine
from renderer.stitch import AudioFormat
from renderer.timing import TimedWord, align_words
from ssml.document import Chapter as DocChapter
from ssml.document import Document
from ssml.segment import SegmentPolicy
from tests.jobs.test_chapter_alignment import RATE, align, normalise
from tests.renderer.piper.conftest import VOICE, request

PARAGRAPHS = (
    "The old lighthouse keeper climbed the stairs every evening at sunset. "
    "Nobody in the village could remember a winter as cold as that one.",
    "She packed her bags, locked the door, and walked down to the station in the rain. "
    "After dinner they sat by the fire and talked about the journey ahead.",
    "The river was wide and slow, and the boats moved along it like sleepy animals. "
    "It was late when the train finally arrived, and the platform was almost empty.",
    "Some of the books on the top shelf were older than the house itself. "
    "We waited in the kitchen for an hour while the storm passed over the town.",
)
MARGIN_MS = 300
MEDIAN_MS = 50
P90_MS = 150


def resample(pcm: bytes, rate_hz: int) -> bytes:
    """16-bit PCM at ``rate_hz`` as 16 kHz (FFT, band-limited)."""
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    n_out = round(len(x) * RATE / rate_hz)
    y = np.fft.irfft(np.fft.rfft(x)[: n_out // 2 + 1], n_out) * (n_out / len(x))
    return np.clip(np.round(y), -32768, 32767).astype("<i2").tobytes()


def differences(
    pcm16k: bytes, words: Sequence[TimedWord], shift_ms: int = 0, skipped: list[str] | None = None
) -> tuple[list[int], int]:
    """(our start - aligner's start per word, sentences that did not align): each
    sentence's window is cut from the 16 kHz audio by our (shifted) times. A sentence
    with a word the aligner's dictionary lacks is left out (added to ``skipped``)."""
    decoder = Decoder(samprate=RATE, beam=1e-80, wbeam=1e-60, pbeam=1e-80, loglevel="FATAL")
    sentences: list[list[TimedWord]] = [[]]
    for word in words:
        sentences[-1].append(word)
        if word.text.endswith("."):
            sentences.append([])
    sentences = [s for s in sentences if s]
    out: list[int] = []
    failed = 0
    bounds = [0] + [s[-1].end_ms + shift_ms for s in sentences[:-1]]
    for number, sentence in enumerate(sentences):
        start_ms = max(bounds[number], sentence[0].start_ms + shift_ms - MARGIN_MS, 0)
        end_ms = sentence[-1].end_ms + shift_ms + MARGIN_MS
        if number + 1 < len(sentences):
            end_ms = min(end_ms, sentences[number + 1][0].start_ms + shift_ms)
        window = pcm16k[start_ms * RATE // 1000 * 2 : end_ms * RATE // 1000 * 2]
        names = [normalise(w.text) for w in sentence]
        if not all(names) or any(decoder.lookup_word(n) is None for n in names):
            if skipped is not None:
                skipped.append(" ".join(w.text for w in sentence))
            continue
        starts = align(decoder, window, names)
        if starts is None:
            failed += 1
            continue
        out += [
            w.start_ms + shift_ms - (start_ms + s) for w, s in zip(sentence, starts, strict=True)
        ]
    return out, failed


def figures(values: Sequence[int]) -> tuple[float, int]:
    absolute = sorted(abs(v) for v in values)
    return statistics.median(absolute), absolute[min(len(absolute) - 1, int(0.9 * len(absolute)))]


@pytest.fixture(scope="module")
def paragraphs(piper: PiperEngine) -> tuple[bytes, list[TimedWord]]:
    """The four paragraphs as one request: 16 kHz audio and our word times."""
    result = piper.synthesize(request(*PARAGRAPHS))
    text = "\n\n".join(PARAGRAPHS)
    words = align_words(text, result.marks, result.duration_ms)
    return resample(result.pcm, result.sample_rate_hz), words


def test_multi_paragraph_word_starts_match_forced_alignment(
    paragraphs: tuple[bytes, list[TimedWord]],
) -> None:
    pcm, words = paragraphs
    found, failed = differences(pcm, words)
    median, p90 = figures(found)
    print(f"\npiper, one request of 4 paragraphs: {len(found)} words, median {median} ms, "
          f"p90 {p90} ms, failed sentences {failed}")  # fmt: skip
    assert failed <= 1 and len(found) >= 90
    assert median <= MEDIAN_MS and p90 <= P90_MS


@pytest.mark.parametrize("shift_ms", [250, -250])
def test_the_check_notices_shifted_times(
    paragraphs: tuple[bytes, list[TimedWord]], shift_ms: int
) -> None:
    pcm, words = paragraphs
    found, failed = differences(pcm, words, shift_ms)
    assert failed > 2 or figures(found)[0] > MEDIAN_MS


def test_stitched_chapter_caption_times_match_forced_alignment(
    tmp_path: Path, piper: PiperEngine
) -> None:
    url = f"sqlite:///{tmp_path / 'narrate.db'}"
    upgrade(url)
    factory = session_factory(make_engine(url))
    storage = Storage(tmp_path / "storage")
    document = Document(
        chapters=(DocChapter("One", PARAGRAPHS, heading="Chapter 1"),), format="markdown"
    )
    source = tmp_path / "doc.md"
    source.write_text("x")
    job_id = create_job(
        factory,
        storage,
        input_path=source,
        document=document,
        plan=plan_document(document, SegmentPolicy(max_chars=160, dialect=piper.ssml_dialect)),
        voicing=Voicing("piper", VOICE),
        audio=AudioFormat("wav", sample_rate_hz=RATE),
    ).job_id
    with transaction(factory) as session:
        segment_ids = session.scalars(select(Segment.id).where(Segment.job_id == job_id)).all()
        chapter = session.scalars(select(Chapter).where(Chapter.job_id == job_id)).one()
    assert len(segment_ids) >= 5  # heading + several body segments: offsets matter
    for segment_id in segment_ids:
        synthesize_segment(factory, storage, lambda _name: piper, segment_id)
    stitch_chapter(factory, storage, chapter.id)
    with transaction(factory) as session:
        audio_key = session.get_one(Chapter, chapter.id).audio_key
    pcm = decode_pcm(storage.path(audio_key or ""), RATE)
    words = chapter_words(factory, chapter.id)[2:]  # after the spoken heading
    found, failed = differences(pcm, words)
    median, p90 = figures(found)
    print(f"\npiper, stitched chapter of {len(segment_ids)} segments: {len(found)} words, "
          f"median {median} ms, p90 {p90} ms, failed sentences {failed}")  # fmt: skip
    assert failed <= 1 and len(found) >= 90
    assert median <= MEDIAN_MS and p90 <= P90_MS
