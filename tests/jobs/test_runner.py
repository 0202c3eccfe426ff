"""The runner of a long-lived process (``narrate serve``): embedded jobs run in the
background and are resumed after a stop, re-rendered on retry, exported for download;
uploads get safe names; downloads never leave a job's export folder."""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, update

from jobs.book import BookOptions
from jobs.db import ensure_schema, transaction
from jobs.models import Chapter, ChapterStatus, Job, Segment, SegmentStatus
from jobs.render import RenderRequest
from jobs.runner import (
    ExportUse,
    Rerendered,
    Runner,
    ServePaths,
    checked_job_id,
    download_path,
    downloads_in,
    exports_to_remove,
    finished_exports,
    request_from_json,
    request_to_json,
    upload_path,
    wait_for_abandoned,
)
from narrate.errors import ConfigurationError, JobNotFoundError, UsageError
from narrate.settings import Settings
from renderer.stitch import AudioFormat
from tests.conftest import SAMPLE


def _wait(runner: Runner, job_id: str, timeout_s: float = 120) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with transaction(runner.factory) as session:
            status = session.get_one(Job, job_id).status
        if status in ("done", "failed", "partial", "cancelled") and runner.idle():
            return str(status)
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not end")


@pytest.fixture
def runner(settings: Settings) -> Iterator[Runner]:
    ensure_schema(settings.database_url)
    started = Runner(settings)
    started.start()
    yield started
    started.stop()


def test_upload_names_are_safe_and_unique(tmp_path: Path) -> None:
    paths = ServePaths.of(tmp_path)
    first = upload_path(paths, "../../etc/passwd")
    second = upload_path(paths, "..\\..\\My Book (final).EPUB")
    third = upload_path(paths, "notes.exe")
    assert first.name == "passwd" and first.parent.parent == paths.uploads
    assert second.name == "my-book-final.epub"
    assert third.name == "notes"  # an extension narrate does not read is dropped
    assert len({first.parent, second.parent, third.parent}) == 3
    assert upload_path(paths, "").name == "document"
    assert upload_path(paths, "Report.DOCX").name == "report.docx"  # every format ingested


def test_job_ids_never_name_paths(tmp_path: Path) -> None:
    for bad in ("../x", "a" * 31, "A" * 32, "x" * 32, "0" * 32 + "/.."):
        with pytest.raises(JobNotFoundError):
            checked_job_id(bad)
    assert checked_job_id("0123456789abcdef" * 2) == "0123456789abcdef" * 2


def test_a_request_survives_json(tmp_path: Path) -> None:
    request = RenderRequest(
        tmp_path / "book.md",
        engine="stub",
        voice="stub",
        rate=1.25,
        engine_options=(("latency_ms", "5"),),
        audio=AudioFormat("opus", 24000, 32),
        chapters="1-2",
        include_matter=True,
        lexicon=tmp_path / "words.pls",
        master="podcast",
        book=BookOptions("T", "A", None, tmp_path / "cover.jpg", True),
    )
    data = json.loads(json.dumps(request_to_json(request)))
    assert request_from_json(data) == request
    # fields a later version adds are ignored; fields it lacks take their defaults
    assert request_from_json({"input_path": "x.md", "future": 1}) == RenderRequest(Path("x.md"))


