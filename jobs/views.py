"""Typed results of what users ask of jobs: the CLI's ``--json``, the web page and its JSON
API all show these, serialised by :func:`jobs.serialize.to_data` (one place).

Every field is plain data (str, int, float, None, tuples and other views), named with its
unit; a view is built by :mod:`jobs.control` or :mod:`jobs.export` and never changes.
"""

from __future__ import annotations

from dataclasses import dataclass

from jobs.settling import Failure


@dataclass(frozen=True)
class SegmentCounts:
    """How many of a job's segments are in each state."""

    total: int
    pending: int = 0
    queued: int = 0
    running: int = 0
    done: int = 0
    failed: int = 0
    cancelled: int = 0

    @property
    def finished(self) -> int:
        return self.done + self.failed


@dataclass(frozen=True)
class ChapterView:
    index: int
    title: str
    status: str
    segments_done: int
    segments_failed: int
    segments_total: int
    duration_ms: int | None
    #: where silence replaces segments that failed (``--partial``)
    gaps: tuple[dict[str, object], ...]
    error: str | None

    @property
    def finished(self) -> bool:
        return self.status in ("done", "failed")


@dataclass(frozen=True)
class Retrying:
    """A segment waiting to be tried again, and why."""

    chapter: int
    segment: int
    retries: int
    error: str | None


@dataclass(frozen=True)
class JobView:
    """A job's status: progress per chapter, every failure with its reason, an ETA, and
    what keeps it from moving if anything (``attention``)."""

    job: str
    status: str
    priority: str
    title: str | None
    input: str
    engine: str
    voice: str
    error: str | None
    segments: SegmentCounts
    chapters: tuple[ChapterView, ...]
    retrying: tuple[Retrying, ...]
    eta_s: float | None
    failures: tuple[Failure, ...]
    attention: str | None

    @property
    def final(self) -> bool:
        from jobs.models import JOB_FINAL

        return self.status in JOB_FINAL

    @property
    def chapters_finished(self) -> int:
        return sum(c.finished for c in self.chapters)


@dataclass(frozen=True)
class JobRow:
    """One line of the jobs list."""

    job: str
    status: str
    priority: str
    title: str | None
    created_at: str | None
    segments_done: int
    segments_failed: int
    segments_total: int


@dataclass(frozen=True)
class Cancelled:
    job: str
    segments_dropped: int


@dataclass(frozen=True)
class Retried:
    job: str
    segments: int
    chapters: int


@dataclass(frozen=True)
class WordView:
    """A word on its chapter's audio timeline, with its characters in the chapter text."""

    text: str
    start_ms: int
    end_ms: int
    char_start: int
    char_end: int


@dataclass(frozen=True)
class ChapterWords:
    index: int
    title: str
    words: tuple[WordView, ...]


@dataclass(frozen=True)
class WordTrack:
    """A job's word track (``narrate captions --format json``)."""

    job: str
    chapters: tuple[ChapterWords, ...]
