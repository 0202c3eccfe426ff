"""The distributed mode end to end: real PostgreSQL, Redis and Celery worker processes.

Every test drives narrate as a user does (``submit``, ``status``, ``watch``, ``fetch``)
and checks the output itself: audio durations, caption words in order, each exactly once.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from renderer.audio import decoded_duration_ms
from tests.conftest import SAMPLE
from tests.jobs.conftest import Cluster

pytestmark = [pytest.mark.postgres, pytest.mark.distributed]


def book(tmp_path: Path, chapters: int, sentences: int, extra: str = "") -> Path:
    """A Markdown book whose every word is unique, so a repeated or lost segment shows."""
    lines = []
    for c in range(1, chapters + 1):
        lines.append(f"# Chapter {c}\n")
        for s in range(sentences):
            words = " ".join(f"w{c}x{s}x{k}" for k in range(12))
            lines.append(f"Sentence {words} ends here.\n")
    path = tmp_path / "book.md"
    path.write_text("\n".join(lines) + extra)
    return path


def check_output(out: Path, source_words: dict[int, list[str]] | None = None) -> dict[str, object]:
    manifest = json.loads((out / "manifest.json").read_text())
    for chapter in manifest["chapters"]:
        audio = out / chapter["audio"]
        assert abs(decoded_duration_ms(audio) - chapter["duration_ms"]) <= 60
    return dict(manifest)


def caption_words(cluster: Cluster, job_id: str) -> dict[int, list[str]]:
    result = cluster.narrate("captions", job_id, "--format", "json")
    assert result.returncode == 0, result.stderr
    track = json.loads(result.stdout)
    words: dict[int, list[str]] = {}
    for chapter in track["chapters"]:
        starts = [w["start_ms"] for w in chapter["words"]]
        assert starts == sorted(starts), "caption words out of order"
        words[chapter["index"]] = [w["text"] for w in chapter["words"]]
    return words


def assert_every_word_once(cluster: Cluster, job_id: str, source: Path) -> None:
    """Each chapter's caption track holds the book's unique words once each, in order:
    no segment was lost, repeated or put out of place."""
    text = source.read_text()
    for index, chapter_words in caption_words(cluster, job_id).items():
        expected = [w for w in text.split() if w.startswith(f"w{index}x")]
        got = [w for w in chapter_words if w.startswith("w")]
        assert got == expected, f"chapter {index}: words lost, repeated or out of order"


def fetch_and_render(
    cluster: Cluster, tmp_path: Path, source: Path, *options: str
) -> tuple[Path, Path]:
    """The same document through submit + watch + fetch and through the embedded render."""
    job_id = cluster.submit(source, *options)
    assert len(job_id) == 32
    watched = cluster.narrate("watch", job_id, "--quiet", timeout=180)
    assert watched.returncode == 0, watched.stderr + cluster.logs()
    fetched = tmp_path / f"fetched-{job_id}"
    result = cluster.narrate("fetch", job_id, "--out", fetched)
    assert result.returncode == 0, result.stderr
    local = tmp_path / f"local-{job_id}"
    local_env = {
        **cluster.env,
        "NARRATE_DATABASE_URL": f"sqlite:///{local / 'narrate.db'}",
        "NARRATE_STORAGE_DIR": str(local / "storage"),
    }
    rendered = local / "out"
    result = Cluster(local_env, tmp_path).narrate(
        "render", source, "--out", rendered, "--quiet", *options
    )
    assert result.returncode == 0, result.stderr
    return fetched, rendered


def test_submit_to_fetch_writes_what_render_writes(cluster: Cluster, tmp_path: Path) -> None:
    cluster.start_worker("w1")
    cluster.start_worker("w2")
    cluster.start_beat()
    # a deterministic engine: every file must be identical, byte for byte
    fetched, rendered = fetch_and_render(cluster, tmp_path, SAMPLE, "--engine", "stub")
    names = sorted(p.name for p in rendered.iterdir())
    assert sorted(p.name for p in fetched.iterdir()) == names
    for name in names:
        if name != "manifest.json":
            same = (fetched / name).read_bytes() == (rendered / name).read_bytes()
            assert same, f"{name} differs between submit+fetch and render"
    ours, theirs = check_output(fetched), check_output(rendered)
    assert ours["chapters"] == theirs["chapters"]
    # espeak-ng carries its pitch-flutter phase from one utterance to the next in a
    # process, so its audio differs by a few samples between any two renders: compare
    # the content (chapters, caption words, durations within 1 %)
    fetched, rendered = fetch_and_render(cluster, tmp_path, SAMPLE)
    ours, theirs = check_output(fetched), check_output(rendered)
    for mine, other in zip(ours["chapters"], theirs["chapters"], strict=True):  # type: ignore[call-overload]
        timed = ("duration_ms", "caption_warnings")  # measured on the audio
        assert {k: v for k, v in mine.items() if k not in timed} == {
            k: v for k, v in other.items() if k not in timed
        }
        assert [w["rule"] for w in mine.get("caption_warnings", [])] == [
            w["rule"] for w in other.get("caption_warnings", [])
        ]
        assert abs(mine["duration_ms"] - other["duration_ms"]) <= other["duration_ms"] / 100
        # where cues are cut depends on the timing (reading speed): the words, in order
        assert (
            " ".join(_cue_texts(fetched / mine["captions"]["vtt"])).split()
            == " ".join(_cue_texts(rendered / other["captions"]["vtt"])).split()
        )


def _cue_texts(vtt: Path) -> list[str]:
    return [
        line
        for line in vtt.read_text().splitlines()
        if line and "-->" not in line and line != "WEBVTT" and not line.isdigit()
    ]


def test_kill_9_of_workers_mid_job_loses_and_repeats_nothing(
    cluster: Cluster, tmp_path: Path
) -> None:
    source = book(tmp_path, chapters=8, sentences=20)
    for name in ("w0", "w1", "w2"):
        cluster.start_worker(name)
    cluster.start_beat()
    job_id = cluster.submit(source, "--engine", "stub", "--option", "latency_ms=1500")
    generation = 3
    for _kill in range(5):
        view = _wait_until_running(cluster, job_id)
        assert view["status"] == "running", f"the job ended before 5 kills: {view['status']}"
        time.sleep(1.0)
        oldest = min((n for n in cluster.processes if n.startswith("w")), key=lambda n: int(n[1:]))
        cluster.kill(oldest)  # kill -9 of the whole worker: main process and pool children
        cluster.start_worker(f"w{generation}")
        generation += 1
    view = cluster.wait(job_id, timeout_s=240)
    assert view["status"] == "done", view
    assert view["segments"]["done"] == view["segments"]["total"]
    fetched = cluster.narrate("fetch", job_id, "--out", tmp_path / "out")
    assert fetched.returncode == 0, fetched.stderr
    check_output(tmp_path / "out")
    assert_every_word_once(cluster, job_id, source)


def _wait_until_running(cluster: Cluster, job_id: str) -> dict[str, object]:
    """The job's status once a segment runs on a live worker (or the job ended)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        view = cluster.status(job_id)
        if view["status"] not in ("pending", "running") or view["segments"]["running"] > 0:
            return view
        time.sleep(0.2)
    raise AssertionError(f"no segment started within 30 s\n{cluster.logs()}")


