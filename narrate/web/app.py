"""``narrate serve``: the web page and its JSON API, a thin shell over the typed functions
of :mod:`jobs` (the same ones the CLI calls), on Starlette.

Pages: ``/`` (jobs with live progress, the submission form), ``/jobs/{job}`` (a job's
chapters, failures, downloads), ``/jobs/{job}/chapters/{n}`` (the player: audio, the text
with the spoken word lit, search). The API under ``/api/`` answers with the same typed
results the CLI prints with ``--json`` (:func:`jobs.serialize.to_data`); an error is
``{"error": message, "hint": hint}`` with a 4xx/5xx status. Security:
:mod:`narrate.web.security`.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import click
import jinja2
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection, Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jobs.clock import clock_ms
from jobs.control import cancel_job, job_status, list_jobs
from jobs.export import word_track
from jobs.priority import Priority
from jobs.reading import chapter_audio, chapter_reading, search_words
from jobs.runner import Runner, checked_job_id, download_path, upload_path
from jobs.serialize import dumps
from jobs.storage import Storage
from jobs.views import JobView
from narrate.errors import (
    ConfigurationError,
    DocumentTooLargeError,
    InputError,
    JobFailedError,
    JobNotFoundError,
    NarrateError,
    RetryableError,
    UsageError,
    VoiceNotFoundError,
)
from narrate.settings import Settings
from narrate.web import forms
from narrate.web.security import (
    COOKIE,
    CSRF_HEADER,
    CSRF_PARAM,
    Guard,
    Redactor,
)

log = logging.getLogger("narrate.web")

HERE = Path(__file__).resolve().parent
MB = 1024 * 1024
#: room for the form's other fields beside the capped files
FORM_SLACK_BYTES = 256 * 1024
#: the document field of the submission form
DOCUMENT_FIELD = "document"
#: jobs the list shows
LIST_LIMIT = 50
#: the page's answers are never cached (they change as jobs move)
NO_STORE = {"cache-control": "no-store"}
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
#: files of a job's output open in an opaque origin: no script, no access to the page
DOWNLOAD_CSP = "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:"
MEDIA_TYPES = {
    ".mp3": "audio/mpeg",
    ".wav": "audio/wav",
    ".opus": "audio/ogg",
    ".ogg": "audio/ogg",
    ".flac": "audio/flac",
    ".m4a": "audio/mp4",
    ".m4b": "audio/mp4",
    ".vtt": "text/vtt; charset=utf-8",
    ".srt": "text/plain; charset=utf-8",
    ".json": "application/json",
    ".html": "text/html; charset=utf-8",
    ".epub": "application/epub+zip",
    ".txt": "text/plain; charset=utf-8",
    ".xml": "application/xml",
}


@dataclass(frozen=True)
class Web:
    """What every route uses."""

    settings: Settings
    runner: Runner
    guard: Guard
    redact: Redactor
    now_ms: Callable[[], int]
    templates: jinja2.Environment
    command: click.Command
    fields: tuple[forms.Field, ...]

    @property
    def factory(self) -> Any:
        return self.runner.factory

    @property
    def storage(self) -> Storage:
        return Storage(self.settings.storage_dir)

    @property
    def mode(self) -> str:
        return "distributed" if self.runner.distributed else "embedded"


def create_app(
    settings: Settings,
    runner: Runner,
    *,
    host: str = "127.0.0.1",
    now_ms: Callable[[], int] = clock_ms,
    env: Mapping[str, str] | None = None,
) -> Starlette:
    """The web application on ``settings``; ``runner`` (started by the caller) submits and
    runs jobs; ``host`` is where it listens (it decides the Host headers it answers)."""
    from narrate.cli import cli

    command = cli.commands["submit"]
    redact = Redactor.from_env(env, settings.serve_token)
    web = Web(
        settings=settings,
        runner=runner,
        guard=Guard.for_host(host, settings.serve_token),
        redact=redact,
        now_ms=now_ms,
        templates=_templates(redact),
        command=command,
        fields=forms.form_fields(command, distributed=runner.distributed),
    )
    routes = [
        Route("/", index),
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/jobs", submit_page, methods=["POST"]),
        Route("/jobs/{job}", job_page),
        Route("/jobs/{job}/cancel", cancel_page, methods=["POST"]),
        Route("/jobs/{job}/retry", retry_page, methods=["POST"]),
        Route("/jobs/{job}/chapters/{number:int}", player_page),
        Route("/jobs/{job}/chapters/{number:int}/audio", audio),
        Route("/jobs/{job}/files/{name}", download),
        Route("/api/session", api_session),
        Route("/api/jobs", api_jobs, methods=["GET"]),
        Route("/api/jobs", api_submit, methods=["POST"]),
        Route("/api/jobs/{job}", api_job),
        Route("/api/jobs/{job}/cancel", api_cancel, methods=["POST"]),
        Route("/api/jobs/{job}/retry", api_retry, methods=["POST"]),
        Route("/api/jobs/{job}/downloads", api_downloads),
        Route("/api/jobs/{job}/words", api_words),
        Route("/api/jobs/{job}/chapters/{number:int}", api_chapter),
        Route("/api/jobs/{job}/search", api_search),
        Mount("/static", app=StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(routes=routes)
    app.state.web = web
    app.add_middleware(GuardMiddleware, web=web)
    return app


def _templates(redact: Redactor) -> jinja2.Environment:
    def finalize(value: object) -> object:
        if isinstance(value, Markup):
            return Markup(redact(str(value)))
        if isinstance(value, str):
            return redact(value)
        return value

    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        finalize=finalize,
        undefined=jinja2.StrictUndefined,
    )
    environment.filters["duration"] = _duration
    environment.filters["size"] = _size
    return environment


def _duration(ms: int | None) -> str:
    if ms is None:
        return ""
    seconds = int(ms) // 1000
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _size(size_bytes: int) -> str:
    if size_bytes >= MB:
        return f"{size_bytes / MB:.1f} MB"
    return f"{max(1, round(size_bytes / 1024))} KB"


def _web(connection: HTTPConnection) -> Web:
    web: Web = connection.app.state.web
    return web


# --- errors -----------------------------------------------------------------------------


class UploadTooLarge(Exception):
    """The request body passed the upload cap while it streamed in."""


def status_of(exc: NarrateError) -> int:
    """The HTTP status of an error a user can cause (or the service's trouble)."""
    if isinstance(exc, JobNotFoundError):
        return 404
    if isinstance(exc, DocumentTooLargeError):
        return 413
    if isinstance(exc, ConfigurationError):
        return 503  # the server's configuration (a broker down): not the request's fault
    if isinstance(exc, InputError | UsageError | VoiceNotFoundError):
        return 400
    if isinstance(exc, JobFailedError):
        return 409
    if isinstance(exc, RetryableError):
        return 503
    return 500


def _too_large(web: Web) -> DocumentTooLargeError:
    cap = web.settings.serve_max_upload_mb
    return DocumentTooLargeError(
        f"the upload is larger than the server's cap of {cap} MB",
        hint="NARRATE_SERVE_MAX_UPLOAD_MB raises the cap; or render it with `narrate render`",
    )


def error_body(web: Web, exc: NarrateError) -> dict[str, str | None]:
    return {"error": web.redact(exc.message), "hint": web.redact(exc.hint) if exc.hint else None}


def api_error(web: Web, exc: NarrateError) -> JSONResponse:
    return JSONResponse(error_body(web, exc), status_code=status_of(exc), headers=NO_STORE)


def page_error(web: Web, request: HTTPConnection, exc: NarrateError) -> HTMLResponse:
    return render(
        web,
        request,
        "error.html",
        {"message": exc.message, "hint": exc.hint, "status": status_of(exc)},
        status_code=status_of(exc),
    )


def _internal(exc: Exception) -> NarrateError:
    if os.environ.get("NARRATE_DEBUG"):
        log.exception("internal error")
    else:
        log.error("internal error: %s: %s", type(exc).__name__, exc)
    return NarrateError(
        f"internal error ({type(exc).__name__})",
        hint="the server's log says more (NARRATE_DEBUG=1 shows the traceback); please report it",
    )


# --- middleware: host, authentication, CSRF, headers, errors ---------------------------

#: reachable without the token: the login form and its stylesheet
PUBLIC_PATHS = ("/login", "/static/narrate.css")


class GuardMiddleware:
    """Checks every request against :class:`~narrate.web.security.Guard`, adds the
    security headers, and turns any error into a message (never a traceback)."""

    def __init__(self, app: ASGIApp, web: Web) -> None:
        self.app = app
        self.web = web

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        web, connection = self.web, HTTPConnection(scope)
        path: str = scope["path"]
        is_api = path.startswith("/api/")
        refusal = self._refusal(connection, path, scope["method"], is_api)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _value in headers}
                for name, value in _security_headers(path):
                    if name.encode() not in names:
                        headers.append((name.encode(), value.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception as exc:
            if started:
                raise
            error = exc if isinstance(exc, NarrateError) else _internal(exc)
            if isinstance(exc, HTTPException):
                error = UsageError(str(exc.detail))
            response = api_error(web, error) if is_api else page_error(web, connection, error)
            if isinstance(exc, HTTPException):
                response.status_code = exc.status_code
            await response(scope, receive, send_with_headers)

    def _refusal(
        self, connection: HTTPConnection, path: str, method: str, is_api: bool
    ) -> Response | None:
        guard = self.web.guard
        if not guard.host_ok(connection.headers.get("host", "")):
            return PlainTextResponse(
                "narrate serve: unexpected Host header (serve on 127.0.0.1 and open "
                "http://127.0.0.1:PORT/, or set a token to serve other names)",
                status_code=400,
            )
        bearer = guard.bearer_ok(connection.headers)
        signed_in = bearer or guard.cookie_ok(connection.cookies)
        if guard.enabled and path not in PUBLIC_PATHS and not signed_in:
            return self._unauthenticated(connection, path, method, is_api)
        if method not in ("GET", "HEAD", "OPTIONS") and not bearer:
            offered = connection.headers.get(CSRF_HEADER) or connection.query_params.get(
                CSRF_PARAM, ""
            )
            if not guard.csrf_ok(offered, connection.cookies):
                error = UsageError(
                    "this request carries no valid CSRF token (the page is out of date, or the "
                    "request did not come from it)",
                    hint="reload the page and try again; API clients send "
                    "X-CSRF-Token from GET /api/session, or Authorization: Bearer",
                )
                response = (
                    api_error(self.web, error)
                    if is_api
                    else page_error(self.web, connection, error)
                )
                response.status_code = 403
                return response
        return None

    def _unauthenticated(
        self, connection: HTTPConnection, path: str, method: str, is_api: bool
    ) -> Response:
        error = UsageError(
            "this server needs its token",
            hint="send Authorization: Bearer <NARRATE_SERVE_TOKEN>, or log in at /login",
        )
        if is_api:
            response: Response = api_error(self.web, error)
            response.status_code = 401
            response.headers["www-authenticate"] = 'Bearer realm="narrate"'
            return response
        if method in ("GET", "HEAD"):
            target = path + (f"?{connection.url.query}" if connection.url.query else "")
            return RedirectResponse(f"/login?next={quote(target)}", status_code=303)
        response = page_error(self.web, connection, error)
        response.status_code = 401
        return response


def _security_headers(path: str) -> Iterable[tuple[str, str]]:
    yield "x-content-type-options", "nosniff"
    yield "referrer-policy", "no-referrer"
    yield "x-frame-options", "DENY"
    yield "content-security-policy", PAGE_CSP
    if not path.startswith("/static/"):
        yield "cache-control", "no-store"  # routes that may be cached say so themselves


# --- rendering --------------------------------------------------------------------------


def render(
    web: Web,
    request: HTTPConnection,
    name: str,
    context: Mapping[str, Any],
    *,
    status_code: int = 200,
) -> HTMLResponse:
    template = web.templates.get_template(name)
    page = template.render(
        {
            "mode": web.mode,
            "auth": web.guard.enabled,
            "logged_in": web.guard.enabled and web.guard.cookie_ok(request.cookies),
            "csrf": web.guard.csrf_token(request.cookies),
            "csrf_param": CSRF_PARAM,
            "max_upload_mb": web.settings.serve_max_upload_mb,
            "page": name.removesuffix(".html"),
            **context,
        }
    )
    return HTMLResponse(page, status_code=status_code, headers=NO_STORE)


def json_response(web: Web, value: object, status_code: int = 200) -> Response:
    """A typed result as JSON (through :func:`jobs.serialize.dumps`, secrets redacted)."""
    return Response(
        web.redact(dumps(value, indent=None)),
        status_code=status_code,
        media_type="application/json",
        headers=NO_STORE,
    )


# --- pages ------------------------------------------------------------------------------


def index(request: Request) -> HTMLResponse:
    web = _web(request)
    return _index(web, request)


def _index(
    web: Web,
    request: HTTPConnection,
    *,
    error: NarrateError | None = None,
    values: Mapping[str, str] | None = None,
) -> HTMLResponse:
    rows = list_jobs(web.factory, LIST_LIMIT)
    return render(
        web,
        request,
        "index.html",
        {
            "rows": rows,
            "fields": web.fields,
            "values": values or {},
            "error": error,
            "document_field": DOCUMENT_FIELD,
            "accept": ",".join(_document_extensions()),
            "formats": ", ".join(_document_formats()),
        },
        status_code=status_of(error) if error else 200,
    )


def _document_extensions() -> tuple[str, ...]:
    from ssml.ingest import EXTENSIONS

    return tuple(EXTENSIONS)


def _document_formats() -> tuple[str, ...]:
    """The formats the ingest reads, as people name them (Markdown, EPUB, ...)."""
    from ssml.ingest import EXTENSIONS

    names = {"markdown": "Markdown", "text": "plain text"}
    return tuple(names.get(f, f.upper()) for f in dict.fromkeys(EXTENSIONS.values()))


def login_page(request: Request) -> Response:
    web = _web(request)
    if not web.guard.enabled:
        return RedirectResponse("/", status_code=303)
    return render(web, request, "login.html", {"next": _local(request.query_params.get("next"))})


async def login(request: Request) -> Response:
    web = _web(request)
    if not web.guard.enabled:
        return RedirectResponse("/", status_code=303)
    form = await request.form(max_files=0, max_fields=10)
    offered = str(form.get("token", ""))
    target = _local(str(form.get("next", "")))
    if not web.guard.token_matches(offered):
        return render(
            web,
            request,
            "login.html",
            {"next": target, "failed": True},
            status_code=401,
        )
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        COOKIE,
        web.guard.session_value(),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


def logout(request: Request) -> Response:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


def _local(target: str | None) -> str:
    """A redirect target on this site only (``/...``, never ``//host`` or a URL)."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return "/"


async def submit_page(request: Request) -> Response:
    web = _web(request)
    values: dict[str, str] = {}
    try:
        summary_id = await _submit(web, request, values)
    except NarrateError as exc:
        return _index(web, request, error=exc, values=values)
    return RedirectResponse(f"/jobs/{summary_id}", status_code=303)


def job_page(request: Request) -> Response:
    web = _web(request)
    job_id = checked_job_id(request.path_params["job"])
    view = _status(web, job_id)
    downloads = web.runner.downloads(job_id)
    return render(
        web,
        request,
        "job.html",
        {
            "view": view,
            "note": web.runner.note(job_id),
            "downloads": downloads,
            "can_retry": _can_retry(web, view),
            "rerun": web.runner.distributed or web.runner.owns(job_id),
        },
    )


def _status(web: Web, job_id: str) -> JobView:
    return job_status(
        web.factory, job_id, web.now_ms(), reap_interval_s=web.settings.reap_interval_s
    )


def _can_retry(web: Web, view: JobView) -> bool:
    if web.runner.distributed:
        return view.status in ("failed", "partial")
    return view.status in ("failed", "partial", "cancelled") and web.runner.owns(view.job)


def cancel_page(request: Request) -> Response:
    web = _web(request)
    job_id = checked_job_id(request.path_params["job"])
    cancel_job(web.factory, job_id, web.now_ms())
    return RedirectResponse(_local(request.query_params.get("next") or f"/jobs/{job_id}"), 303)


async def retry_page(request: Request) -> Response:
    web = _web(request)
    job_id = checked_job_id(request.path_params["job"])
    result = await run_in_threadpool(web.runner.retry, job_id)
    return RedirectResponse(f"/jobs/{result.job}", status_code=303)


def player_page(request: Request) -> Response:
    web = _web(request)
    job_id = checked_job_id(request.path_params["job"])
    number = int(request.path_params["number"])
    view = _status(web, job_id)
    chapter = next((c for c in view.chapters if c.index == number), None)
    if chapter is None:
        numbers = ", ".join(str(c.index) for c in view.chapters)
        raise UsageError(f"job {job_id} has no chapter {number}", hint=f"its chapters: {numbers}")
    if chapter.status != "done":
        raise JobFailedError(
            f"chapter {number} ({chapter.title}) is {chapter.status}: nothing to play yet",
            hint="the job page shows its progress",
        )
    done = [c.index for c in view.chapters if c.status == "done"]
    position = done.index(number)
    return render(
        web,
        request,
        "player.html",
        {
            "view": view,
            "chapter": chapter,
            "previous": done[position - 1] if position > 0 else None,
            "next": done[position + 1] if position + 1 < len(done) else None,
        },
    )


def audio(request: Request) -> Response:
    """A finished chapter's audio, with HTTP Range support (browsers seek with it)."""
    web = _web(request)
    job_id = checked_job_id(request.path_params["job"])
    path = chapter_audio(web.factory, web.storage, job_id, int(request.path_params["number"]))
    return FileResponse(
        path,
        media_type=MEDIA_TYPES.get(path.suffix, "application/octet-stream"),
        headers={"cache-control": "private, max-age=3600"},
    )


def download(request: Request) -> Response:
    """A file the job's export manifest names, from the job's own export folder only."""
    web = _web(request)
    job_id = checked_job_id(request.path_params["job"])
    name = str(request.path_params["name"])
    path = download_path(web.runner.paths, job_id, name)
    headers = {"content-security-policy": DOWNLOAD_CSP, "cache-control": "private, max-age=60"}
    if request.query_params.get("download"):
        headers["content-disposition"] = f"attachment; filename*=UTF-8''{quote(name)}"
    return FileResponse(
        path, media_type=MEDIA_TYPES.get(path.suffix, "application/octet-stream"), headers=headers
    )


# --- the API ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionInfo:
    """What a client needs to know of this server."""

    mode: str
    csrf: str
    auth: bool
    max_upload_mb: int
    fields: tuple[forms.Field, ...]


def api_session(request: Request) -> Response:
    web = _web(request)
    info = SessionInfo(
        web.mode,
        web.guard.csrf_token(request.cookies),
        web.guard.enabled,
        web.settings.serve_max_upload_mb,
        web.fields,
    )
    return json_response(web, info)


def api_jobs(request: Request) -> Response:
    web = _web(request)
    limit = _whole(request.query_params.get("limit"), LIST_LIMIT, "limit")
    return json_response(web, list_jobs(web.factory, min(limit, 500)))


async def api_submit(request: Request) -> Response:
    web = _web(request)
    job_id = await _submit(web, request, {})
    view = await run_in_threadpool(_status, web, job_id)
    return json_response(web, view, status_code=201)


def api_job(request: Request) -> Response:
    web = _web(request)
    return json_response(web, _status(web, checked_job_id(request.path_params["job"])))


def api_cancel(request: Request) -> Response:
    web = _web(request)
    job_id = checked_job_id(request.path_params["job"])
    return json_response(web, cancel_job(web.factory, job_id, web.now_ms()))


async def api_retry(request: Request) -> Response:
    web = _web(request)
    job_id = checked_job_id(request.path_params["job"])
    return json_response(web, await run_in_threadpool(web.runner.retry, job_id))


def api_downloads(request: Request) -> Response:
    web = _web(request)
    downloads = web.runner.downloads(checked_job_id(request.path_params["job"]))
    return json_response(web, downloads)


def api_words(request: Request) -> Response:
    web = _web(request)
    job_id = checked_job_id(request.path_params["job"])
    chapter = request.query_params.get("chapter")
    number = _whole(chapter, 0, "chapter") if chapter else None
    return json_response(web, word_track(web.factory, job_id, number))


def api_chapter(request: Request) -> Response:
    web = _web(request)
    job_id = checked_job_id(request.path_params["job"])
    return json_response(
        web, chapter_reading(web.factory, job_id, int(request.path_params["number"]))
    )


def api_search(request: Request) -> Response:
    web = _web(request)
    job_id = checked_job_id(request.path_params["job"])
    query = request.query_params.get("q", "")
    return json_response(web, search_words(web.factory, job_id, query))


def _whole(text: str | None, default: int, name: str) -> int:
    if not text:
        return default
    if not text.isdigit() or int(text) < 1:
        raise UsageError(f"{name} must be a positive whole number, not {text[:40]!r}")
    return int(text)


# --- submitting ---------------------------------------------------------------------------


def _capped(receive: Receive, limit_bytes: int) -> Receive:
    """``receive`` that stops the request once its body passes ``limit_bytes``."""
    seen = 0

    async def capped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit_bytes:
                raise UploadTooLarge
        return message

    return capped


async def _submit(web: Web, request: Request, values: dict[str, str]) -> str:
    """Read the submission (the upload capped while it streams in), check it as the
    command line would, and submit it; returns the new job's id. ``values`` is filled with
    the form's text fields (to show the form again after an error)."""
    cap_bytes = web.settings.serve_max_upload_mb * MB
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap_bytes + FORM_SLACK_BYTES:
        raise _too_large(web)
    capped = Request(request.scope, _capped(request.receive, cap_bytes + FORM_SLACK_BYTES))
    try:
        form = await capped.form(max_files=8, max_fields=200, max_part_size=256 * 1024)
    except UploadTooLarge:
        raise _too_large(web) from None
    except HTTPException as exc:
        raise UsageError(
            f"the form could not be read: {exc.detail}",
            hint="send multipart/form-data with the document in the 'document' field",
        ) from None
    saved: list[Path] = []
    try:
        for key, value in form.multi_items():
            if isinstance(value, str):
                values[key] = value
        return await _submit_form(web, form, values, saved)
    except BaseException:
        for path in saved:  # nothing is kept of a submission that was refused
            shutil.rmtree(path.parent, ignore_errors=True)
        raise
    finally:
        await form.close()


async def _submit_form(
    web: Web, form: FormData, values: Mapping[str, str], saved: list[Path]
) -> str:
    document = form.get(DOCUMENT_FIELD)
    if not isinstance(document, UploadFile) or not document.filename:
        raise UsageError("choose a document to render", hint="Markdown, text, HTML, EPUB or SSML")
    cap_bytes = web.settings.serve_max_upload_mb * MB
    input_path = await run_in_threadpool(_save_upload, web, document, cap_bytes)
    saved.append(input_path)
    files: dict[str, Path] = {}
    for item in web.fields:
        upload = form.get(item.name) if item.kind == "file" else None
        if isinstance(upload, UploadFile) and upload.filename:
            files[item.name] = await run_in_threadpool(_save_upload, web, upload, cap_bytes)
            saved.append(files[item.name])
    argv = forms.arguments(web.fields, values, files, input_path)
    submission = forms.parse(web.command, argv)
    request = _render_request(submission.options)
    summary = await run_in_threadpool(
        lambda: web.runner.submit(
            request,
            priority=Priority.parse(submission.priority),
            allow_partial=submission.allow_partial,
        )
    )
    return summary.job_id


def _render_request(options: dict[str, Any]) -> Any:
    from narrate.cli import render_request

    try:
        return render_request(**options)
    except click.UsageError as exc:
        raise UsageError(exc.format_message()) from None


def _save_upload(web: Web, upload: UploadFile, cap_bytes: int) -> Path:
    """Copy an uploaded file under the storage folder, a safe name in a folder of its own."""
    target = upload_path(web.runner.paths, upload.filename or "document")
    written = 0
    with target.open("wb") as out:
        while chunk := upload.file.read(1024 * 1024):
            written += len(chunk)
            if written > cap_bytes:
                out.close()
                shutil.rmtree(target.parent, ignore_errors=True)
                raise _too_large(web)
            out.write(chunk)
    return target
