"""Planning: a document cut into chapters of SSML segments, and how to speak them.

Pure: :func:`plan_document` segments an annotated document for an engine's policy, and
:func:`segment_hash` keys a segment's audio by everything it depends on (same hash, same
audio), which is what makes re-rendering reuse earlier work.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

from renderer.engine import SynthesisRequest
from ssml.document import Document
from ssml.segment import Segment as PlannedSegment
from ssml.segment import SegmentPolicy, segment_chapter


@dataclass(frozen=True)
class Voicing:
    """How to speak: engine, voice and the engine-neutral prosody multipliers."""

    engine: str
    voice: str
    rate: float = 1.0
    pitch: float = 1.0
    volume: float = 1.0
    model: str | None = None
    options: tuple[tuple[str, str], ...] = ()

    def request(self, ssml: str) -> SynthesisRequest:
        """The engine request speaking ``ssml`` this way."""
        return SynthesisRequest(
            ssml=ssml,
            voice=self.voice,
            rate=self.rate,
            pitch=self.pitch,
            volume=self.volume,
            model=self.model,
            options=self.options,
        )


@dataclass(frozen=True)
class PlannedChapter:
    index: int  # 1-based number in the document (kept when chapters are selected)
    title: str
    text: str
    segments: tuple[PlannedSegment, ...]


def plan_document(document: Document, policy: SegmentPolicy) -> list[PlannedChapter]:
    """Segment every chapter of ``document`` (pure)."""
    return [
        PlannedChapter(
            chapter.number if chapter.number is not None else position,
            chapter.title,
            chapter.text,
            tuple(segment_chapter(chapter, policy)),
        )
        for position, chapter in enumerate(document.chapters, start=1)
    ]


def segment_hash(voicing: Voicing, text: str, ssml: str) -> str:
    """The content hash that keys a segment's audio: same hash, same audio."""
    payload = json.dumps({"text": text, "ssml": ssml, **asdict(voicing)}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()
