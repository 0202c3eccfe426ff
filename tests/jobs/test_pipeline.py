"""The job pipeline against a real database: SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select

from jobs.claims import claim_ready_chapters
from jobs.creation import create_job
from jobs.db import Factory, make_engine, session_factory, transaction, upgrade
from jobs.export import word_track
from jobs.models import Base, Chapter, Job, Segment
from jobs.planning import Voicing, plan_document
from jobs.serialize import to_data
from jobs.settling import finish_job
from jobs.stitching import stitch_chapter
from jobs.storage import Storage
from jobs.synthesis import synthesize_segment
from narrate.errors import VoiceNotFoundError
from renderer.audio import decoded_duration_ms
from renderer.engines import get_engine
from renderer.stitch import AudioFormat
from ssml.document import Chapter as DocChapter
from ssml.document import Document
from ssml.segment import SegmentPolicy

DOCUMENT = Document(
    chapters=(
        DocChapter(
            title="I",
            heading="Chapter 1",
            paragraphs=(
                "The old lighthouse keeper climbed the stairs every evening at sunset.",
                "He wound the clock, trimmed the wick and looked out over the sea.",
            ),
        ),
        DocChapter(title="Two", paragraphs=("A second, shorter chapter ends the story.",)),
    ),
    format="markdown",
)
VOICING = Voicing("espeak", "en-us")


@pytest.fixture
def factory(database_url: str) -> Factory:
    upgrade(database_url)
    return session_factory(make_engine(database_url))


def new_job(factory: Factory, storage: Storage, tmp_path: Path, voicing: Voicing = VOICING) -> str:
    source = tmp_path / "doc.md"
    source.write_text("# doc\n")
    plan = plan_document(DOCUMENT, SegmentPolicy(max_chars=80))
    return create_job(
        factory,
        storage,
        input_path=source,
        document=DOCUMENT,
        plan=plan,
        voicing=voicing,
        audio=AudioFormat("wav"),
    ).job_id


def run_all(factory: Factory, storage: Storage, job_id: str) -> str:
    with transaction(factory) as session:
        segment_ids = session.scalars(select(Segment.id).where(Segment.job_id == job_id)).all()
        chapter_ids = session.scalars(select(Chapter.id).where(Chapter.job_id == job_id)).all()
    for segment_id in segment_ids:
        synthesize_segment(factory, storage, get_engine, segment_id)
    claim_ready_chapters(factory, job_id, 1)  # chapters fully reused at creation
    for chapter_id in chapter_ids:
        stitch_chapter(factory, storage, chapter_id)
    return finish_job(factory, job_id)


def test_migrations_create_the_schema_the_models_describe(factory: Factory) -> None:
    engine = factory.kw["bind"]
    tables = set(inspect(engine).get_table_names())
    assert {"jobs", "chapters", "segments", "words", "alembic_version"} <= tables
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []


def test_a_database_at_the_first_revision_upgrades_to_head(database_url: str) -> None:
    upgrade(database_url, "0001")
    upgrade(database_url)
    engine = make_engine(database_url)
    columns = {c["name"] for c in inspect(engine).get_columns("segments")}
    engine.dispose()
    assert "billed_chars" in columns


def test_job_renders_to_chapter_audio_and_ordered_caption_words(
    factory: Factory, tmp_path: Path
) -> None:
    storage = Storage(tmp_path / "storage")
    job_id = new_job(factory, storage, tmp_path)
    assert run_all(factory, storage, job_id) == "done"
    track = to_data(word_track(factory, job_id))
    with transaction(factory) as session:
        job = session.get_one(Job, job_id)
        chapters = list(job.chapters)
        assert all(s.status == "done" and s.attempts == 1 for c in chapters for s in c.segments)
    for chapter, exported in zip(chapters, track["chapters"], strict=True):
        words = exported["words"]
        assert [w["text"] for w in words] == chapter.text.split()
        starts = [w["start_ms"] for w in words]
        assert starts == sorted(starts)
        assert all(w["start_ms"] <= w["end_ms"] <= chapter.duration_ms for w in words)
        for word in words:
            assert chapter.text[word["char_start"] : word["char_end"]] == word["text"]
        audio = storage.path(chapter.audio_key or "")
        assert abs(decoded_duration_ms(audio) - (chapter.duration_ms or 0)) <= 5
    # the heading pause (1.2 s) sits between "1" and "The"
    first = track["chapters"][0]["words"]
    assert first[2]["start_ms"] - first[1]["end_ms"] >= 1100


def test_second_job_with_same_content_reuses_every_segment(
    factory: Factory, tmp_path: Path
) -> None:
    storage = Storage(tmp_path / "storage")
    first = new_job(factory, storage, tmp_path)
    run_all(factory, storage, first)
    second = new_job(factory, storage, tmp_path)
    with transaction(factory) as session:
        segments = session.scalars(select(Segment).where(Segment.job_id == second)).all()
        assert segments and all(s.status == "done" and s.reused for s in segments)
    assert run_all(factory, storage, second) == "done"
    # a different voice is different content: nothing reused
    third = new_job(factory, storage, tmp_path, Voicing("espeak", "en-gb-x-rp"))
    with transaction(factory) as session:
        segments = session.scalars(select(Segment).where(Segment.job_id == third)).all()
        assert not any(s.reused for s in segments)


def test_synthesizing_twice_is_idempotent(factory: Factory, tmp_path: Path) -> None:
    storage = Storage(tmp_path / "storage")
    job_id = new_job(factory, storage, tmp_path)
    with transaction(factory) as session:
        segment_id = session.scalars(select(Segment.id).where(Segment.job_id == job_id)).first()
    assert segment_id is not None
    synthesize_segment(factory, storage, get_engine, segment_id)
    synthesize_segment(factory, storage, get_engine, segment_id)
    with transaction(factory) as session:
        assert session.get_one(Segment, segment_id).attempts == 1


def test_unknown_voice_is_fatal_for_the_segment(factory: Factory, tmp_path: Path) -> None:
    storage = Storage(tmp_path / "storage")
    job_id = new_job(factory, storage, tmp_path, Voicing("espeak", "no-such-voice"))
    with transaction(factory) as session:
        segment_id = session.scalars(select(Segment.id).where(Segment.job_id == job_id)).first()
    assert segment_id is not None
    with pytest.raises(VoiceNotFoundError, match="no-such-voice"):
        synthesize_segment(factory, storage, get_engine, segment_id)
