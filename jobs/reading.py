"""What a reader of a finished chapter needs: its text with the word track, its audio file,
and a search over every word of a job (the web page's player; any other front end).

Word times are on the chapter's audio timeline and character offsets index the chapter
text (as ``narrate captions --format json`` gives them).
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from jobs.db import Factory, transaction
from jobs.export import finished_chapters, iter_chapter_words
from jobs.models import Chapter, ChapterStatus, Job
from jobs.storage import Storage
from jobs.views import WordView
from narrate.errors import JobFailedError, JobNotFoundError, UsageError

#: the longest search query, in characters
MAX_QUERY_CHARS = 200
#: hits a search returns at most (``truncated`` says when there were more)
MAX_HITS = 200
#: characters of text shown on each side of a hit
CONTEXT_CHARS = 40


@dataclass(frozen=True)
class ChapterReading:
    """One finished chapter as a player shows it: its text and when each word is said."""

    job: str
    index: int
    title: str
    text: str
    duration_ms: int | None
    #: the audio file's extension (``mp3``, ``wav``, ``flac``, ...)
    audio_format: str
    words: tuple[WordView, ...]


@dataclass(frozen=True)
class SearchHit:
    """Where a query is said: the chapter, the word the match starts in, and the text around
    it (``match_start``/``match_end`` index ``context``)."""

    chapter: int
    title: str
    start_ms: int
    end_ms: int
    word: str
    char_start: int
    context: str
    match_start: int
    match_end: int


@dataclass(frozen=True)
class SearchResults:
    job: str
    query: str
    hits: tuple[SearchHit, ...]
    #: more hits than :data:`MAX_HITS` were found; the first ones are listed
    truncated: bool


def _chapter(factory: Factory, job_id: str, number: int) -> Chapter:
    return finished_chapters(factory, job_id, number)[0]


def chapter_reading(factory: Factory, job_id: str, number: int) -> ChapterReading:
    """Chapter ``number`` of a job with its text and word track; refuses a chapter that is
    not rendered yet (:class:`~narrate.errors.JobFailedError`)."""
    chapter = _chapter(factory, job_id, number)
    words = tuple(
        WordView(w.text, w.start_ms, w.end_ms, w.char_start, w.char_end)
        for w in iter_chapter_words(factory, chapter.id)
    )
    return ChapterReading(
        job=job_id,
        index=chapter.index,
        title=chapter.title,
        text=chapter.text,
        duration_ms=chapter.duration_ms,
        audio_format=Path(chapter.audio_key or "").suffix.lstrip(".") or "wav",
        words=words,
    )


def chapter_audio(factory: Factory, storage: Storage, job_id: str, number: int) -> Path:
    """The stitched audio of a finished chapter (the whole chapter, on the timeline of its
    word track), as a path inside the storage folder; never a path outside it."""
    chapter = _chapter(factory, job_id, number)
    root = storage.root.resolve()
    path = storage.path(chapter.audio_key or "").resolve()
    if not chapter.audio_key or not path.is_relative_to(root) or not path.is_file():
        raise JobFailedError(
            f"the audio of chapter {number} of job {job_id} is not in the storage folder",
            hint="check NARRATE_STORAGE_DIR: it must be the folder the job was rendered into",
        )
    return path


def search_words(
    factory: Factory, job_id: str, query: str, *, limit: int = MAX_HITS
) -> SearchResults:
    """Where ``query`` is said in a job's finished chapters, in reading order.

    The query matches the chapter text case-insensitively at the start of a word
    ("light" finds "lighthouse", not "delight"; "clock" not "o'clock"), across spaces and
    line breaks for a phrase; each hit is placed at the word the match starts in.
    """
    words = query.split()
    if not words:
        raise UsageError("the search is empty", hint="type a word or a phrase")
    if len(query) > MAX_QUERY_CHARS:
        raise UsageError(
            f"the search is {len(query)} characters long, at most {MAX_QUERY_CHARS} are searched",
            hint="search for a shorter phrase",
        )
    pattern = re.compile(r"(?<![\w'’])" + r"\s+".join(re.escape(w) for w in words), re.IGNORECASE)
    with transaction(factory) as session:
        if session.get(Job, job_id) is None:
            raise JobNotFoundError(
                f"no job {job_id!r} in this database",
                hint="check NARRATE_DATABASE_URL (and NARRATE_HOME): jobs live in that database",
            )
        chapters = session.execute(
            select(Chapter.id, Chapter.index, Chapter.title, Chapter.text)
            .where(Chapter.job_id == job_id, Chapter.status == ChapterStatus.DONE)
            .order_by(Chapter.index)
        ).all()
    hits: list[SearchHit] = []
    truncated = False
    for chapter_id, index, title, text in chapters:
        matches = list(pattern.finditer(text))
        if not matches:
            continue
        track = list(iter_chapter_words(factory, chapter_id))
        ends = [w.char_end for w in track]
        for match in matches:
            if len(hits) >= limit:
                truncated = True
                break
            at = bisect.bisect_right(ends, match.start())  # the first word ending after it
            if at >= len(track):
                continue  # not spoken (no word there)
            word = track[at]
            context, offset = _context(text, match.start(), match.end())
            hits.append(
                SearchHit(
                    chapter=index,
                    title=title,
                    start_ms=word.start_ms,
                    end_ms=word.end_ms,
                    word=word.text,
                    char_start=word.char_start,
                    context=context,
                    match_start=match.start() - offset,
                    match_end=match.end() - offset,
                )
            )
        if truncated:
            break
    return SearchResults(job_id, query, tuple(hits), truncated)


def _context(text: str, start: int, end: int) -> tuple[str, int]:
    """About :data:`CONTEXT_CHARS` of text on each side of ``text[start:end]``, cut at
    whole words, on one line, with "…" where it was cut; and the offset in ``text`` that
    index 0 of it stands for (so the match's offsets move by the same amount)."""
    left = max(0, start - CONTEXT_CHARS)
    if left > 0:
        space = text.find(" ", left, start)
        left = space + 1 if space >= 0 else left
    right = min(len(text), end + CONTEXT_CHARS)
    if right < len(text):
        space = text.rfind(" ", end, right)
        right = space if space >= 0 else right
    context = re.sub(r"\s", " ", text[left:right])  # one line, same length
    if left > 0:
        return "…" + context + ("…" if right < len(text) else ""), left - 1
    return context + ("…" if right < len(text) else ""), left
