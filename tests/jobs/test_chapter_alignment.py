"""Caption word times on the stitched chapter match the audio, per an independent aligner.

The engine-level check (tests/renderer/test_alignment.py) shows espeak's word times are
right within one segment. This one checks what a listener gets: words placed on the
chapter timeline across several segments, paragraph breaks and heading pauses. Each
sentence's window is cut from the stitched file by our caption times (plus margins),
pocketsphinx force-aligns it, and the word starts must agree.
"""

from __future__ import annotations

import re
import statistics
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
from renderer.engines import get_engine
from renderer.stitch import AudioFormat
from renderer.timing import TimedWord
from ssml.document import Chapter as DocChapter
from ssml.document import Document
from ssml.segment import SegmentPolicy

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
RATE = 16000
MARGIN_MS = 300
LEAD_MS = 200  # silence the aligner gets before the window


def normalise(word: str) -> str:
    return re.sub(r"[^a-z']", "", word.lower())


def align(decoder: Decoder, pcm: bytes, names: list[str]) -> list[int] | None:
    """Word start times (ms into ``pcm``) by forced alignment, or None if it fails."""
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    samples = np.concatenate([np.zeros(LEAD_MS * RATE // 1000), samples, np.zeros(RATE // 2)])
    samples += np.random.default_rng(0).normal(0.0, 4.0, len(samples))  # no digital zero
    decoder.set_align_text(" ".join(names))
    decoder.start_utt()
    decoder.process_raw(np.clip(samples, -32768, 32767).astype("<i2").tobytes(), full_utt=True)
    decoder.end_utt()
    found = [
        (re.sub(r"\(\d+\)$", "", s.word), s.start_frame * 10 - LEAD_MS)
        for s in decoder.seg()
        if s.word not in ("<s>", "</s>", "<sil>", "[NOISE]")
    ]
    if decoder.hyp() is None or [w for w, _ in found] != names:
        return None
    return [start for _, start in found]


def test_chapter_caption_times_match_forced_alignment(tmp_path: Path) -> None:
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
        plan=plan_document(document, SegmentPolicy(max_chars=160)),
        voicing=Voicing("espeak", "en-us"),
        audio=AudioFormat("wav", sample_rate_hz=RATE),
    ).job_id
    with transaction(factory) as session:
        segment_ids = session.scalars(select(Segment.id).where(Segment.job_id == job_id)).all()
        chapter = session.scalars(select(Chapter).where(Chapter.job_id == job_id)).one()
    assert len(segment_ids) >= 5  # heading + several body segments: offsets matter
    for segment_id in segment_ids:
        synthesize_segment(factory, storage, get_engine, segment_id)
    stitch_chapter(factory, storage, chapter.id)
    with transaction(factory) as session:
        audio_key = session.get_one(Chapter, chapter.id).audio_key
    pcm = decode_pcm(storage.path(audio_key or ""), RATE)
    words = chapter_words(factory, chapter.id)[2:]  # after the spoken heading

    decoder = Decoder(samprate=RATE, beam=1e-80, wbeam=1e-60, pbeam=1e-80, loglevel="FATAL")
    differences: list[int] = []
    failed = 0
    sentences: list[list[TimedWord]] = [[]]
    for word in words:
        sentences[-1].append(word)
        if word.text.endswith("."):
            sentences.append([])
    bounds = [0] + [s[-1].end_ms for s in sentences[:-1]]
    for number, sentence in enumerate(s for s in sentences if s):
        # the window holds this sentence only: never the neighbours' speech
        start_ms = max(bounds[number], sentence[0].start_ms - MARGIN_MS)
        following = sentences[number + 1][:1]
        end_ms = sentence[-1].end_ms + MARGIN_MS
        if following:
            end_ms = min(end_ms, following[0].start_ms)
        window = pcm[start_ms * RATE // 1000 * 2 : end_ms * RATE // 1000 * 2]
        starts = align(decoder, window, [normalise(w.text) for w in sentence])
        if starts is None:
            print("not aligned:", " ".join(w.text for w in sentence))
            failed += 1
        else:
            differences += [
                w.start_ms - (start_ms + s) for w, s in zip(sentence, starts, strict=True)
            ]
    absolute = sorted(abs(d) for d in differences)
    median = statistics.median(absolute)
    within_100 = sum(d <= 100 for d in absolute) / len(absolute)
    print(f"chapter alignment: {len(absolute)} words, median {median} ms, "
          f"within 100 ms {within_100:.0%}, failed sentences {failed}")  # fmt: skip
    assert failed <= 1
    assert len(absolute) >= 90
    assert median <= 40
    assert within_100 >= 0.9


@pytest.mark.parametrize("shift_ms", [250, -250])
def test_the_check_notices_a_shifted_timeline(tmp_path: Path, shift_ms: int) -> None:
    """Sanity check of the method: a window cut with shifted times does not agree."""
    engine = get_engine("espeak")
    from renderer.engine import SynthesisRequest
    from renderer.timing import align_words

    text = PARAGRAPHS[0].split(". ")[0] + "."
    result = engine.synthesize(SynthesisRequest(ssml=f"<speak>{text}\n</speak>", voice="en-us"))
    words = align_words(text, result.marks, result.duration_ms)
    pcm16 = np.frombuffer(result.pcm, dtype="<i2").astype(np.float64)
    n_out = round(len(pcm16) * RATE / 22050)
    y = np.fft.irfft(np.fft.rfft(pcm16)[: n_out // 2 + 1], n_out) * (n_out / len(pcm16))
    pad = np.zeros(MARGIN_MS * RATE // 1000)
    audio = np.concatenate([pad, y, pad]).astype("<i2").tobytes()
    decoder = Decoder(samprate=RATE, beam=1e-80, wbeam=1e-60, pbeam=1e-80, loglevel="FATAL")
    starts = align(decoder, audio, [normalise(w.text) for w in words])
    assert starts is not None
    honest = [w.start_ms + MARGIN_MS - s for w, s in zip(words, starts, strict=True)]
    shifted = [d + shift_ms for d in honest]
    assert statistics.median(abs(d) for d in honest) <= 40
    assert statistics.median(abs(d) for d in shifted) > 150