def test_a_fatal_error_fails_the_job_and_status_names_it(cluster: Cluster, tmp_path: Path) -> None:
    source = book(tmp_path, 2, 2, extra="\n# Chapter 3\n\nThis one asks for STUB-FATAL here.\n")
    cluster.start_worker("w1")
    job_id = cluster.submit(source, "--engine", "stub")
    watched = cluster.narrate("watch", job_id, "--quiet", timeout=120)
    assert watched.returncode == 1
    view = cluster.status(job_id)
    assert view["status"] == "failed"
    (failure,) = view["failures"]
    assert failure["chapter"] == 3 and "STUB-FATAL" in failure["text"]
    assert "fatal fault" in failure["error"]
    # the healthy chapters were still stitched
    assert [c["status"] for c in view["chapters"]] == ["done", "done", "failed"]
    text = cluster.narrate("status", job_id)
    assert f"failed: chapter 3 (Chapter 3), segment {failure['segment']}" in text.stdout
    refused = cluster.narrate("fetch", job_id, "--out", tmp_path / "out")
    assert refused.returncode == 1 and "failed" in refused.stderr


def test_partial_job_stitches_what_exists_with_the_gap_marked(
    cluster: Cluster, tmp_path: Path
) -> None:
    source = book(tmp_path, 1, 3, extra="\n# Chapter 2\n\nThis one asks for STUB-FATAL here.\n")
    source.write_text(source.read_text() + "\n# Chapter 3\n\nThe end.\n")
    cluster.start_worker("w1")
    job_id = cluster.submit(source, "--engine", "stub", "--partial")
    view = cluster.wait(job_id)
    assert view["status"] == "partial"
    watched = cluster.narrate("watch", job_id, "--quiet")  # what --partial asked for
    assert watched.returncode == 0 and "partial" in watched.stderr
    assert "fatal fault" in watched.stderr  # the gap's reason is shown
    fetched = cluster.narrate("fetch", job_id, "--out", tmp_path / "out")
    assert fetched.returncode == 0, fetched.stderr
    manifest = check_output(tmp_path / "out")
    chapters = manifest["chapters"]
    assert [len(c.get("gaps", [])) for c in chapters] == [0, 1, 0]  # type: ignore[attr-defined]
    (gap,) = chapters[1]["gaps"]  # type: ignore[index]
    assert gap["end_ms"] - gap["start_ms"] >= 1000 and "fatal fault" in gap["error"]
    assert gap["end_ms"] <= chapters[1]["duration_ms"]  # type: ignore[index]
    words = caption_words(cluster, job_id)
    assert words[2] == ["Chapter", "2"]  # the heading is spoken, the gap is silent
    assert words[3] == ["Chapter", "3", "The", "end."]
    assert [w for w in words[1] if w.startswith("w")] == [
        w for w in source.read_text().split() if w.startswith("w")
    ]