def _export(folder: Path, manifest: dict[str, object], files: list[str]) -> None:
    folder.mkdir(parents=True)
    for name in files:
        (folder / name).write_text(name)
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_downloads_are_what_the_manifest_names(tmp_path: Path) -> None:
    paths = ServePaths.of(tmp_path)
    job = "ab" * 16
    folder = paths.export_dir(job)
    manifest = {
        "job": job,
        "input": "/etc/passwd",
        "chapters": [
            {
                "index": 1,
                "audio": "01-a.mp3",
                "captions": {"vtt": "01-a.vtt", "srt": "01-a.srt"},
                "files": [{"audio": "01-a-1.mp3"}],
            },
            {"index": 2, "audio": "../../narrate.db", "captions": {"vtt": "/etc/passwd"}},
        ],
        "read_along": "book.epub",
        "master": {"report": "report.html"},
    }
    _export(folder, manifest, ["01-a.mp3", "01-a.vtt", "01-a.srt", "01-a-1.mp3", "book.epub"])
    (folder / "stray.txt").write_text("not in the manifest")
    (tmp_path / "narrate.db").write_text("secret")
    listed = downloads_in(job, folder)
    assert listed is not None
    kinds = {d.name: (d.kind, d.chapter) for d in listed}
    assert kinds == {
        "01-a.mp3": ("chapters.audio", 1),
        "01-a.vtt": ("chapters.captions.vtt", 1),
        "01-a.srt": ("chapters.captions.srt", 1),
        "01-a-1.mp3": ("chapters.files.audio", 1),
        "book.epub": ("read_along", None),
        "manifest.json": ("manifest", None),
    }  # report.html is named but missing: not listed
    assert download_path(paths, job, "01-a.vtt") == (folder / "01-a.vtt").resolve()
    for bad in ("../../narrate.db", "/etc/passwd", "stray.txt", "..", "report.html", ""):
        with pytest.raises(JobNotFoundError):
            download_path(paths, job, bad)
    # a link out of the folder, even when named, is refused
    os.symlink(tmp_path / "narrate.db", folder / "01-b.mp3")
    manifest["chapters"][0]["audio"] = "01-b.mp3"  # type: ignore[index]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(JobNotFoundError):
        download_path(paths, job, "01-b.mp3")
    assert downloads_in(job, paths.export_dir("cd" * 16)) is None


def test_an_embedded_job_runs_in_the_background_and_is_exported(runner: Runner) -> None:
    request = RenderRequest(SAMPLE, engine="stub")
    summary = runner.submit(request)
    assert runner.owns(summary.job_id)
    assert _wait(runner, summary.job_id) == "done"
    deadline = time.monotonic() + 60
    while (downloads := runner.downloads(summary.job_id)).state != "ready":
        assert downloads.state == "exporting" and time.monotonic() < deadline, downloads
        time.sleep(0.1)
    names = {d.name for d in downloads.files}
    assert {
        "manifest.json",
        "01-chapter-1-the-storm.mp3",
        "03-chapter-3-the-north-window.vtt",
    } <= names
    # a done job is not rendered again
    with pytest.raises(UsageError, match="is done"):
        runner.retry(summary.job_id)
    # a job that ended again since (a retry with the workers) is exported again
    with transaction(runner.factory) as session:
        job = session.get_one(Job, summary.job_id)
        job.finished_at_ms = (job.finished_at_ms or 0) + 1
    assert runner.downloads(summary.job_id).state == "exporting"
    runner.wait_exports()
    assert runner.downloads(summary.job_id).state == "ready"


def test_a_failed_job_is_rendered_again_reusing_its_segments(
    runner: Runner, tmp_path: Path
) -> None:
    document = tmp_path / "faulty.md"
    document.write_text("# One\n\nA fine sentence.\n\n# Two\n\nThis one says STUB-FATAL.\n")
    first = runner.submit(RenderRequest(document, engine="stub"))
    assert _wait(runner, first.job_id) == "failed"
    assert runner.downloads(first.job_id).state == "unavailable"
    document.write_text("# One\n\nA fine sentence.\n\n# Two\n\nThis one is fine now.\n")
    again = runner.retry(first.job_id)
    assert isinstance(again, Rerendered) and again.previous == first.job_id
    assert again.segments_reused >= 1  # chapter one's segment
    assert _wait(runner, again.job) == "done"


def test_jobs_rendered_elsewhere_are_not_rendered_again(runner: Runner, settings: Settings) -> None:
    from jobs import context as worker_context
    from jobs.render import prepare, store_job

    request = RenderRequest(SAMPLE, engine="stub", engine_options=(("latency_ms", "1"),))
    ctx = worker_context.configure(settings)
    summary = store_job(ctx, request, prepare(request))  # as `narrate render` stores it
    with transaction(runner.factory) as session:
        session.execute(update(Job).where(Job.id == summary.job_id).values(status="failed"))
    assert not runner.owns(summary.job_id)
    with pytest.raises(UsageError, match="narrate render"):
        runner.retry(summary.job_id)


