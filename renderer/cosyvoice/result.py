"""From a finished task to a :class:`~renderer.engine.SynthesisResult` (pure, but ffmpeg
for compressed formats).

Audio (§2.4): PCM is used as it comes (16-bit little-endian mono); WAV loses its header
(only the first frame carries it); MP3 and Ogg Opus are decoded with the bundled ffmpeg.
Sentence audio positions are byte offsets into the stream: exact for PCM and WAV,
proportional to the decoded length for MP3 and Opus.

Word timestamps (§4): collected from every ``sentence-end`` (and from ``task-finished``
when no sentence had any); the indices are not trusted as character offsets, so each
word is found by its ``text`` in the segment text, moving forward from the previous
word. Times are milliseconds; a sentence whose first ``begin_time`` is below half of
the audio already received before it is taken as sentence-relative and shifted by that
offset, otherwise the times are taken as task-cumulative. Voices that return no words
still get captions: :func:`renderer.timing.align_words` shares each sentence's time out.

Pauses (plain-text mode): each ``<break>`` becomes silence at the boundary of the
sentence that starts after it (or, inside a sentence, between two words).

Truncation (§11): a sentence whose audio reaches the service's cap (33.44 s), is
shorter than 30% of what its text needs (LaTeX formulas left out: the service may skip
them, §7), or ends before its own last word, means the
service cut the audio: :class:`CosyVoiceTruncatedError` (retryable). So does a task
whose whole audio is under 30% of the text's expected length.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from renderer.cosyvoice.client import SentenceAudio, TaskOutcome
from renderer.cosyvoice.errors import CosyVoiceSentenceTooLongError, CosyVoiceTruncatedError
from renderer.cosyvoice.options import TaskSettings
from renderer.cosyvoice.text import (
    SENTENCE_CAP_MS,
    TaskPlan,
    expected_ms,
    to_display,
    without_formulas,
)
from renderer.engine import SynthesisResult, WordMark

#: audio under this share of the predicted length is taken as truncated
MIN_AUDIO_SHARE = 0.3
#: predictions below this are too uncertain to judge
MIN_JUDGED_MS = 800
#: how far (ms) a word may end after its sentence's audio
WORD_OVERRUN_MS = 250


@dataclass(frozen=True)
class SentenceSpan:
    index: int
    char_start: int
    char_end: int
    sample_start: int
    sample_end: int
    words: tuple[dict[str, Any], ...]


def _wav_data_offset(audio: bytes) -> int:
    """Where the samples of a RIFF/WAVE stream start (44 for the usual header)."""
    if audio[:4] != b"RIFF" or audio[8:12] != b"WAVE":
        return 0
    pos = 12
    while pos + 8 <= len(audio):
        chunk, size = audio[pos : pos + 4], int.from_bytes(audio[pos + 4 : pos + 8], "little")
        if chunk == b"data":
            return pos + 8
        pos += 8 + size + (size & 1)
    return min(44, len(audio))


def decode_stream(audio: bytes, fmt: str, sample_rate: int) -> tuple[bytes, Callable[[int], int]]:
    """PCM of the task's audio and a map from stream byte offsets to sample indexes."""
    if fmt == "pcm":
        return audio[: len(audio) // 2 * 2], lambda offset: offset // 2
    if fmt == "wav":
        start = _wav_data_offset(audio)
        pcm = audio[start:]
        return pcm[: len(pcm) // 2 * 2], lambda offset: max(0, offset - start) // 2
    from renderer.audio import decode_pcm

    suffix = {"mp3": ".mp3", "opus": ".ogg"}.get(fmt, ".bin")
    with tempfile.TemporaryDirectory(prefix="narrate-cosyvoice-") as tmp:
        path = Path(tmp) / f"audio{suffix}"
        path.write_bytes(audio)
        pcm = decode_pcm(path, sample_rate) if audio else b""
    total, samples = max(len(audio), 1), len(pcm) // 2
    return pcm, lambda offset: round(offset / total * samples)


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos].isspace():
        pos += 1
    return pos


def _match_loose(text: str, needle: str, start: int) -> int | None:
    """End of ``needle`` read in ``text`` from ``start``, whitespace ignored; else None."""
    pos = start
    for ch in needle:
        if ch.isspace():
            continue
        pos = _skip_space(text, pos)
        if pos >= len(text) or text[pos] != ch:
            return None
        pos += 1
    return pos


def locate_sentences(
    text: str, sentences: Sequence[SentenceAudio], sample_of: Callable[[int], int]
) -> list[SentenceSpan]:
    """Place the service's sentences on the segment text, in order."""
    spans: list[SentenceSpan] = []
    cursor = 0
    for number, sentence in enumerate(sentences):
        start = _skip_space(text, cursor)
        end: int | None = None
        if sentence.original_text and sentence.original_text.strip():
            end = _match_loose(text, sentence.original_text, start)
        if end is None:
            if number == len(sentences) - 1:
                end = len(text)
            else:  # unknown cut: as far as its words reach
                end = _words_end(text, start, sentence.words) or start
        spans.append(
            SentenceSpan(
                sentence.index,
                start,
                end,
                sample_of(sentence.audio_start),
                sample_of(sentence.audio_end),
                sentence.words,
            )
        )
        cursor = end
    return spans


def _words_end(text: str, start: int, words: Sequence[dict[str, Any]]) -> int | None:
    end = None
    cursor = start
    for word in words:
        found = _find_word(text, str(word.get("text", "")), cursor, len(text))
        if found is not None:
            end = cursor = found[1]
    return end


def _find_word(text: str, word: str, cursor: int, limit: int) -> tuple[int, int] | None:
    word = word.strip()
    if not word:
        return None
    pos = text.find(word, cursor, min(len(text), limit + len(word)))
    if pos < 0:
        return None
    return pos, pos + len(word)


def _ms(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) else None


def word_marks(
    text: str,
    spans: Sequence[SentenceSpan],
    sample_rate: int,
    finished_words: Sequence[dict[str, Any]] = (),
) -> list[WordMark]:
    """Word marks on the segment timeline from the sentences' words (see module doc)."""
    marks: list[WordMark] = []
    if not any(span.words for span in spans) and finished_words:
        groups: list[tuple[int, int, int, Sequence[dict[str, Any]]]] = [
            (0, len(text), 0, finished_words)
        ]
    else:
        groups = [
            (s.char_start, s.char_end, s.sample_start * 1000 // sample_rate, s.words) for s in spans
        ]
    for char_start, char_end, offset_ms, words in groups:
        begins = [b for w in words if (b := _ms(w.get("begin_time"))) is not None]
        shift = offset_ms if begins and _sentence_relative(min(begins), offset_ms) else 0
        cursor = char_start
        for word in words:
            begin, end = _ms(word.get("begin_time")), _ms(word.get("end_time"))
            found = _find_word(text, str(word.get("text", "")), cursor, max(char_end, cursor) + 20)
            if begin is None or found is None:
                continue
            marks.append(
                WordMark(found[0], found[1], begin + shift, None if end is None else end + shift)
            )
            cursor = found[1]
    return marks


def insert_breaks(
    pcm: bytes,
    sample_rate: int,
    text: str,
    spans: Sequence[SentenceSpan],
    marks: Sequence[WordMark],
    breaks: Sequence[tuple[int, int]],
) -> tuple[bytes, list[WordMark]]:
    """Insert each ``(offset, ms)`` pause as silence where the text after it begins."""
    insertions: list[tuple[int, int]] = []  # (sample position, samples)
    for offset, ms in breaks:
        first = _skip_space(text, offset)
        at: int | None = None
        for span in spans:
            if offset <= span.char_start <= first and span.char_start > 0:
                at = span.sample_start
                break
        if at is None:
            after = [m for m in marks if m.char_start >= offset]
            before = [m for m in marks if m.char_end <= offset]
            if after and before:
                gap_from = max((m.end_ms or m.start_ms) for m in before)
                gap_to = min(m.start_ms for m in after)
                at = (min(gap_from, gap_to) + gap_to) // 2 * sample_rate // 1000
        if at is not None and ms > 0:
            insertions.append((min(at, len(pcm) // 2), ms * sample_rate // 1000))
    if not insertions:
        return pcm, list(marks)
    insertions.sort()
    out = bytearray()
    prev = 0
    for at, count in insertions:
        out += pcm[prev * 2 : at * 2]
        out += bytes(count * 2)
        prev = at
    out += pcm[prev * 2 :]

    def shifted(ms: int, *, is_end: bool) -> int:
        """A time after the insertions before it (a word ending at a pause stays put)."""
        sample = ms * sample_rate // 1000
        added = sum(n for at, n in insertions if (at < sample if is_end else at <= sample))
        return ms + added * 1000 // sample_rate

    moved = []
    for m in marks:
        start = shifted(m.start_ms, is_end=False)
        end = None if m.end_ms is None else max(start, shifted(m.end_ms, is_end=True))
        moved.append(WordMark(m.char_start, m.char_end, start, end))
    return bytes(out), moved


def check_truncation(
    text: str,
    spans: Sequence[SentenceSpan],
    marks_by_span: dict[int, int],
    total_samples: int,
    sample_rate: int,
    rate: float,
    task_id: str,
    *,
    exact_positions: bool = True,
    can_cut: bool = True,
) -> None:
    """Raise :class:`CosyVoiceTruncatedError` when the audio is shorter than its text.

    ``exact_positions``: sentence audio boundaries are exact (PCM, WAV). For MP3/Opus they
    are estimated from byte counts (Opus spends few bytes on silence), so only the
    whole-task check runs. ``can_cut``: narrate sent the text sentence by sentence and
    can cut long ones; in SSML mode (one message) a capped sentence cannot be fixed by
    retrying and fails for good.
    """
    for span in spans if exact_positions else ():
        duration = (span.sample_end - span.sample_start) * 1000 // sample_rate
        said = text[span.char_start : span.char_end]
        expected = expected_ms(without_formulas(said), rate)
        where = f"sentence {span.index} of task {task_id} ({said.strip()[:40]!r})"
        if duration >= SENTENCE_CAP_MS - 20 and not can_cut:
            raise CosyVoiceSentenceTooLongError(
                f"CosyVoice cut the audio of {where} at its per-sentence cap ({duration} ms)",
                hint="in SSML mode narrate cannot split the sentence: add punctuation to it "
                "in the manuscript, or render with --option ssml=off",
            )
        if duration >= SENTENCE_CAP_MS - 20:
            raise CosyVoiceTruncatedError(
                f"CosyVoice cut the audio of {where} at its per-sentence cap ({duration} ms)",
                hint="the sentence is too long to speak at once; narrate retries it, and "
                "cuts long sentences at clause boundaries",
            )
        if expected >= MIN_JUDGED_MS and duration < MIN_AUDIO_SHARE * expected:
            raise CosyVoiceTruncatedError(
                f"CosyVoice returned {duration} ms of audio for {where}, which needs about "
                f"{expected} ms",
                hint="the audio was truncated; the segment is retried",
            )
        last_end = marks_by_span.get(span.index)
        end_ms = span.sample_end * 1000 // sample_rate
        if last_end is not None and last_end > end_ms + WORD_OVERRUN_MS:
            raise CosyVoiceTruncatedError(
                f"the audio of {where} stops at {end_ms} ms but its words run to {last_end} ms",
                hint="the audio was truncated; the segment is retried",
            )
    expected = expected_ms(without_formulas(text), rate)
    duration = total_samples * 1000 // sample_rate
    if expected >= MIN_JUDGED_MS and duration < MIN_AUDIO_SHARE * expected:
        raise CosyVoiceTruncatedError(
            f"CosyVoice returned {duration} ms of audio for task {task_id}, whose text needs "
            f"about {expected} ms",
            hint="the audio was truncated; the segment is retried",
        )


#: how far before its sentence's audio a task-cumulative first word may start
TIME_BASE_SLACK_MS = 50


def _sentence_relative(first_begin_ms: int, offset_ms: int) -> bool:
    """Whether a sentence's word times count from the sentence rather than the task.

    Task-cumulative times of a sentence's first word are never much below the audio that
    came before it; sentence-relative ones start near 0 (unconfirmed which the service
    uses, reference §4, so both are read).
    """
    return offset_ms > TIME_BASE_SLACK_MS and first_begin_ms < offset_ms - TIME_BASE_SLACK_MS


def _last_word_end(span: SentenceSpan, sample_rate: int) -> int | None:
    ends = [e for w in span.words if (e := _ms(w.get("end_time"))) is not None]
    if not ends:
        return None
    offset_ms = span.sample_start * 1000 // sample_rate
    begins = [b for w in span.words if (b := _ms(w.get("begin_time"))) is not None]
    relative = bool(begins) and _sentence_relative(min(begins), offset_ms)
    return max(ends) + (offset_ms if relative else 0)


def assemble(plan: TaskPlan, settings: TaskSettings, outcome: TaskOutcome) -> SynthesisResult:
    """The segment's PCM, word marks and billed characters from a finished task."""
    rate = settings.sample_rate
    pcm, sample_of = decode_stream(outcome.audio, settings.format, rate)
    spans = locate_sentences(plan.text, outcome.sentences, sample_of)
    ends = {s.index: e for s in spans if (e := _last_word_end(s, rate)) is not None}
    check_truncation(
        plan.text,
        spans,
        ends,
        len(pcm) // 2,
        rate,
        settings.rate,
        outcome.task_id,
        exact_positions=settings.format in ("pcm", "wav"),
        can_cut=not plan.ssml_mode,
    )
    marks = word_marks(plan.text, spans, rate, outcome.finished_words)
    if plan.breaks:
        pcm, marks = insert_breaks(pcm, rate, plan.text, spans, marks, plan.breaks)
    if plan.subs:  # marks index the said text; the pipeline wants the segment text
        marks = [
            WordMark(*to_display(plan.subs, m.char_start, m.char_end), m.start_ms, m.end_ms)
            for m in marks
        ]
    billed = outcome.usage if outcome.usage is not None else plan.billed
    return SynthesisResult(pcm, rate, tuple(marks), billed_chars=billed)