def test_transient_errors_are_retried_until_the_job_succeeds(
    cluster: Cluster, tmp_path: Path
) -> None:
    source = book(tmp_path, 1, 2, extra="\nThis asks for STUB-TRANSIENT once.\n")
    cluster.start_worker("w1", 1, "--beat")  # beat inside the worker: one-machine setups
    job_id = cluster.submit(source, "--engine", "stub")
    view = cluster.wait(job_id)
    assert view["status"] == "done", view


def test_urgent_job_overtakes_a_bulk_job(cluster: Cluster, tmp_path: Path) -> None:
    bulk = book(tmp_path, chapters=2, sentences=60)
    urgent = tmp_path / "bulletin.md"
    urgent.write_text("# News\n\nFirst story today.\n\nSecond story today.\n")
    cluster.start_worker("w1", 1)
    cluster.start_beat()
    bulk_id = cluster.submit(
        bulk, "--engine", "stub", "--option", "latency_ms=150", "--priority", "bulk"
    )
    time.sleep(2)  # the bulk job fills every in-flight slot: ~30 messages wait in Redis
    urgent_id = cluster.submit(
        urgent, "--engine", "stub", "--option", "latency_ms=150", "--priority", "urgent"
    )
    urgent_view = cluster.wait(urgent_id)
    assert urgent_view["status"] == "done"
    assert cluster.status(bulk_id)["status"] == "running", "the urgent job waited for the bulk"
    # released ahead of the bulk backlog, and taken from Redis ahead of the bulk messages
    # already queued there: only a few bulk segments finish while the urgent job runs
    overtaken = _finished_between(cluster, bulk_id, urgent_id)
    assert overtaken <= 4, f"{overtaken} bulk segments finished while the urgent job ran"
    assert cluster.wait(bulk_id)["status"] == "done"


def _finished_between(cluster: Cluster, job_id: str, other_id: str) -> int:
    """Segments of ``job_id`` finished between ``other_id``'s first claim and its end."""
    from sqlalchemy import create_engine, text

    engine = create_engine(cluster.env["NARRATE_DATABASE_URL"])
    try:
        with engine.connect() as connection:
            count = connection.execute(
                text(
                    "SELECT count(*) FROM segments s, jobs o WHERE s.job_id = :job "
                    "AND o.id = :other AND s.finished_at_ms > o.started_at_ms "
                    "AND s.finished_at_ms < o.finished_at_ms"
                ),
                {"job": job_id, "other": other_id},
            ).scalar_one()
    finally:
        engine.dispose()
    return int(count)


