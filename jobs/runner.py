"""Jobs in a long-lived process (``narrate serve``): submitting, running embedded jobs in the
background, resuming them after a restart, and exporting finished jobs for download.

With a broker (``NARRATE_BROKER_URL``) a submission goes to the workers
(:func:`jobs.submit.submit`) and a retry is theirs too (:func:`jobs.submit.retry`). Without
one, the process runs the jobs it was given itself, one at a time in submission order, each
in a child process that runs :func:`jobs.local.run_job` on the local pool (so the process
that submitted never blocks, and stopping it stops the job cleanly: the child's pool is
terminated and the job resumes at the next start). A re-run of an embedded job ("retry")
stores the same request again as a new job: every segment already synthesized is reused.

Files live under ``<storage>/serve/`` (:class:`ServePaths`): ``uploads/<random>/<name>``
(documents as uploaded, under a safe name), ``jobs/<job>.json`` (the jobs this process was
given to run, with their request, so it can resume and re-run them) and
``exports/<job>/`` (a finished job's files and ``manifest.json``, as ``narrate fetch``
writes them; ``exports/<job>.exported`` says which end of the job they are from, so a job
retried since is exported again, and its time is when they were last asked for). The
exports are a cache of what storage holds: beyond ``NARRATE_SERVE_MAX_EXPORTS_MB`` the least
recently used are removed (:func:`exports_to_remove`) and made again when asked for. Only
one process runs embedded jobs from one storage folder at a time (a lock file), so what it
finds half-done at its start is its own.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import fcntl
import json
import logging
import multiprocessing
import os
import queue
import re
import shutil
import signal
import threading
import time
import types
import typing
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from sqlalchemy import func, select, update

from jobs import context as worker_context
from jobs.clock import clock_ms
from jobs.creation import JobSummary
from jobs.db import Factory, make_engine, session_factory, transaction
from jobs.export import MANIFEST, export_job, load_job
from jobs.models import (
    JOB_FINAL,
    Chapter,
    ChapterStatus,
    Job,
    JobStatus,
    Segment,
    SegmentStatus,
)
from jobs.priority import Priority
from jobs.render import RenderRequest, prepare, store_job
from jobs.serialize import to_data
from jobs.storage import Storage
from jobs.views import Retried
from narrate.errors import ConfigurationError, JobNotFoundError, NarrateError, UsageError
from narrate.files import write_text_atomic
from narrate.settings import Settings
from ssml.ingest import EXTENSIONS as INGEST_EXTENSIONS
from ssml.slug import slugify

log = logging.getLogger(__name__)

#: a job id as jobs.creation makes them; anything else never names a folder
_JOB_ID = re.compile(r"[0-9a-f]{32}")


# --- where things live ----------------------------------------------------------------


@dataclass(frozen=True)
class ServePaths:
    """The server's folders under the storage folder."""

    root: Path

    @classmethod
    def of(cls, storage_dir: Path) -> ServePaths:
        return cls(storage_dir / "serve")

    @property
    def uploads(self) -> Path:
        return self.root / "uploads"

    @property
    def jobs(self) -> Path:
        return self.root / "jobs"

    @property
    def exports(self) -> Path:
        return self.root / "exports"

    @property
    def lock(self) -> Path:
        return self.root / "runner.lock"

    def export_dir(self, job_id: str) -> Path:
        return self.exports / checked_job_id(job_id)

    def exported(self, job_id: str) -> Path:
        """Beside a job's export folder: the end time of the job it was exported from (a
        job retried since has newer files to export)."""
        return self.exports / f"{checked_job_id(job_id)}.exported"

    def record(self, job_id: str) -> Path:
        return self.jobs / f"{checked_job_id(job_id)}.json"


@dataclass(frozen=True)
class ExportUse:
    """A finished export folder: how much it holds and when it was last asked for."""

    job_id: str
    size_bytes: int
    used_ms: int


def exports_to_remove(
    exports: list[ExportUse], max_bytes: int, keep: frozenset[str] = frozenset()
) -> list[str]:
    """The least recently used exports to remove so that the rest hold at most
    ``max_bytes`` (pure); those in ``keep`` (being made or just made) are never removed."""
    total = sum(e.size_bytes for e in exports)
    removed: list[str] = []
    for export in sorted(exports, key=lambda e: (e.used_ms, e.job_id)):
        if total <= max_bytes:
            break
        if export.job_id in keep:
            continue
        removed.append(export.job_id)
        total -= export.size_bytes
    return removed


