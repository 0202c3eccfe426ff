"""``manifest.json``: what a finished render wrote, typed here and serialised in one place.

A folder with a manifest holds a complete result; one without it does not (the manifest is
written last). Keys whose value is None or empty are left out, so a plain render's
manifest stays as small as it always was.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jobs.serialize import to_data


@dataclass(frozen=True)
class Captions:
    vtt: str
    srt: str


@dataclass(frozen=True)
class FileEntry:
    """One file of a chapter that was split (ACX: at most 120 minutes a file)."""

    audio: str
    captions: Captions
    start_ms: int
    duration_ms: int


@dataclass(frozen=True)
class CaptionWarningEntry:
    """A caption rule some cues of a chapter's file break because the speech left no way
    to keep it (renderer/caption_check.py): how many cues, and the worst one."""

    captions: str  # the WebVTT file the cue numbers refer to (the SRT numbers them alike)
    rule: str
    profile: str
    cues: int
    total: int
    limit: float | int | None
    worst: float | int | str
    cue: int
    start_ms: int
    message: str


@dataclass(frozen=True)
class ChapterEntry:
    index: int
    title: str
    #: None when the book is one m4b (the chapter's audio is inside it)
    audio: str | None
    captions: Captions
    duration_ms: int
    words: int
    #: a partial job: silence where a failed segment would have been
    gaps: list[dict[str, object]] | None = None
    files: list[FileEntry] | None = None
    caption_warnings: list[CaptionWarningEntry] | None = None


@dataclass(frozen=True)
class MasterChapter:
    index: int
    passed: bool
    measures: dict[str, object]
    files: list[dict[str, object]] | None = None


@dataclass(frozen=True)
class MasterEntry:
    profile: str
    passed: bool
    report: str
    chapters: list[MasterChapter] = field(default_factory=list)
    #: the m4b's own measures and rules, when the book is one file
    book: dict[str, object] | None = None


@dataclass(frozen=True)
class BookChapterEntry:
    index: int
    title: str
    start_ms: int


@dataclass(frozen=True)
class BookEntry:
    audio: str
    duration_ms: int
    captions: str
    chapters: list[BookChapterEntry]


@dataclass(frozen=True)
class Manifest:
    job: str
    input: str
    engine: str
    voice: str
    format: str | None
    chapters: list[ChapterEntry]
    title: str | None = None
    authors: list[str] | None = None
    master: MasterEntry | None = None
    book: BookEntry | None = None
    #: the caption profile the captions were cut to (renderer/caption_profiles.py)
    caption_profile: str | None = None
    #: the read-along EPUB (``--read-along``): ``<book-slug>.epub``, with media overlays
    read_along: str | None = None

    def to_json(self) -> dict[str, Any]:
        return to_data(self, drop_empty=True, keep=_KEPT_EMPTY)  # type: ignore[no-any-return]


#: keys written even when empty or None (readers rely on them)
_KEPT_EMPTY = frozenset({"chapters", "format", "words", "duration_ms", "audio"})
