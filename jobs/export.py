"""Export a finished job from the database and storage into an output folder.

Writes ``NN-<slug>.<ext>``, ``.vtt`` and ``.srt`` per chapter, then ``manifest.json`` last:
a folder with a manifest holds a complete result; one without it does not.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import select

from jobs.db import Factory, transaction
from jobs.models import JOB_FINAL, Chapter, Job, JobStatus, SegmentStatus, Word
from jobs.storage import Storage
from narrate.errors import JobFailedError, JobNotFoundError, UsageError
from narrate.files import atomic_path, copy_atomic, write_text_atomic
from renderer.captions import VTT_HEADER, iter_cues, rules_for, srt_cue, to_srt, to_vtt, vtt_cue
from renderer.timing import TimedWord

MANIFEST = "manifest.json"


#: word rows read from the database at a time
WORD_BATCH = 2000


def chapter_words(factory: Factory, chapter_id: int) -> list[TimedWord]:
    """The caption word track of one chapter, in order."""
    return list(iter_chapter_words(factory, chapter_id))


def iter_chapter_words(
    factory: Factory, chapter_id: int, batch: int = WORD_BATCH
) -> Iterator[TimedWord]:
    """The word track of one chapter in order, read ``batch`` rows at a time (by index,
    each batch its own short query): memory stays at one batch however long the chapter."""
    after = -1
    while True:
        with transaction(factory) as session:
            rows = session.execute(
                select(
                    Word.index.label("position"),
                    Word.text,
                    Word.char_start,
                    Word.char_end,
                    Word.start_ms,
                    Word.end_ms,
                )
                .where(Word.chapter_id == chapter_id, Word.index > after)
                .order_by(Word.index)
                .limit(batch)
            ).all()
        for row in rows:
            yield TimedWord(row.text, row.char_start, row.char_end, row.start_ms, row.end_ms)
        if len(rows) < batch:
            return
        after = rows[-1].position


def load_job(factory: Factory, job_id: str) -> Job:
    with transaction(factory) as session:
        job = session.get(Job, job_id)
        if job is None:
            raise JobNotFoundError(
                f"no job {job_id!r} in this database",
                hint="check NARRATE_DATABASE_URL (and NARRATE_HOME): jobs live in that database",
            )
        list(job.chapters)  # load them before the session closes
        return job


def finished_chapters(factory: Factory, job_id: str, number: int | None = None) -> list[Chapter]:
    """A job's chapters (or chapter ``number``), refusing any that is not rendered yet."""
    job = load_job(factory, job_id)
    chosen = [c for c in job.chapters if number is None or c.index == number]
    if not chosen:
        numbers = ", ".join(str(c.index) for c in job.chapters)
        raise UsageError(f"job {job_id} has no chapter {number}", hint=f"its chapters: {numbers}")
    for chapter in chosen:
        if chapter.status != SegmentStatus.DONE:
            raise JobFailedError(
                f"chapter {chapter.index} ({chapter.title}) of job {job_id} has no captions: "
                f"it is {chapter.status}",
                hint="render the document again; done segments are reused",
            )
    return chosen


def captions_json(factory: Factory, job_id: str, number: int | None = None) -> dict[str, Any]:
    """The word track of a job: ``{"job", "chapters": [{"index", "title", "words": [...]}]}``."""
    chapters = []
    for chapter in finished_chapters(factory, job_id, number):
        words = chapter_words(factory, chapter.id)
        chapters.append(
            {
                "index": chapter.index,
                "title": chapter.title,
                "words": [
                    {
                        "text": w.text,
                        "start_ms": w.start_ms,
                        "end_ms": w.end_ms,
                        "char_start": w.char_start,
                        "char_end": w.char_end,
                    }
                    for w in words
                ],
            }
        )
    return {"job": job_id, "chapters": chapters}


def chapter_captions(factory: Factory, chapter: Chapter, fmt: str) -> str:
    cues = iter_cues(chapter.text, iter_chapter_words(factory, chapter.id), rules_for(chapter.text))
    return to_vtt(cues) if fmt == "vtt" else to_srt(cues)


def write_captions(factory: Factory, chapter: Chapter, vtt_path: Path, srt_path: Path) -> int:
    """Write a chapter's WebVTT and SubRip files (atomically), streaming its word track
    from the database a cue at a time; returns the number of words."""
    counted = _Counted(iter_chapter_words(factory, chapter.id))
    cues = iter_cues(chapter.text, counted, rules_for(chapter.text))
    with (
        atomic_path(vtt_path) as vtt_tmp,
        atomic_path(srt_path) as srt_tmp,
        vtt_tmp.open("w", encoding="utf-8", newline="") as vtt,
        srt_tmp.open("w", encoding="utf-8", newline="") as srt,
    ):  # the files close before their renames
        vtt.write(VTT_HEADER)
        for number, cue in enumerate(cues, start=1):
            vtt.write(vtt_cue(cue))
            srt.write(srt_cue(number, cue))
    return counted.count


class _Counted:
    """Passes words through, counting them."""

    def __init__(self, words: Iterator[TimedWord]) -> None:
        self.words = words
        self.count = 0

    def __iter__(self) -> Iterator[TimedWord]:
        for word in self.words:
            self.count += 1
            yield word


def export_job(factory: Factory, storage: Storage, job_id: str, out_dir: Path) -> dict[str, Any]:
    """Write the job's chapter audio, captions and manifest into ``out_dir``."""
    job = load_job(factory, job_id)
    if job.status not in JOB_FINAL:
        raise UsageError(
            f"job {job_id} is {job.status}: it has not finished",
            hint=f"`narrate watch {job_id}` waits for it",
        )
    if job.status not in (JobStatus.DONE, JobStatus.PARTIAL):
        raise JobFailedError(
            f"job {job_id} is {job.status}, not done: nothing exported",
            hint=f"`narrate status {job_id}` says why; `narrate retry {job_id}` (or rendering "
            "again) renders the failed segments and reuses the rest",
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    # files are about to change: an old manifest must not vouch for a half-updated folder
    (out_dir / MANIFEST).unlink(missing_ok=True)
    width = max(2, *(len(str(c.index)) for c in job.chapters))
    entries = []
    for chapter in job.chapters:
        assert chapter.audio_key is not None and chapter.duration_ms is not None
        audio = storage.path(chapter.audio_key)
        stem = f"{chapter.index:0{width}d}-{chapter.slug}"
        audio_name = f"{stem}{audio.suffix}"
        copy_atomic(audio, out_dir / audio_name)
        words = write_captions(factory, chapter, out_dir / f"{stem}.vtt", out_dir / f"{stem}.srt")
        entries.append(
            {
                "index": chapter.index,
                "title": chapter.title,
                "audio": audio_name,
                "captions": {"vtt": f"{stem}.vtt", "srt": f"{stem}.srt"},
                "duration_ms": chapter.duration_ms,
                "words": words,
                # a partial job: silence where a failed segment would have been
                **({"gaps": chapter.gaps} if chapter.gaps else {}),
            }
        )
    manifest = {
        "job": job.id,
        "input": job.input_path,
        "engine": job.engine,
        "voice": job.voice,
        "format": job.options.get("format"),
        "chapters": entries,
    }
    write_text_atomic(out_dir / MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return manifest
