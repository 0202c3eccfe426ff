"""The stub engine: deterministic audio and exact word marks, for tests and dry runs.

Like dramatiq's stub broker, it ships inside the package so that tests exercise the real
pipeline (database, tasks, stitching, captions) without a real voice. Each word becomes a
tone whose length follows its character count and the rate; words are separated by short
silences, so word times are known exactly.

Fault injection, for tests of failure handling: a segment whose text contains
``STUB-FATAL`` fails with a fatal error; one containing ``STUB-TRANSIENT`` fails with a
retryable error on its first ``STUB_TRANSIENT_FAILURES`` attempts in a process.

Option ``latency_ms`` (``--option latency_ms=800``) makes each request take that long,
like a remote provider, so tests can kill workers in the middle of a segment.
"""

from __future__ import annotations

import math
import time
from array import array
from collections import Counter
from pathlib import Path

from narrate.errors import (
    EngineUnavailableError,
    SynthesisFailedError,
    UsageError,
    VoiceNotFoundError,
)
from renderer.engine import (
    Engine,
    EngineSetup,
    EngineSpec,
    PriceList,
    SynthesisRequest,
    SynthesisResult,
    Voice,
    WordMark,
    validate_prosody,
)
from renderer.timing import tokenize
from ssml.build import text_content
from ssml.dialects import ESPEAK

SAMPLE_RATE_HZ = 22050
MS_PER_CHAR = 60
GAP_MS = 40
STUB_TRANSIENT_FAILURES = 2
_attempts: Counter[str] = Counter()


def _create(setup: EngineSetup) -> Engine:
    return StubEngine()


#: the engine's declaration (see renderer.engines); it reads espeak's dialect
SPEC = EngineSpec(
    name="stub",
    display_name="stub",
    factory=_create,
    dialect=ESPEAK,
    max_segment_chars=400,
    chars_per_audio_s=14.0,
    cpu_s_per_audio_s=0.002,
)


class StubEngine:
    spec = SPEC
    name = SPEC.name
    ssml_dialect = SPEC.dialect.name
    default_voice = "stub"
    max_segment_chars = SPEC.max_segment_chars

    def voices(self) -> list[Voice]:
        return [
            Voice(
                id="stub",
                name="Stub tones",
                languages=("en", "zh"),
                sample_rate_hz=SAMPLE_RATE_HZ,
                licence="GPL-3.0-or-later (narrate's test tones)",
            )
        ]

    def complete(self, request: SynthesisRequest) -> SynthesisRequest:
        """Nothing implicit shapes the audio: the request as it is (checked)."""
        self.check(request)
        return request

    def billed_chars(self, request: SynthesisRequest) -> int | None:
        """It runs here: nothing is billed."""
        return None

    def price_list(self, request: SynthesisRequest, prices: Path | None) -> PriceList | None:
        """It runs here: nothing is billed."""
        return None

    def check(self, request: SynthesisRequest) -> None:
        validate_prosody(request.rate, request.pitch, request.volume)
        if request.voice != "stub":
            raise VoiceNotFoundError(
                f"the stub engine has no voice {request.voice!r}", hint="its only voice is 'stub'"
            )
        _latency_s(request)

    def synthesize(self, request: SynthesisRequest) -> SynthesisResult:
        self.check(request)
        text = text_content(request.ssml)
        if "STUB-FATAL" in text:
            raise SynthesisFailedError("stub engine: fatal fault requested by the text")
        if "STUB-TRANSIENT" in text:
            _attempts[text] += 1
            if _attempts[text] <= STUB_TRANSIENT_FAILURES:
                raise EngineUnavailableError("stub engine: transient fault requested")
        time.sleep(_latency_s(request))
        samples = array("h")
        marks = []
        for start, end in tokenize(text):
            begin_ms = len(samples) * 1000 // SAMPLE_RATE_HZ
            length_ms = int(MS_PER_CHAR * (end - start) / request.rate)
            samples.extend(_tone(length_ms, 220 * request.pitch, request.volume))
            marks.append(WordMark(start, end, begin_ms, begin_ms + length_ms))
            samples.extend([0] * (GAP_MS * SAMPLE_RATE_HZ // 1000))
        return SynthesisResult(samples.tobytes(), SAMPLE_RATE_HZ, tuple(marks))


def _tone(length_ms: int, frequency_hz: float, volume: float) -> array[int]:
    count = length_ms * SAMPLE_RATE_HZ // 1000
    amplitude = min(32767.0, 8000 * volume)
    step = 2 * math.pi * frequency_hz / SAMPLE_RATE_HZ
    return array("h", (int(amplitude * math.sin(step * i)) for i in range(count)))


def _latency_s(request: SynthesisRequest) -> float:
    for name, value in request.options:
        if name != "latency_ms":
            raise UsageError(f"the stub engine has no option {name!r}", hint="it takes latency_ms")
        if not value.isdigit() or int(value) > 60_000:
            raise UsageError(
                f"latency_ms={value!r} is not a whole number of milliseconds up to 60000"
            )
        return int(value) / 1000
    return 0.0