def finished_exports(paths: ServePaths) -> list[ExportUse]:
    """The export folders with their marker (complete ones), their sizes and last use."""
    found = []
    for marker in paths.exports.glob("*.exported"):
        job_id = marker.name.removesuffix(".exported")
        folder = paths.exports / job_id
        if not _JOB_ID.fullmatch(job_id) or not folder.is_dir():
            continue
        try:
            used_ms = int(marker.stat().st_mtime * 1000)
            size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
        except OSError:  # removed meanwhile
            continue
        found.append(ExportUse(job_id, size, used_ms))
    return found


def checked_job_id(job_id: str) -> str:
    """``job_id`` if it looks like a job id (32 hex digits), else JobNotFoundError: a job id
    from a URL can then never name a path outside the server's folders."""
    if not _JOB_ID.fullmatch(job_id):
        raise JobNotFoundError(f"no job {job_id[:80]!r}", hint="a job id is 32 hex digits")
    return job_id


#: extensions kept on uploads: every format the ingest reads (it goes by them), lexicons
#: and covers
UPLOAD_EXTENSIONS: tuple[str, ...] = (*INGEST_EXTENSIONS, ".pls", ".xml", ".jpg", ".jpeg", ".png")


def upload_path(paths: ServePaths, filename: str) -> Path:
    """A new, unique path for an uploaded file: a folder of its own under ``uploads/`` and
    a safe name made from the client's (``../../x.md`` -> ``x.md``); the extension is kept
    only when it is one narrate reads."""
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    stem, dot, extension = base.rpartition(".")
    if not dot:
        stem, extension = base, ""
    suffix = f".{extension.lower()}" if f".{extension.lower()}" in UPLOAD_EXTENSIONS else ""
    folder = paths.uploads / uuid.uuid4().hex
    folder.mkdir(parents=True, exist_ok=False)
    return folder / f"{slugify(stem, fallback='document', max_length=80)}{suffix}"


# --- typed results --------------------------------------------------------------------


@dataclass(frozen=True)
class Rerendered:
    """An embedded job rendered again as a new job (segments already made are reused)."""

    job: str
    previous: str
    segments_total: int
    segments_reused: int


@dataclass(frozen=True)
class Download:
    """A file of a finished job's export folder, as its manifest names it."""

    name: str
    #: where the manifest names it: ``chapters.audio``, ``chapters.captions.vtt``,
    #: ``book.audio``, ``master.report``, ``read_along``, ..., or ``manifest``
    kind: str
    #: the chapter it belongs to, if any
    chapter: int | None
    size_bytes: int
    #: what it is, for people ("audio", "WebVTT", "read-along EPUB", ...)
    label: str = ""


#: labels of the manifest's keys (others are labelled by their last key)
LABELS = {
    "chapters.audio": "audio",
    "chapters.captions.vtt": "WebVTT",
    "chapters.captions.srt": "SubRip",
    "chapters.files.audio": "audio part",
    "chapters.files.captions.vtt": "WebVTT part",
    "chapters.files.captions.srt": "SubRip part",
    "book.audio": "audiobook",
    "book.captions": "book captions (WebVTT)",
    "master.report": "mastering report",
    "read_along": "read-along EPUB",
    "manifest": "manifest",
}


def label_of(kind: str) -> str:
    return LABELS.get(kind) or kind.rsplit(".", 1)[-1].replace("_", " ")


@dataclass(frozen=True)
class Downloads:
    """A job's files: ``ready`` (listed), ``exporting`` (being written), ``waiting`` (the job
    has not finished), ``unavailable`` (it failed or was cancelled: ``message`` says why)."""

    job: str
    state: str
    message: str | None
    files: tuple[Download, ...]


