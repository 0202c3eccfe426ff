"""What a render will cost against what is already rendered: segments, characters and
billed characters that are new, per chapter (``narrate plan``, ``narrate estimate``, and
``render``/``submit`` before they start).

A segment is new when no audio is stored under its content hash (:func:`segment_hash`,
the same key that makes a render reuse earlier work); a chapter is changed when it has a
new segment (it will be stitched again). Nothing is sent anywhere: billed characters are
counted as the engine's provider counts them (:meth:`Engine.billed_chars`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from jobs.planning import PlannedChapter, Voicing, segment_hash
from jobs.storage import Storage
from renderer.engine import Engine


@dataclass(frozen=True)
class ChapterCost:
    index: int
    title: str
    segments: int
    segments_new: int
    characters: int
    characters_new: int
    #: None for an engine that does not bill
    billed_characters: int | None
    billed_characters_new: int | None


@dataclass(frozen=True)
class EditCost:
    """The cost of rendering a plan now, and of its part not rendered yet."""

    segments: int
    segments_new: int
    characters: int
    characters_new: int
    billed_characters: int | None
    billed_characters_new: int | None
    chapters: int
    #: chapters with at least one new segment: they will be stitched again
    chapters_changed: int
    per_chapter: tuple[ChapterCost, ...]

    def summary(self) -> str:
        """``3 of 285 segments new (1,204 of 178,343 characters), 1 of 13 chapters``."""
        billed = (
            f", {self.billed_characters_new:,} billed characters"
            if self.billed_characters_new is not None
            else ""
        )
        return (
            f"{self.segments_new} of {self.segments} segments new ({self.characters_new:,} of "
            f"{self.characters:,} characters{billed}), {self.chapters_changed} of "
            f"{self.chapters} chapters to stitch"
        )


def edit_cost(
    plan: Sequence[PlannedChapter], voicing: Voicing, engine: Engine, storage: Storage
) -> EditCost:
    """The cost of ``plan`` spoken with ``voicing`` (a completed one, as a job stores it)
    against the audio in ``storage``."""
    bills = engine.spec.billing
    rows = []
    for chapter in plan:
        segments = new = chars = chars_new = billed = billed_new = 0
        for segment in chapter.segments:
            fresh = not storage.has_segment(segment_hash(voicing, segment.text, segment.ssml))
            cost = engine.billed_chars(voicing.request(segment.ssml)) if bills else None
            segments += 1
            new += fresh
            chars += segment.chars
            chars_new += segment.chars if fresh else 0
            billed += cost or 0
            billed_new += (cost or 0) if fresh else 0
        rows.append(
            ChapterCost(
                chapter.index,
                chapter.title,
                segments,
                new,
                chars,
                chars_new,
                billed if bills else None,
                billed_new if bills else None,
            )
        )
    return EditCost(
        segments=sum(r.segments for r in rows),
        segments_new=sum(r.segments_new for r in rows),
        characters=sum(r.characters for r in rows),
        characters_new=sum(r.characters_new for r in rows),
        billed_characters=sum(r.billed_characters or 0 for r in rows) if bills else None,
        billed_characters_new=sum(r.billed_characters_new or 0 for r in rows) if bills else None,
        chapters=len(rows),
        chapters_changed=sum(r.segments_new > 0 for r in rows),
        per_chapter=tuple(rows),
    )