def test_cancel_and_retry(cluster: Cluster, tmp_path: Path) -> None:
    source = book(tmp_path, 2, 8)
    job_id = cluster.submit(source, "--engine", "stub")  # no worker yet: nothing starts
    cancelled = cluster.narrate("cancel", job_id)
    assert cancelled.returncode == 0, cancelled.stderr
    view = cluster.status(job_id)
    assert (
        view["status"] == "cancelled" and view["segments"]["cancelled"] == view["segments"]["total"]
    )
    again = cluster.narrate("cancel", job_id)
    assert again.returncode == 2 and "already cancelled" in again.stderr
    refused = cluster.narrate("retry", job_id)
    assert refused.returncode == 2 and "submit the document again" in refused.stderr
    listed = cluster.narrate("jobs", "--json")
    assert [row["job"] for row in json.loads(listed.stdout)] == [job_id]
    missing = cluster.narrate("status", "nosuchjob")
    assert missing.returncode == 2 and "no job 'nosuchjob'" in missing.stderr


def test_a_redis_restart_mid_job_loses_nothing(cluster: Cluster, tmp_path: Path) -> None:
    """Redis without persistence restarts: every queued message and unacked delivery is
    gone, and the throttle state too; the reaper re-sends from the database."""
    import socket
    import subprocess

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [
        "redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
        "--appendonly", "no", "--dir", str(tmp_path),
    ]  # fmt: skip

    def start_redis() -> subprocess.Popen[bytes]:
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    return server
            time.sleep(0.1)
        raise AssertionError("redis-server did not start")

    server = start_redis()
    try:
        cluster.env["NARRATE_BROKER_URL"] = f"redis://127.0.0.1:{port}/0"
        source = book(tmp_path, chapters=4, sentences=16)
        for name in ("w0", "w1"):
            cluster.start_worker(name)
        cluster.start_beat()
        job_id = cluster.submit(source, "--engine", "stub", "--option", "latency_ms=800")
        view = _wait_until_running(cluster, job_id)
        time.sleep(2)
        server.kill()  # a crash: nothing is saved
        server.wait(10)
        time.sleep(3)
        server = start_redis()
        view = cluster.wait(job_id, timeout_s=240)
        assert view["status"] == "done", view
        fetched = cluster.narrate("fetch", job_id, "--out", tmp_path / "out")
        assert fetched.returncode == 0, fetched.stderr
        check_output(tmp_path / "out")
        assert_every_word_once(cluster, job_id, source)
    finally:
        cluster.stop_all()
        server.kill()
        server.wait(10)


def test_cosyvoice_workers_share_one_rate_limit(cluster: Cluster, tmp_path: Path) -> None:
    """Six worker slots on two workers against the CosyVoice simulator (3 tasks/s per
    key, counted at arrival): the Redis throttle keeps every second at 3 or fewer."""
    from renderer.cosyvoice.simulator import SimulatorConfig, SimulatorThread

    simulator = SimulatorThread(SimulatorConfig(rate_limit=3, first_packet_s=0.2)).start()
    try:
        cluster.env.update(
            NARRATE_COSYVOICE_URL=simulator.url,
            DASHSCOPE_API_KEY="distributed-key",
            NARRATE_COSYVOICE_SEGMENT_CHARS="200",
        )
        source = book(tmp_path, chapters=2, sentences=12)
        cluster.start_worker("w1", 3)
        cluster.start_worker("w2", 3)
        cluster.start_beat()
        job_id = cluster.submit(source, "--engine", "cosyvoice", "--format", "wav")
        view = cluster.wait(job_id, timeout_s=240)
        assert view["status"] == "done", view
        stats = simulator.stats()
        assert stats["tasks_started"] >= 20
        assert stats["rejected_by_rate_limit"] == 0
        assert stats["max_tasks_started_in_one_second"] <= 3
        fetched = cluster.narrate("fetch", job_id, "--out", tmp_path / "out")
        assert fetched.returncode == 0, fetched.stderr
        check_output(tmp_path / "out")
    finally:
        simulator.stop()