def downloads_in(job_id: str, folder: Path) -> tuple[Download, ...] | None:
    """The files ``folder/manifest.json`` names (and the manifest), or None without a
    manifest (the export is not complete). Only plain names of files in the folder count."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    found: dict[str, tuple[str, int | None]] = {}

    def walk(value: object, kind: str, chapter: int | None) -> None:
        if isinstance(value, Mapping):
            for key, inner in value.items():
                walk(inner, f"{kind}.{key}" if kind else str(key), chapter)
        elif isinstance(value, list):
            for item in value:
                inner_chapter = chapter
                if kind == "chapters" and isinstance(item, Mapping):
                    index = item.get("index")
                    inner_chapter = index if isinstance(index, int) else chapter
                walk(item, kind, inner_chapter)
        elif (
            isinstance(value, str)
            and value not in found
            and _plain_name(value)
            and (folder / value).is_file()
        ):
            found[value] = (kind, chapter)

    walk({k: v for k, v in manifest.items() if k not in ("job", "input")}, "", None)
    found[MANIFEST] = ("manifest", None)
    return tuple(
        Download(name, kind, chapter, (folder / name).stat().st_size, label_of(kind))
        for name, (kind, chapter) in found.items()
    )


def _plain_name(name: str) -> bool:
    """A file name with no folder part (nothing that could lead out of a folder)."""
    return bool(name) and "/" not in name and "\\" not in name and name not in (".", "..")


def download_path(paths: ServePaths, job_id: str, name: str) -> Path:
    """The file ``name`` of a job's export folder, if its manifest names it: never a path
    outside the folder (a name with a separator, ``..``, or a link out is refused)."""
    folder = paths.export_dir(job_id)
    listed = downloads_in(job_id, folder)
    if listed is None or name not in {d.name for d in listed}:
        raise JobNotFoundError(
            f"job {job_id} has no file {name[:120]!r} to download",
            hint="the job page lists its files",
        )
    root = folder.resolve()
    path = (folder / name).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise JobNotFoundError(f"job {job_id} has no file {name[:120]!r} to download")
    return path


# --- requests kept as JSON (to resume and re-run) ---------------------------------------


def request_to_json(request: RenderRequest) -> dict[str, Any]:
    data: dict[str, Any] = to_data(request)
    return data


def request_from_json(data: Mapping[str, Any]) -> RenderRequest:
    """A request written by :func:`request_to_json` (fields it lacks take their defaults;
    fields this version does not know are ignored)."""
    built: RenderRequest = _decode(RenderRequest, data)
    return built


def _decode(kind: Any, value: Any) -> Any:
    """``value`` (JSON data) as the type ``kind``: dataclasses, optionals, tuples, paths,
    enums and plain values."""
    if value is None:
        return None
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        return _decode(options[0], value) if len(options) == 1 else value
    if dataclasses.is_dataclass(kind) and isinstance(kind, type):
        hints = typing.get_type_hints(kind)
        known = {f.name for f in dataclasses.fields(kind) if f.init}
        return kind(**{k: _decode(hints[k], v) for k, v in value.items() if k in known})
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_decode(args[0], v) for v in value)
        return tuple(_decode(a, v) for a, v in zip(args, value, strict=False))
    if origin is list:
        return [_decode(args[0], v) for v in value] if args else list(value)
    if kind is Path:
        return Path(value)
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return kind(value)
    if kind in (str, int, float, bool):
        return kind(value)
    return value


# --- the runner -----------------------------------------------------------------------


class Runner:
    """Submits, runs (embedded mode), resumes, re-runs and exports jobs for a long-lived
    process. :meth:`start` before use and :meth:`stop` at the end; thread-safe."""

    def __init__(self, settings: Settings, *, now_ms: Callable[[], int] = clock_ms) -> None:
        self.settings = settings
        self.now_ms = now_ms
        self.paths = ServePaths.of(settings.storage_dir)
        self.distributed = settings.broker_url is not None
        self.factory: Factory = session_factory(make_engine(settings.database_url))
        self._queue: queue.Queue[str] = queue.Queue()
        self._queued: set[str] = set()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._child: multiprocessing.process.BaseProcess | None = None
        self._running: str | None = None
        self._notes: dict[str, str] = {}
        self._exports: dict[str, Future[None]] = {}
        #: job -> (its finished_at_ms when the export failed, why)
        self._export_errors: dict[str, tuple[int, str]] = {}
        self._exporter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="narrate-export")
        self._lock_file: IO[bytes] | None = None
        self._context: worker_context.Context | None = None

    # lifecycle

    def start(self) -> None:
        """Take the storage folder's runner lock (embedded mode), then resume the jobs this
        server was running when it stopped, oldest first."""
        self.paths.root.mkdir(parents=True, exist_ok=True)
        if self.distributed:
            return
        self._lock_file = _take_lock(self.paths.lock)
        self._context = worker_context.configure(self.settings)
        for job_id in self.unfinished():
            self._enqueue(job_id)
        self._thread = threading.Thread(target=self._loop, name="narrate-runner", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop the job running now (it resumes at the next start) and the exports."""
        self._stop.set()
        child = self._child
        if child is not None and child.is_alive():
            child.terminate()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self._exporter.shutdown(wait=True, cancel_futures=True)
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def unfinished(self) -> list[str]:
        """Jobs this server was given to run that have not reached a final status."""
        if not self.paths.jobs.is_dir():
            return []
        records = []
        for path in self.paths.jobs.glob("*.json"):
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            records.append((int(record.get("created_at_ms", 0)), path.stem))
        ids = [job_id for _at, job_id in sorted(records) if _JOB_ID.fullmatch(job_id)]
        with transaction(self.factory) as session:
            statuses = dict(
                session.execute(select(Job.id, Job.status).where(Job.id.in_(ids))).all()
            )
        return [j for j in ids if j in statuses and statuses[j] not in JOB_FINAL]

    # submitting

    def submit(
        self,
        request: RenderRequest,
        *,
        priority: Priority = Priority.NORMAL,
        allow_partial: bool = False,
    ) -> JobSummary:
        """Check and store a job (nothing is stored when the input or an option is wrong),
        then run it: on the workers with a broker, else here in the background."""
        if self.distributed:
            from jobs.submit import submit

            return submit(self.settings, request, priority=priority, allow_partial=allow_partial)
        if self._context is None:
            raise UsageError("the runner is not started", hint="call Runner.start() first")
        prepared = prepare(request)
        summary = store_job(self._context, request, prepared, allow_partial=allow_partial)
        record = {
            "job": summary.job_id,
            "created_at_ms": self.now_ms(),
            "allow_partial": allow_partial,
            "request": request_to_json(request),
        }
        write_text_atomic(self.paths.record(summary.job_id), json.dumps(record, indent=2))
        self._enqueue(summary.job_id)
        return summary

    def retry(self, job_id: str) -> Retried | Rerendered:
        """A failed (or partial, or cancelled) job again: its failed segments back to the
        workers with a broker; here, the same request as a new job (done segments reused)."""
        checked_job_id(job_id)
        if self.distributed:
            from jobs.submit import retry

            return retry(self.settings, job_id)
        job = load_job(self.factory, job_id)
        record = self._record(job_id)
        if record is None:
            raise UsageError(
                f"job {job_id} was rendered by `narrate render`, not by this server",
                hint="run the same `narrate render` again: its finished segments are reused",
            )
        if job.status not in JOB_FINAL:
            raise UsageError(
                f"job {job_id} is {job.status}: only a job that has ended is rendered again",
                hint="wait for it to end, or cancel it first",
            )
        if job.status == JobStatus.DONE:
            raise UsageError(f"job {job_id} is done", hint="nothing to render again")
        request = request_from_json(record["request"])
        summary = self.submit(request, allow_partial=bool(record.get("allow_partial")))
        return Rerendered(summary.job_id, job_id, summary.segments_total, summary.segments_reused)

    def note(self, job_id: str) -> str | None:
        """What keeps a job of this server from moving, if anything (its run stopped)."""
        with self._lock:
            return self._notes.get(job_id)

    def owns(self, job_id: str) -> bool:
        """Whether this server runs ``job_id`` (it was submitted here, embedded)."""
        return self._record(job_id) is not None

    def _record(self, job_id: str) -> dict[str, Any] | None:
        try:
            loaded: dict[str, Any] = json.loads(self.paths.record(job_id).read_text("utf-8"))
        except (OSError, ValueError):
            return None
        return loaded

    # downloads

    def downloads(self, job_id: str) -> Downloads:
        """A job's files for download; a finished job without them (or whose files are
        older than its end: it was retried since) is exported in the background
        (``exporting`` until its manifest is written)."""
        folder = self.paths.export_dir(job_id)
        job = load_job(self.factory, job_id)
        exported = job.status in (JobStatus.DONE, JobStatus.PARTIAL)
        if job.status not in JOB_FINAL or job_id == self._running:
            return Downloads(job_id, "waiting", "the job has not finished", ())
        if not exported:
            why = "was cancelled" if job.status == JobStatus.CANCELLED else "failed"
            return Downloads(job_id, "unavailable", f"the job {why}: it has no files", ())
        finished_ms = job.finished_at_ms or 0
        with self._lock:
            if job_id not in self._exports:
                listed = downloads_in(job_id, folder)
                if listed is not None and self._exported_for(job_id) == finished_ms:
                    with contextlib.suppress(OSError):  # used now: the last to be removed
                        os.utime(self.paths.exported(job_id))
                    return Downloads(job_id, "ready", None, listed)
                error = self._export_errors.get(job_id)
                if error is not None and error[0] == finished_ms:
                    return Downloads(job_id, "unavailable", error[1], ())
                if self._stop.is_set():
                    return Downloads(job_id, "waiting", "the server is stopping", ())
                self._exports[job_id] = self._exporter.submit(self._export, job_id, finished_ms)
        return Downloads(job_id, "exporting", "the files are being written", ())

    def _export(self, job_id: str, finished_ms: int) -> None:
        try:
            storage = Storage(self.settings.storage_dir)
            self.paths.exported(job_id).unlink(missing_ok=True)
            export_job(self.factory, storage, job_id, self.paths.export_dir(job_id))
            write_text_atomic(self.paths.exported(job_id), str(finished_ms))
            self._prune_exports(keep=job_id)
        except NarrateError as exc:
            with self._lock:
                self._export_errors[job_id] = (finished_ms, exc.message)
        except Exception as exc:
            log.exception("exporting job %s", job_id)
            with self._lock:
                self._export_errors[job_id] = (
                    finished_ms,
                    f"internal error ({type(exc).__name__})",
                )
        finally:
            with self._lock:
                self._exports.pop(job_id, None)

    def _prune_exports(self, keep: str) -> None:
        """Remove the least recently used exports beyond ``NARRATE_SERVE_MAX_EXPORTS_MB``
        (never ``keep``, nor one being made)."""
        with self._lock:
            busy = frozenset({keep, *self._exports})
        limit = self.settings.serve_max_exports_mb * 1024 * 1024
        for job_id in exports_to_remove(finished_exports(self.paths), limit, busy):
            self.paths.exported(job_id).unlink(missing_ok=True)  # first: never half a folder
            shutil.rmtree(self.paths.export_dir(job_id), ignore_errors=True)
            log.info("removed the downloads of job %s (exports over their limit)", job_id)

    def _exported_for(self, job_id: str) -> int | None:
        """The end time (``finished_at_ms``) of the job whose files the folder holds."""
        try:
            return int(self.paths.exported(job_id).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def wait_exports(self, timeout_s: float = 60.0) -> None:
        """Wait for the exports under way (tests, benchmarks)."""
        deadline = time.monotonic() + timeout_s
        while True:
            with self._lock:
                pending = list(self._exports.values())
            if not pending:
                return
            pending[0].result(max(0.0, deadline - time.monotonic()))

    # running (embedded)

    def _enqueue(self, job_id: str) -> None:
        with self._lock:
            if job_id in self._queued:
                return
            self._queued.add(job_id)
        self._queue.put(job_id)

    def idle(self) -> bool:
        """Nothing queued or running."""
        with self._lock:
            return not self._queued and self._running is None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                job_id = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            with self._lock:
                self._running = job_id
                self._queued.discard(job_id)
            try:
                self._run(job_id)
            except Exception:  # keep serving the queue whatever happened to one job
                log.exception("running job %s", job_id)
            finally:
                with self._lock:
                    self._running = None
            if not self._stop.is_set():
                self.downloads_if_done(job_id)

    def downloads_if_done(self, job_id: str) -> None:
        with contextlib.suppress(NarrateError):
            self.downloads(job_id)

    def _run(self, job_id: str) -> None:
        job = load_job(self.factory, job_id)
        if job.status in JOB_FINAL:
            return
        spawn = multiprocessing.get_context("spawn")
        child = spawn.Process(
            target=run_owned_job,
            args=(self.settings, job_id),
            name=f"narrate-job-{job_id[:8]}",
        )
        child.start()
        self._child = child
        while child.is_alive():
            child.join(0.2)
            if self._stop.is_set() and child.is_alive():
                child.terminate()
                child.join(30)
                if child.is_alive():
                    child.kill()
                    child.join()
                return
        self._child = None
        if child.exitcode != 0:
            message = (
                f"the local run of this job stopped (exit code {child.exitcode}); "
                "it resumes when `narrate serve` starts again"
            )
            with self._lock:
                self._notes[job_id] = message
            log.error("job %s: %s", job_id, message)
        else:
            with self._lock:
                self._notes.pop(job_id, None)


def _take_lock(path: Path) -> IO[bytes]:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+b")  # noqa: SIM115 - held open while the runner runs
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise ConfigurationError(
            f"another `narrate serve` runs jobs from this storage folder ({path.parent.parent})",
            hint="stop it, or give this one its own NARRATE_HOME or NARRATE_STORAGE_DIR",
        ) from None
    return handle


def run_owned_job(settings: Settings, job_id: str) -> None:
    """The child process of one embedded job: take back what a previous run of this server
    left half-done, then run the job on the local pool. SIGTERM stops it cleanly."""

    def stop(_signum: int, _frame: object) -> None:
        raise SystemExit(143)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server stops us with SIGTERM
    from jobs.local import run_job

    ctx = worker_context.configure(settings)
    wait_for_abandoned(ctx.factory, job_id, now_ms=clock_ms, sleep=time.sleep)
    try:
        run_job(settings, ctx.factory, job_id, workers=settings.workers, quiet=True)
    except BaseException:
        # stopped: run_job has terminated its pool, so what it held is held by no one;
        # say so now, and the next start need not wait for the leases to lapse
        release_held(ctx.factory, job_id)
        raise


def release_held(factory: Factory, job_id: str) -> None:
    """Let a job's running segments and stitches lapse at once (their processes are gone).

    A late answer of a dying process changes nothing: every step is guarded by the claim it
    holds (:mod:`jobs.claims`), and files are written atomically under content hashes."""
    with transaction(factory) as session:
        session.execute(
            update(Segment)
            .where(Segment.job_id == job_id, Segment.status == SegmentStatus.RUNNING)
            .values(lease_until_ms=0)
        )
        session.execute(
            update(Chapter)
            .where(Chapter.job_id == job_id, Chapter.status == ChapterStatus.STITCHING)
            .values(stitch_lease_until_ms=0)
        )


def wait_for_abandoned(
    factory: Factory,
    job_id: str,
    *,
    now_ms: Callable[[], int],
    sleep: Callable[[float], None],
) -> int:
    """Make a job's work that a stopped run left half-done claimable again; returns how many
    chapter stitches were released.

    Segments and stitches that run under a lease renew it while their process lives; a
    stopped run's leases lapse within one lease period. This waits until they have (at
    most that long), then puts chapters left ``stitching`` back to ``pending`` so
    :func:`jobs.claims.claim_ready_chapters` claims them again (segments with a lapsed lease
    are claimable as they are). Only for a job no other process runs (the runner's lock).
    """
    with transaction(factory) as session:
        latest = max(
            session.scalar(
                select(func.max(Segment.lease_until_ms)).where(
                    Segment.job_id == job_id, Segment.status == SegmentStatus.RUNNING
                )
            )
            or 0,
            session.scalar(
                select(func.max(Chapter.stitch_lease_until_ms)).where(
                    Chapter.job_id == job_id, Chapter.status == ChapterStatus.STITCHING
                )
            )
            or 0,
        )
    while (remaining_ms := latest - now_ms()) >= 0:
        sleep(min(1.0, remaining_ms / 1000 + 0.01))
    with transaction(factory) as session:
        released = session.execute(
            update(Chapter)
            .where(Chapter.job_id == job_id, Chapter.status == ChapterStatus.STITCHING)
            .values(
                status=ChapterStatus.PENDING, stitch_enqueued_at_ms=None, stitch_lease_until_ms=None
            )
        ).rowcount  # type: ignore[attr-defined]
    return int(released)
