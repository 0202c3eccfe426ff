"""Exporting a chapter's word track and captions a batch and a cue at a time (SQLite and
PostgreSQL): what is written equals what the whole track would give, across batch edges."""

from __future__ import annotations

from pathlib import Path

import srt
import webvtt

from jobs.db import Factory, transaction
from jobs.export import iter_chapter_words, write_captions
from jobs.local import run_job
from jobs.models import Chapter, Word
from jobs.storage import Storage
from narrate.settings import Settings
from renderer.captions import build_cues, rules_for, to_srt, to_vtt
from renderer.timing import TimedWord
from tests.jobs.builders import planned_chapter, store_job
from tests.jobs.rows import chapter_ids


def _stored_words(factory: Factory, chapter_id: int) -> list[TimedWord]:
    with transaction(factory) as session:
        rows = session.query(Word).filter_by(chapter_id=chapter_id).order_by(Word.index).all()
        return [TimedWord(w.text, w.char_start, w.char_end, w.start_ms, w.end_ms) for w in rows]


def _rendered_chapter(factory: Factory, storage: Storage, tmp_path: Path) -> Chapter:
    texts = [f"Sentence number {n} is here, and then it ends." for n in range(12)]
    job_id = store_job(factory, storage, tmp_path, [planned_chapter(1, texts)])
    settings = Settings(
        database_url=str(factory.kw["bind"].url.render_as_string(hide_password=False)),
        storage_dir=storage.root,
        broker_url=None,
        workers=1,
    )
    run_job(settings, factory, job_id, workers=1, quiet=True)
    with transaction(factory) as session:
        return session.get_one(Chapter, chapter_ids(factory, job_id)[0])


def test_words_stream_in_order_across_batch_edges(
    factory: Factory, storage: Storage, tmp_path: Path
) -> None:
    chapter = _rendered_chapter(factory, storage, tmp_path)
    whole = _stored_words(factory, chapter.id)
    assert len(whole) > 20
    for batch in (1, 7, len(whole), len(whole) + 1, 10_000):
        assert list(iter_chapter_words(factory, chapter.id, batch=batch)) == whole


def test_streamed_caption_files_equal_the_whole_track_s(
    factory: Factory, storage: Storage, tmp_path: Path
) -> None:
    chapter = _rendered_chapter(factory, storage, tmp_path)
    whole = _stored_words(factory, chapter.id)
    cues = build_cues(chapter.text, whole, rules_for(chapter.text))
    count = write_captions(factory, chapter, tmp_path / "c.vtt", tmp_path / "c.srt")
    assert count == len(whole)
    vtt = (tmp_path / "c.vtt").read_text()
    assert vtt == to_vtt(cues)
    assert (tmp_path / "c.srt").read_text() == to_srt(cues)
    parsed = webvtt.from_string(vtt)
    assert [c.text for c in parsed] == [c.text for c in cues]
    assert len(list(srt.parse((tmp_path / "c.srt").read_text()))) == len(cues)
