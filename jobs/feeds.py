"""Fetching a bulletin's feeds: bounded in time and size, conditional, with a last good copy.

Each feed (an http(s) URL or a file) is fetched with a connect/read timeout, an overall
deadline (a server that drips a byte a second still ends) and a size cap, all feeds at
once on a few threads. An ETag or Last-Modified from the last good fetch goes back as
``If-None-Match``/``If-Modified-Since``, and a 304 reuses the kept copy. A fetch that fails
(unreachable, slow, a 404, too large, not a feed) falls back to the last good copy, and the
feed is reported ``stale``; with no copy it is ``failed``. One bad feed never stops a
bulletin. Kept copies live in ``NARRATE_STORAGE_DIR/feeds``.

Only the bytes are fetched here; :func:`ssml.news.parse_feed` parses them (feedparser is
never handed a URL).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from narrate import __version__
from narrate.errors import NarrateError
from narrate.files import write_bytes_atomic, write_text_atomic
from ssml.news import Feed, parse_feed

MAX_FEED_BYTES = 10 * 1024 * 1024
TIMEOUT_S = 10.0
DEADLINE_S = 30.0
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class FetchedFeed:
    """What one source gave: its items (from this fetch or the kept copy) and its status."""

    url: str
    status: str  # "ok" | "stale" | "failed"
    feed: Feed | None
    error: str | None = None


class _Refused(Exception):
    """A fetch that did not give a usable feed: says why."""


class _NoRedirectOffScheme(urllib.request.HTTPRedirectHandler):
    """Redirects stay on http(s) (urllib would follow one to ftp: or file:)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        if not newurl.startswith(("http://", "https://")):
            raise _Refused(f"redirected to {newurl!r}, not an http(s) URL")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class FeedFetcher:
    """Fetches feeds for bulletins, keeping the last good copy of each under ``cache_dir``."""

    def __init__(
        self,
        cache_dir: Path,
        *,
        timeout_s: float = TIMEOUT_S,
        deadline_s: float = DEADLINE_S,
        max_bytes: int = MAX_FEED_BYTES,
    ) -> None:
        self.cache_dir = cache_dir
        self.timeout_s = timeout_s
        self.deadline_s = deadline_s
        self.max_bytes = max_bytes
        self.opener = urllib.request.build_opener(_NoRedirectOffScheme())

    def fetch_all(self, locations: Sequence[str]) -> list[FetchedFeed]:
        """Every feed, at once (in order); never raises for a bad feed."""
        if not locations:
            return []
        with ThreadPoolExecutor(max_workers=min(8, len(locations))) as pool:
            return list(pool.map(self.fetch, locations))

    def fetch(self, location: str) -> FetchedFeed:
        kept = self._kept(location)
        try:
            data, headers = self._get(location, kept)
            if data is None:  # 304 Not Modified: the kept copy is current
                assert kept is not None
                return FetchedFeed(location, "ok", parse_feed(kept[0], _label(location)))
            feed = parse_feed(data, _label(location))
        except (_Refused, NarrateError, OSError, ValueError, http.client.HTTPException) as exc:
            return self._fallback(location, kept, _reason(exc))
        self._keep(location, data, headers)
        return FetchedFeed(location, "ok", feed)

    def _fallback(
        self, location: str, kept: tuple[bytes, dict[str, str]] | None, error: str
    ) -> FetchedFeed:
        if kept is None:
            return FetchedFeed(location, "failed", None, error)
        try:
            feed = parse_feed(kept[0], _label(location))
        except NarrateError as exc:  # a kept copy that no longer parses: as good as none
            return FetchedFeed(location, "failed", None, f"{error}; the kept copy: {exc}")
        return FetchedFeed(location, "stale", feed, f"{error}; read the copy kept from before")

    # --- fetching --------------------------------------------------------------------------

    def _get(
        self, location: str, kept: tuple[bytes, dict[str, str]] | None
    ) -> tuple[bytes | None, dict[str, str]]:
        if not location.startswith(("http://", "https://")):
            return self._read_file(Path(location)), {}
        request = urllib.request.Request(location, headers={"User-Agent": f"narrate/{__version__}"})
        if kept is not None:
            if kept[1].get("etag"):
                request.add_header("If-None-Match", kept[1]["etag"])
            if kept[1].get("last_modified"):
                request.add_header("If-Modified-Since", kept[1]["last_modified"])
        started = time.monotonic()
        try:
            with self.opener.open(request, timeout=self.timeout_s) as response:
                declared = response.headers.get("Content-Length")
                if declared and declared.isdigit() and int(declared) > self.max_bytes:
                    raise _Refused(f"it is {int(declared) // 1024 // 1024} MB, over the cap")
                data = self._read_capped(response, started)
                headers = {
                    "etag": response.headers.get("ETag") or "",
                    "last_modified": response.headers.get("Last-Modified") or "",
                }
        except urllib.error.HTTPError as exc:
            if exc.code == 304 and kept is not None:
                return None, kept[1]
            raise _Refused(f"the server answered {exc.code} {exc.reason}") from None
        except urllib.error.URLError as exc:
            raise _Refused(f"cannot reach it ({exc.reason})") from None
        except TimeoutError:
            raise _Refused(f"no answer within {self.timeout_s:g} s") from None
        return data, headers

    def _read_capped(self, stream: object, started: float) -> bytes:
        chunks: list[bytes] = []
        size = 0
        read = stream.read  # type: ignore[attr-defined]
        while chunk := read(_CHUNK):
            size += len(chunk)
            if size > self.max_bytes:
                raise _Refused(f"it is larger than {self.max_bytes // 1024 // 1024} MB")
            if time.monotonic() - started > self.deadline_s:
                raise _Refused(f"it took longer than {self.deadline_s:g} s to arrive")
            chunks.append(chunk)
        return b"".join(chunks)

    def _read_file(self, path: Path) -> bytes:
        if not path.is_file():
            raise _Refused("there is no such file")
        if path.stat().st_size > self.max_bytes:
            raise _Refused(f"it is larger than {self.max_bytes // 1024 // 1024} MB")
        return path.read_bytes()

    # --- the kept copy ----------------------------------------------------------------------

    def _paths(self, location: str) -> tuple[Path, Path]:
        key = hashlib.sha256(location.encode()).hexdigest()[:32]
        return self.cache_dir / f"{key}.xml", self.cache_dir / f"{key}.json"

    def _kept(self, location: str) -> tuple[bytes, dict[str, str]] | None:
        body, meta = self._paths(location)
        try:
            return body.read_bytes(), json.loads(meta.read_text())
        except (OSError, ValueError):
            return None

    def _keep(self, location: str, data: bytes, headers: dict[str, str]) -> None:
        body, meta = self._paths(location)
        write_bytes_atomic(body, data)
        write_text_atomic(meta, json.dumps({**headers, "url": location, "kept_at": time.time()}))


def _label(location: str) -> str:
    return location.rsplit("/", 1)[-1] or location


def _reason(exc: Exception) -> str:
    if isinstance(exc, NarrateError):
        return exc.message
    return str(exc) or type(exc).__name__
