"""The web page's routes through Starlette's TestClient: pages, the JSON API's typed results,
audio with Range, downloads confined to a job's export folder, the submission form's
checks, CSRF, the token, the Host check, secrets never shown, errors without tracebacks."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from starlette.testclient import TestClient

from jobs.control import list_jobs
from jobs.db import ensure_schema, transaction
from jobs.export import word_track
from jobs.models import Job
from jobs.render import RenderRequest
from jobs.runner import Runner
from jobs.serialize import to_data
from narrate.errors import ConfigurationError
from narrate.settings import Settings
from narrate.web.app import create_app
from narrate.web.security import Redactor, check_exposure
from tests.conftest import SAMPLE

BASE = "http://127.0.0.1:8000"
SECRET = "sk-do-not-show-0123456789"
TOKEN = "a-long-enough-token-for-tests"


@dataclass
class Site:
    client: TestClient
    runner: Runner
    settings: Settings
    job: str
    csrf: str


def _settings(home: Path, **changes: Any) -> Settings:
    settings = Settings(
        database_url=f"sqlite:///{home / 'narrate.db'}",
        storage_dir=home / "storage",
        broker_url=None,
        workers=1,
    )
    return replace(settings, **changes)


def _wait_done(runner: Runner, job: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        with transaction(runner.factory) as session:
            if session.get_one(Job, job).status == "done" and runner.idle():
                break
        assert time.monotonic() < deadline, "the job did not finish"
        time.sleep(0.1)
    while runner.downloads(job).state != "ready":
        assert time.monotonic() < deadline, "the job was not exported"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    home = tmp_path_factory.mktemp("home")
    settings = _settings(home)
    ensure_schema(settings.database_url)
    runner = Runner(settings)
    runner.start()
    job = runner.submit(RenderRequest(SAMPLE, engine="stub")).job_id
    _wait_done(runner, job)
    app = create_app(settings, runner, env={"DASHSCOPE_API_KEY": SECRET})
    try:
        with TestClient(app, base_url=BASE) as client:
            csrf = client.get("/api/session").json()["csrf"]
            yield Site(client, runner, settings, job, csrf)
    finally:
        runner.stop()


def _no_traceback(text: str) -> None:
    assert "Traceback" not in text and 'File "' not in text


# --- pages -----------------------------------------------------------------------------


def test_pages(site: Site) -> None:
    index = site.client.get("/")
    assert index.status_code == 200
    assert site.job in index.text
    for name in ("engine", "voice", "audio_format", "master", "rate", "chapters", "credits"):
        assert f'name="{name}"' in index.text
    assert 'name="priority"' not in index.text  # embedded: one queue
    page = site.client.get(f"/jobs/{site.job}")
    assert page.status_code == 200
    assert page.text.count('class="listen"') == 3
    assert "01-chapter-1-the-storm.mp3" in page.text and "manifest.json" in page.text
    player = site.client.get(f"/jobs/{site.job}/chapters/2")
    assert player.status_code == 200
    assert f'src="/jobs/{site.job}/chapters/2/audio"' in player.text
    assert "Chapter 2: The Silence" in player.text
    csp = player.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert player.headers["x-content-type-options"] == "nosniff"
    # no inline scripts: the page's behaviour is the packaged static file
    assert (
        "<script>" not in player.text and site.client.get("/static/narrate.js").status_code == 200
    )


def test_unknown_jobs_and_chapters(site: Site) -> None:
    for path in (f"/jobs/{'0' * 32}", "/jobs/not-a-job", f"/jobs/{site.job}/chapters/9"):
        response = site.client.get(path)
        assert response.status_code in (400, 404), path
        assert "<h1>" in response.text
        _no_traceback(response.text)
    api = site.client.get(f"/api/jobs/{'0' * 32}")
    assert api.status_code == 404
    assert api.json()["error"].startswith("no job") and api.json()["hint"]


# --- the API's typed results ---------------------------------------------------------------


def test_api_gives_the_typed_results(site: Site) -> None:
    factory = site.runner.factory
    assert site.client.get("/api/jobs").json() == to_data(list_jobs(factory, 50))
    view = site.client.get(f"/api/jobs/{site.job}").json()
    assert view["job"] == site.job and view["status"] == "done"
    assert set(view) >= {"segments", "chapters", "failures", "retrying", "eta_s", "attention"}
    words = site.client.get(f"/api/jobs/{site.job}/words?chapter=1").json()
    assert words == to_data(word_track(factory, site.job, 1))
    chapter = site.client.get(f"/api/jobs/{site.job}/chapters/1").json()
    assert chapter["words"] == words["chapters"][0]["words"]
    text = chapter["text"]
    for word in chapter["words"]:
        assert text[word["char_start"] : word["char_end"]].startswith(word["text"][:1])
    downloads = site.client.get(f"/api/jobs/{site.job}/downloads").json()
    assert downloads["state"] == "ready"
    assert {"chapters.audio", "chapters.captions.vtt", "manifest"} <= {
        d["kind"] for d in downloads["files"]
    }


def test_search_finds_where_words_are_said(site: Site) -> None:
    found = site.client.get(f"/api/jobs/{site.job}/search", params={"q": "clock"}).json()
    assert found["hits"] and not found["truncated"]
    chapters = [hit["chapter"] for hit in found["hits"]]
    assert chapters == sorted(chapters) and len(set(chapters)) >= 2
    track = site.client.get(f"/api/jobs/{site.job}/words").json()["chapters"]
    for hit in found["hits"]:
        context = hit["context"][hit["match_start"] : hit["match_end"]]
        assert context.lower() == "clock"
        words = track[hit["chapter"] - 1]["words"]
        assert any(w["start_ms"] == hit["start_ms"] and w["text"] == hit["word"] for w in words)
    phrase = site.client.get(f"/api/jobs/{site.job}/search", params={"q": "the   clock"})
    assert phrase.json()["hits"]
    assert not site.client.get(f"/api/jobs/{site.job}/search", params={"q": "lock"}).json()[
        "hits"
    ]  # words match at their start only
    empty = site.client.get(f"/api/jobs/{site.job}/search", params={"q": "  "})
    assert empty.status_code == 400 and empty.json()["error"] == "the search is empty"


# --- files ------------------------------------------------------------------------------


def test_audio_is_served_with_ranges(site: Site) -> None:
    whole = site.client.get(f"/jobs/{site.job}/chapters/1/audio")
    assert whole.status_code == 200 and whole.headers["content-type"] == "audio/mpeg"
    assert whole.headers["accept-ranges"] == "bytes"
    part = site.client.get(f"/jobs/{site.job}/chapters/1/audio", headers={"Range": "bytes=100-199"})
    assert part.status_code == 206
    assert part.content == whole.content[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(whole.content)}"


def test_downloads_stay_in_the_jobs_export_folder(site: Site) -> None:
    listed = site.client.get(f"/api/jobs/{site.job}/downloads").json()["files"]
    for item in listed:
        response = site.client.get(f"/jobs/{site.job}/files/{item['name']}")
        assert response.status_code == 200, item
        assert len(response.content) == item["size_bytes"]
        assert response.headers["content-security-policy"].startswith("sandbox")
    attached = site.client.get(f"/jobs/{site.job}/files/manifest.json?download=1")
    assert attached.headers["content-disposition"].startswith("attachment")
    (site.settings.storage_dir / "serve" / "exports" / site.job / "stray.txt").write_text("x")
    for name in (
        "..%2F..%2Fnarrate.db",
        "stray.txt",
        "%2Fetc%2Fpasswd",
        "..%5C..%5Cnarrate.db",
    ):
        response = site.client.get(f"/jobs/{site.job}/files/{name}")
        assert response.status_code == 404, name
        assert b"SQLite format" not in response.content  # a message, never the file
    traversal = site.client.get(f"/jobs/{site.job}/files/../../narrate.db")
    assert traversal.status_code == 404


# --- submitting ------------------------------------------------------------------------------


def _post(site: Site, path: str, files: dict[str, Any], data: dict[str, str]) -> Any:
    return site.client.post(path, files=files, data=data, headers={"X-CSRF-Token": site.csrf})


def test_a_submission_is_checked_as_the_command_line_checks_it(site: Site) -> None:
    uploads = site.settings.storage_dir / "serve" / "uploads"
    uploads.mkdir(parents=True, exist_ok=True)
    before = set(uploads.iterdir())
    cases = [
        ({}, {"engine": "stub"}, "choose a document to render"),
        ({"document": ("empty.md", b"   \n")}, {}, "no text"),
        ({"document": ("book.md", b"# A\n\nHi.\n")}, {"rate": "abc"}, "Invalid value for '--rate'"),
        ({"document": ("book.md", b"# A\n\nHi.\n")}, {"rate": "7"}, "rate"),
        ({"document": ("book.md", b"# A\n\nHi.\n")}, {"engine": "nope"}, "'nope' is not one of"),
        (
            {"document": ("book.md", b"# A\n\nHi.\n")},
            {"engine": "stub", "engine_options": "oops"},
            "is not NAME=VALUE",
        ),
        ({"document": ("book.md", b"# A\n\nHi.\n")}, {"chapters": "7-9"}, "chapter"),
        ({"document": ("x.epub", b"PK\x03\x04 not a zip")}, {}, ""),
    ]
    for files, data, message in cases:
        response = _post(site, "/api/jobs", files, data)
        assert response.status_code == 400, (data, response.text)
        body = response.json()
        assert message.lower() in (body["error"] + (body["hint"] or "")).lower(), body
        _no_traceback(response.text)
    assert set(uploads.iterdir()) == before  # nothing kept of a refused submission
    # the page shows the form again with the message and what was typed
    page = _post(site, "/jobs?csrf=" + site.csrf, {"document": ("b.md", b"# A\n\nHi.\n")}, {
        "rate": "abc", "title": "My <b>title</b>"})  # fmt: skip
    assert page.status_code == 400
    assert "Invalid value for &#39;--rate&#39;" in page.text
    assert 'value="My &lt;b&gt;title&lt;/b&gt;"' in page.text


def test_uploads_are_capped_while_they_stream(site: Site) -> None:
    settings = replace(site.settings, serve_max_upload_mb=1)
    app = create_app(settings, site.runner)
    big = b"# Big\n\n" + b"word " * 300_000  # 1.5 MB
    with TestClient(app, base_url=BASE) as client:
        csrf = client.get("/api/session").json()["csrf"]
        response = client.post(
            "/api/jobs", files={"document": ("big.md", big)}, headers={"X-CSRF-Token": csrf}
        )
        assert response.status_code == 413
        assert "cap of 1 MB" in response.json()["error"]
        assert "NARRATE_SERVE_MAX_UPLOAD_MB" in response.json()["hint"]

        def chunks() -> Iterator[bytes]:  # no Content-Length: stopped while it streams
            yield b"--x\r\nContent-Disposition: form-data; name=document; filename=a.md\r\n\r\n"
            for _ in range(40):
                yield b"w" * 65536
            yield b"\r\n--x--\r\n"

        streamed = client.post(
            "/api/jobs",
            content=chunks(),
            headers={"X-CSRF-Token": csrf, "Content-Type": "multipart/form-data; boundary=x"},
        )
        assert streamed.status_code == 413


def test_a_submission_through_the_api_runs(site: Site) -> None:
    response = _post(
        site,
        "/api/jobs",
        {"document": ("../../short story.md", b"# One\n\nA short story.\n")},
        {"engine": "stub", "audio_format": "wav", "credits": "on", "title": "Short"},
    )
    assert response.status_code == 201, response.text
    view = response.json()
    assert view["engine"] == "stub" and view["title"] == "One"
    assert Path(view["input"]).name == "short-story.md"
    assert Path(view["input"]).is_relative_to(site.settings.storage_dir / "serve" / "uploads")
    assert view["chapters"][0]["title"].lower().startswith("opening credits")
    _wait_done(site.runner, view["job"])
    names = {
        d["name"] for d in site.client.get(f"/api/jobs/{view['job']}/downloads").json()["files"]
    }
    assert any(name.endswith(".wav") for name in names)


# --- actions, CSRF, Host ------------------------------------------------------------------------


def test_state_changes_need_the_csrf_token(site: Site) -> None:
    for path in (f"/api/jobs/{site.job}/cancel", f"/api/jobs/{site.job}/retry", "/api/jobs"):
        response = site.client.post(path)
        assert response.status_code == 403, path
        assert "CSRF" in response.json()["error"]
    form = site.client.post(f"/jobs/{site.job}/cancel?csrf=forged")
    assert form.status_code == 403 and "reload the page" in form.text
    # with the token, the request goes through to the job (which is done: nothing to cancel)
    done = site.client.post(f"/api/jobs/{site.job}/cancel", headers={"X-CSRF-Token": site.csrf})
    assert done.status_code == 400 and "already done" in done.json()["error"]
    assert site.client.get(f"/jobs/{site.job}/cancel").status_code == 405  # never a GET


def test_cancel_and_retry_from_the_page(site: Site, tmp_path: Path) -> None:
    slow = RenderRequest(SAMPLE, engine="stub", engine_options=(("latency_ms", "2000"),))
    job = site.runner.submit(slow).job_id
    response = site.client.post(
        f"/jobs/{job}/cancel?csrf={site.csrf}&next=/", follow_redirects=False
    )
    assert response.status_code == 303 and response.headers["location"] == "/"
    assert site.client.get(f"/api/jobs/{job}").json()["status"] == "cancelled"
    again = site.client.post(f"/jobs/{job}/retry?csrf={site.csrf}", follow_redirects=False)
    assert again.status_code == 303
    new_job = again.headers["location"].rsplit("/", 1)[-1]
    assert new_job != job
    assert (
        site.client.post(f"/api/jobs/{new_job}/cancel", headers={"X-CSRF-Token": site.csrf}).json()[
            "segments_dropped"
        ]
        > 0
    )
    deadline = time.monotonic() + 60
    while not site.runner.idle():
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_only_local_host_names_are_served_on_loopback(site: Site) -> None:
    for host in ("127.0.0.1:8000", "localhost:8000", "[::1]:8000", "localhost"):
        assert site.client.get("/api/jobs", headers={"Host": host}).status_code == 200, host
    rebound = site.client.get("/api/jobs", headers={"Host": "attacker.example:8000"})
    assert rebound.status_code == 400


# --- secrets and errors ---------------------------------------------------------------------


def test_secrets_are_never_shown(site: Site) -> None:
    with transaction(site.runner.factory) as session:
        session.execute(
            update(Job).where(Job.id == site.job).values(error=f"auth failed for key {SECRET}")
        )
    try:
        for path in ("/", f"/jobs/{site.job}", f"/api/jobs/{site.job}", "/api/session"):
            response = site.client.get(path)
            assert SECRET not in response.text, path
        assert "auth failed for key ***" in site.client.get(f"/api/jobs/{site.job}").text
    finally:
        with transaction(site.runner.factory) as session:
            session.execute(update(Job).where(Job.id == site.job).values(error=None))
    redact = Redactor.from_env(
        {
            "DASHSCOPE_API_KEY": "abc123456",
            "X": "y",
            "NARRATE_DATABASE_URL": "postgresql://u:pw12345@h/db",
        }
    )
    assert redact("key abc123456 pw12345 y") == "key *** *** y"


def test_errors_are_messages_not_tracebacks(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    import narrate.web.app as web_app

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("boom at /secret/path")

    monkeypatch.setattr(web_app, "list_jobs", broken)
    api = site.client.get("/api/jobs")
    assert api.status_code == 500
    assert api.json()["error"] == "internal error (RuntimeError)"
    page = site.client.get("/")
    assert page.status_code == 500 and "internal error (RuntimeError)" in page.text
    for response in (api, page):
        _no_traceback(response.text)
        assert "/secret/path" not in response.text


# --- the token ------------------------------------------------------------------------------


def test_a_token_guards_every_route(site: Site) -> None:
    settings = replace(site.settings, serve_token=TOKEN)
    app = create_app(settings, site.runner, host="0.0.0.0")
    with TestClient(app, base_url="http://narrate.example") as client:
        for path in ("/api/jobs", f"/api/jobs/{site.job}", f"/api/jobs/{site.job}/words"):
            response = client.get(path)
            assert response.status_code == 401, path
            assert response.headers["www-authenticate"].startswith("Bearer")
        for path in (
            f"/jobs/{site.job}/chapters/1/audio",
            f"/jobs/{site.job}/files/manifest.json",
            "/static/narrate.js",
        ):
            assert client.get(path, follow_redirects=False).status_code in (303, 401), path
        assert client.get("/static/narrate.css").status_code == 200  # the login page's style
        page = client.get(f"/jobs/{site.job}", follow_redirects=False)
        assert page.status_code == 303
        assert page.headers["location"] == f"/login?next=/jobs/{site.job}"
        wrong = client.get("/api/jobs", headers={"Authorization": "Bearer not-the-token-at-all"})
        assert wrong.status_code == 401
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        assert client.get("/api/jobs", headers=bearer).status_code == 200
        # bearer requests need no CSRF token (browsers never add the header by themselves)
        cancel = client.post(f"/api/jobs/{site.job}/cancel", headers=bearer)
        assert cancel.status_code == 400 and "already done" in cancel.text
        # the browser: a login form, then an HttpOnly SameSite=Strict cookie that is not the token
        login_page = client.get("/login?next=/jobs/" + site.job)
        csrf = re.search(r'action="/login\?csrf=([0-9a-f]+)"', login_page.text)
        assert csrf
        failed = client.post(f"/login?csrf={csrf.group(1)}", data={"token": "nope", "next": "/"})
        assert failed.status_code == 401 and "not the token" in failed.text
        logged = client.post(
            f"/login?csrf={csrf.group(1)}",
            data={"token": TOKEN, "next": "//evil.example/"},
            follow_redirects=False,
        )
        assert logged.status_code == 303 and logged.headers["location"] == "/"
        cookie = logged.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie
        assert TOKEN not in cookie
        assert client.get(f"/jobs/{site.job}").status_code == 200
        assert client.get(f"/jobs/{site.job}/chapters/1/audio").status_code == 200
        # the session's CSRF token is not the anonymous one from the login page
        session_csrf = client.get("/api/session").json()["csrf"]
        assert session_csrf != csrf.group(1)
        assert client.post(f"/jobs/{site.job}/cancel?csrf={csrf.group(1)}").status_code == 403
        assert TOKEN not in client.get("/").text


def test_exposure_needs_a_token() -> None:
    check_exposure("127.0.0.1", None)
    check_exposure("::1", None)
    check_exposure("localhost", None)
    for host in ("0.0.0.0", "::", "192.0.2.7", "example.org"):
        with pytest.raises(ConfigurationError, match="NARRATE_SERVE_TOKEN"):
            check_exposure(host, None)
        check_exposure(host, TOKEN)
    with pytest.raises(ConfigurationError, match="too short"):
        check_exposure("0.0.0.0", "short")


def test_the_form_offers_every_option_of_submit() -> None:
    from narrate.cli import cli
    from narrate.web import forms

    command = cli.commands["submit"]
    names = {f.name for f in forms.form_fields(command, distributed=True)}
    options = {p.name for p in command.params} - {"input_path"}
    assert names == options
    fields = forms.form_fields(command, distributed=False)
    argv = forms.arguments(
        fields,
        {"engine": "stub", "rate": "1.5", "credits": "on", "engine_options": "a=1\n\nb=2"},
        {"lexicon": Path("w.pls")},
        Path("in.md"),
    )
    parsed = forms.parse(command, argv)
    typed = ["in.md", "--engine", "stub", "--rate", "1.5", "--credits"]
    typed += ["--option", "a=1", "--option", "b=2", "--lexicon", "w.pls"]
    by_cli = command.make_context("submit", typed).params
    assert parsed.options == {
        k: v for k, v in by_cli.items() if k not in ("priority", "allow_partial")
    }
