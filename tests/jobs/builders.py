"""Building stub-engine jobs straight from plans, for the job-runner tests."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jobs.creation import create_job
from jobs.db import Factory
from jobs.planning import PlannedChapter, Voicing
from jobs.storage import Storage
from renderer.stitch import AudioFormat
from ssml.document import Document
from ssml.segment import Segment as PlannedSegment

STUB = Voicing("stub", "stub")


def planned_chapter(number: int, texts: Sequence[str]) -> PlannedChapter:
    """Chapter ``number`` made of exactly these segments, 300 ms apart."""
    segments, start = [], 0
    for index, text in enumerate(texts):
        pause = 300 if index < len(texts) - 1 else 0
        ssml = f"<speak>{text}</speak>"
        segments.append(PlannedSegment(index, text, start, start + len(text), ssml, pause))
        start += len(text) + 1
    return PlannedChapter(number, f"Chapter {number}", " ".join(texts), tuple(segments))


def store_job(
    factory: Factory,
    storage: Storage,
    tmp_path: Path,
    plan: Sequence[PlannedChapter],
    *,
    title: str | None = None,
    **job: Any,
) -> str:
    """Store ``plan`` as a stub-engine WAV job (``job``: priority, allow_partial,
    distributed); returns its id."""
    source = tmp_path / "doc.md"
    source.write_text("# doc\n")
    return create_job(
        factory,
        storage,
        input_path=source,
        document=Document(chapters=(), title=title, format="markdown"),
        plan=plan,
        voicing=STUB,
        audio=AudioFormat("wav"),
        **job,
    ).job_id