def test_a_stopped_server_resumes_its_job(settings: Settings) -> None:
    ensure_schema(settings.database_url)
    first = Runner(settings)
    first.start()
    slow = RenderRequest(SAMPLE, engine="stub", engine_options=(("latency_ms", "700"),))
    job_id = first.submit(slow).job_id
    deadline = time.monotonic() + 60
    while True:  # stop it once some segments are done and others are not
        with transaction(first.factory) as session:
            done = session.scalar(
                select(Segment.id).where(
                    Segment.job_id == job_id, Segment.status == SegmentStatus.DONE
                )
            )
        if done is not None:
            break
        assert time.monotonic() < deadline
        time.sleep(0.05)
    first.stop()
    with transaction(first.factory) as session:
        assert session.get_one(Job, job_id).status == "running"
    second = Runner(settings)
    assert second.unfinished() == [job_id]
    second.start()
    try:
        assert _wait(second, job_id) == "done"
    finally:
        second.stop()


def test_only_one_runner_per_storage_folder(settings: Settings) -> None:
    ensure_schema(settings.database_url)
    first = Runner(settings)
    first.start()
    try:
        with pytest.raises(ConfigurationError, match="another `narrate serve`"):
            Runner(settings).start()
    finally:
        first.stop()
    second = Runner(settings)  # free again
    second.start()
    second.stop()


def test_abandoned_work_is_taken_back_once_its_leases_lapse(runner: Runner) -> None:
    summary = runner.submit(RenderRequest(SAMPLE, engine="stub"))
    _wait(runner, summary.job_id)
    now = [1_000_000]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += int(seconds * 1000)

    with transaction(runner.factory) as session:  # as a run killed mid-stitch leaves it
        chapter = session.scalars(select(Chapter).where(Chapter.job_id == summary.job_id)).first()
        assert chapter is not None
        chapter.status = ChapterStatus.STITCHING
        chapter.stitch_lease_until_ms = now[0] + 5_000
        segment = session.scalars(select(Segment).where(Segment.chapter_id == chapter.id)).first()
        assert segment is not None
        segment.status = SegmentStatus.RUNNING
        segment.lease_until_ms = now[0] + 8_000
    released = wait_for_abandoned(
        runner.factory, summary.job_id, now_ms=lambda: now[0], sleep=sleep
    )
    assert released == 1
    assert now[0] > 1_008_000 and sum(slept) < 10
    with transaction(runner.factory) as session:
        chapter = session.get_one(Chapter, chapter.id)
        assert chapter.status == ChapterStatus.PENDING and chapter.stitch_enqueued_at_ms is None


def test_the_least_recently_used_exports_go_first_and_never_those_kept() -> None:
    exports = [
        ExportUse("a" * 32, 400, used_ms=3),
        ExportUse("b" * 32, 300, used_ms=1),
        ExportUse("c" * 32, 200, used_ms=2),
    ]
    assert exports_to_remove(exports, max_bytes=900) == []
    assert exports_to_remove(exports, max_bytes=600) == ["b" * 32]
    assert exports_to_remove(exports, max_bytes=400) == ["b" * 32, "c" * 32]
    assert exports_to_remove(exports, max_bytes=0, keep=frozenset({"b" * 32})) == [
        "c" * 32,
        "a" * 32,
    ]


def _ready(runner: Runner, job_id: str) -> set[str]:
    deadline = time.monotonic() + 60
    while (downloads := runner.downloads(job_id)).state != "ready":
        assert downloads.state == "exporting" and time.monotonic() < deadline, downloads
        time.sleep(0.1)
    return {d.name for d in downloads.files}


def test_exports_beyond_their_limit_are_removed_and_made_again(settings: Settings) -> None:
    ensure_schema(settings.database_url)
    runner = Runner(dataclasses.replace(settings, serve_max_exports_mb=0))  # keep only one
    runner.start()
    try:
        first = runner.submit(RenderRequest(SAMPLE, engine="stub")).job_id
        assert _wait(runner, first) == "done"
        made = _ready(runner, first)
        second = runner.submit(RenderRequest(SAMPLE, engine="stub", rate=1.2)).job_id
        assert _wait(runner, second) == "done"
        assert _ready(runner, second) == made
        assert not runner.paths.export_dir(first).exists()  # the older one made room
        assert runner.paths.export_dir(second).is_dir()
        assert _ready(runner, first) == made  # asked for again: made again
        assert not runner.paths.export_dir(second).exists()
        assert [e.job_id for e in finished_exports(runner.paths)] == [first]
    finally:
        runner.stop()
