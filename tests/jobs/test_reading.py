"""What a player reads of a finished chapter (text, word track, audio file) and the search
over a job's words, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import update

from jobs.db import Factory, transaction
from jobs.local import run_job
from jobs.models import Chapter
from jobs.reading import chapter_audio, chapter_reading, search_words
from jobs.storage import Storage
from narrate.errors import JobFailedError, JobNotFoundError, UsageError
from narrate.settings import Settings
from tests.jobs.builders import planned_chapter, store_job


def _rendered(factory: Factory, storage: Storage, tmp_path: Path) -> str:
    plan = [
        planned_chapter(1, ["The lighthouse stood on the rock.", "Its clock had stopped."]),
        planned_chapter(2, ["At ten o'clock the light went out.", "The keeper wound the clock."]),
        planned_chapter(3, ["Nothing here."]),
    ]
    job_id = store_job(factory, storage, tmp_path, plan)
    settings = Settings(
        database_url=factory.kw["bind"].url.render_as_string(hide_password=False),
        storage_dir=storage.root,
        broker_url=None,
        workers=1,
    )
    assert run_job(settings, factory, job_id, workers=1, quiet=True) == "done"
    return job_id


def test_a_chapter_as_the_player_reads_it(
    factory: Factory, storage: Storage, tmp_path: Path
) -> None:
    job_id = _rendered(factory, storage, tmp_path)
    reading = chapter_reading(factory, job_id, 2)
    assert reading.title == "Chapter 2" and reading.audio_format == "wav"
    assert reading.text == "At ten o'clock the light went out. The keeper wound the clock."
    spoken = [reading.text[w.char_start : w.char_end] for w in reading.words]
    assert spoken[:3] == ["At", "ten", "o'clock"]
    starts = [w.start_ms for w in reading.words]
    assert starts == sorted(starts) and reading.duration_ms and starts[-1] < reading.duration_ms
    path = chapter_audio(factory, storage, job_id, 2)
    assert path.is_file() and path.is_relative_to(storage.root.resolve())
    with pytest.raises(UsageError, match="has no chapter 9"):
        chapter_reading(factory, job_id, 9)
    # a chapter whose audio key leads out of the storage folder is refused
    with transaction(factory) as session:
        session.execute(
            update(Chapter)
            .where(Chapter.job_id == job_id, Chapter.index == 3)
            .values(audio_key="../../../etc/passwd")
        )
    with pytest.raises(JobFailedError, match="not in the storage folder"):
        chapter_audio(factory, storage, job_id, 3)


def test_search_finds_words_in_reading_order(
    factory: Factory, storage: Storage, tmp_path: Path
) -> None:
    job_id = _rendered(factory, storage, tmp_path)
    found = search_words(factory, job_id, "CLOCK")
    assert [(h.chapter, h.word) for h in found.hits] == [(1, "clock"), (2, "clock.")]
    track = chapter_reading(factory, job_id, 2).words
    assert found.hits[1].start_ms == next(w.start_ms for w in track if "clock." in w.text)
    light = search_words(factory, job_id, "light")
    assert [h.word for h in light.hits] == ["lighthouse", "light"]  # at a word's start
    phrase = search_words(factory, job_id, "keeper   wound")
    assert len(phrase.hits) == 1 and phrase.hits[0].word == "keeper"
    context = phrase.hits[0].context
    assert context[phrase.hits[0].match_start : phrase.hits[0].match_end] == "keeper wound"
    capped = search_words(factory, job_id, "the", limit=2)
    assert len(capped.hits) == 2 and capped.truncated
    assert not search_words(factory, job_id, "missing").hits
    with pytest.raises(UsageError, match="empty"):
        search_words(factory, job_id, " ")
    with pytest.raises(UsageError, match="shorter"):
        search_words(factory, job_id, "x" * 201)
    with pytest.raises(JobNotFoundError):
        search_words(factory, "0" * 32, "clock")
    # chapters not rendered (yet) are not searched
    with transaction(factory) as session:
        session.execute(
            update(Chapter)
            .where(Chapter.job_id == job_id, Chapter.index == 1)
            .values(status="pending")
        )
    assert [h.chapter for h in search_words(factory, job_id, "clock").hits] == [2]
