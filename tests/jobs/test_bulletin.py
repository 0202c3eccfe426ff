# ruff: noqa: E501 - the feeds below are test data, written out as a server would send them
"""Bulletins end to end: a loopback HTTP server serves the corpus feeds, feeds written here
(a story told twice, stale and undated items, HTML with scripts and entities, a feed in
Latin-1) and hostile ones (XXE, billion laughs, 50 MB, one that never answers, a 404); the
bulletin is rendered through ``narrate bulletin run`` and checked on its files."""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import feedparser
import pytest

from tests.conftest import CORPUS

NOW = dt.datetime(2026, 12, 2, 18, 0, tzinfo=dt.UTC)


def rfc822(hours_ago: float) -> str:
    return email.utils.format_datetime(NOW - dt.timedelta(hours=hours_ago))


STORIES = [
    (
        "Harbour plan approved after long debate",
        "The council approved the harbour plan after a debate that lasted most of the night. Work on the new quay begins in the spring, and the old warehouses will become a market. Residents asked for more parking, and the council promised a study before the summer. The plan costs twelve million pounds over five years.",
    ),
    (
        "Storm closes coastal road overnight",
        "A storm closed the coastal road for six hours last night. Police turned back drivers at both ends while crews cleared fallen trees. Nobody was hurt, and the road opened again at six this morning. The weather service expects calmer days until the weekend, when more rain is likely.",
    ),
    (
        "School choir wins national prize",
        "The choir of Orrin High School won the national youth prize in the capital on Sunday. Forty singers performed three pieces, one of them written by their own music teacher. The prize comes with money for a tour next year. The head teacher said the whole town should be proud of them.",
    ),
    (
        "Library extends its opening hours",
        "The town library will stay open until nine in the evening from next month. The extra hours are paid for by a grant from a local foundation. Librarians hope students and working parents will use the quiet rooms. A new reading group for teenagers starts on the first Tuesday.",
    ),
    (
        "New bus line links the two valleys",
        "A new bus line will link the two valleys from the first of January. Buses will run every half hour during the day and every hour in the evening. The journey takes forty minutes instead of an hour by the old route. Season tickets go on sale at the station next week.",
    ),
]


def city_feed() -> bytes:
    items = []
    for number, (title, text) in enumerate(STORIES[:3]):
        items.append(
            f"<item><title>{title}</title><link>http://city.test/{number}</link><description>{text}</description><pubDate>{rfc822(number + 1)}</pubDate><guid>city-{number}</guid></item>"
        )
    items.append(
        f"<item><title>Old news</title><description>{STORIES[3][1]}</description><pubDate>{rfc822(72)}</pubDate></item>"
    )
    items.append(
        f"<item><title>Undated story</title><description>{STORIES[4][1]}</description></item>"
    )
    html = "&lt;p&gt;Fish &amp;amp; chips &lt;script&gt;alert('x')&lt;/script&gt;stall opens on the quay. &lt;b&gt;Queues&lt;/b&gt; formed before noon &amp;mdash; and the owner ran out of cod by two o'clock in the afternoon.&lt;/p&gt;&lt;style&gt;p{color:red}&lt;/style&gt;"
    items.append(
        f"<item><title>Fish &amp;amp; chips on the quay</title><description>{html}</description><pubDate>{rfc822(4)}</pubDate></item>"
    )
    channel = "".join(items)
    return f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Orrin City News</title><language>en-gb</language>{channel}</channel></rss>'.encode()


def county_feed() -> bytes:
    same = (
        "Coastal road closed overnight by storm",
        "Police closed the coastal road overnight because of the storm, with trees down in several places. It opened again this morning.",
    )
    entries = [same, STORIES[3], STORIES[4]]
    body = "".join(
        f"<entry><title>{t}</title><id>county-{n}</id><updated>{(NOW - dt.timedelta(hours=n + 2)).isoformat()}</updated><summary>{x}</summary><link href='http://county.test/{n}'/></entry>"
        for n, (t, x) in enumerate(entries)
    )
    return f'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom" xml:lang="en"><title>County Herald</title><id>county</id><updated>{NOW.isoformat()}</updated>{body}</feed>'.encode()


def latin1_feed() -> bytes:
    text = "Le café du port a rouvert ses portes hier soir après trois mois de travaux, à la grande joie des habitués."
    return f'<?xml version="1.0" encoding="iso-8859-1"?><rss version="2.0"><channel><title>Le Petit Écho</title><language>fr</language><item><title>Le café rouvre</title><description>{text}</description><pubDate>{rfc822(2)}</pubDate></item></channel></rss>'.encode(
        "iso-8859-1"
    )


XXE = b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY x SYSTEM "file:///etc/passwd">]><rss version="2.0"><channel><title>&x;</title></channel></rss>'
LAUGHS = b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><rss version="2.0"><channel><title>&c;</title></channel></rss>'


class _Handler(BaseHTTPRequestHandler):
    feeds: ClassVar[dict[str, bytes]] = {}
    conditional_hits: ClassVar[list[str]] = []
    broken: ClassVar[set[str]] = set()

    def log_message(self, *_args: object) -> None:
        pass

    def do_GET(self) -> None:
        path = self.path.lstrip("/")
        if path in self.broken or path == "missing.xml":
            self.send_error(404)
            return
        if path == "hang.xml":  # answers the headers, then never the body
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            time.sleep(30)
            return
        if path == "huge.xml":  # 50 MB, no length announced
            self.send_response(200)
            self.end_headers()
            chunk = b"<!-- padding -->" * 4096
            try:
                for _ in range(50 * 1024 * 1024 // len(chunk)):
                    self.wfile.write(chunk)
            except (BrokenPipeError, ConnectionResetError):
                pass
            return
        body = self.feeds.get(path)
        if body is None:
            self.send_error(404)
            return
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        if self.headers.get("If-None-Match") == etag:
            self.conditional_hits.append(path)
            self.send_response(304)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/rss+xml")
        self.send_header("ETag", etag)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def feed_server() -> Iterator[str]:
    feeds = {path.name: path.read_bytes() for path in CORPUS.glob("feed_*.xml")}
    feeds |= {"city.xml": city_feed(), "county.xml": county_feed(), "latin1.xml": latin1_feed()}
    feeds |= {"xxe.xml": XXE, "laughs.xml": LAUGHS}
    _Handler.feeds, _Handler.conditional_hits, _Handler.broken = feeds, [], set()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def definition(tmp_path: Path, base: str, target_s: int = 120, extra: str = "") -> Path:
    feeds = ["city.xml", "county.xml", "latin1.xml", "feed_rss2_liftoff-news.xml",
             "feed_atom_usgs-earthquakes.xml", "feed_atom_feed-rs-releases.xml",
             "xxe.xml", "laughs.xml", "huge.xml", "hang.xml", "missing.xml"]  # fmt: skip
    tables = "".join(f'[[feeds]]\nurl = "{base}/{name}"\nmax_items = 4\n' for name in feeds)
    path = tmp_path / "news.toml"
    path.write_text(
        f'name = "Orrin Evening News"\ntimezone = "Europe/London"\nschedule = "0 18 * * *"\n'
        f"target_duration_s = {target_s}\nmax_item_age_h = 24\n"
        f'engine = "espeak"\nvoice = "en-gb-x-rp"\n{extra}{tables}'
    )
    return path


def narrate(env: dict[str, str], *args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "narrate", *map(str, args)],
        env={**env, "NARRATE_FEED_TIMEOUT_S": "2", "NARRATE_FEED_DEADLINE_S": "4"},
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip


MARKUP_RE = re.compile(r"<[a-z/!]|&[a-z]+;|&#\d+;")


def test_a_bulletin_lands_on_its_target_from_good_stale_and_hostile_feeds(
    env: dict[str, str], tmp_path: Path, feed_server: str
) -> None:
    out = tmp_path / "out"
    result = narrate(
        env,
        "bulletin",
        "run",
        definition(tmp_path, feed_server, extra='caption_profile = "broadcast"\n'),
        "--out",
        out,
        "--now",
        NOW.isoformat(),
    )
    assert result.returncode == 0, result.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert abs(manifest["duration_ms"] - 120_000) <= 3_000, manifest["warnings"]
    # captions cut to the definition's profile: every rule they break is a warning
    vtt_name = manifest["captions"]["vtt"]
    checked = narrate(env, "captions", "--check", "--profile", "broadcast", "--json",
                      out / vtt_name)  # fmt: skip
    counts = json.loads(checked.stdout)[0]["counts"]
    warned = [w for w in manifest["warnings"] if w.startswith(f"captions, {vtt_name}: ")]
    assert len(warned) == len(counts)
    for count in counts.values():
        assert any(w.startswith(f"captions, {vtt_name}: {count} of ") for w in warned)
    assert checked.returncode == (1 if counts else 0)
    statuses = {Path(f["url"]).name: f["status"] for f in manifest["feeds"]}
    for hostile in ("xxe.xml", "laughs.xml", "huge.xml", "hang.xml", "missing.xml"):
        assert statuses[hostile] == "failed", (hostile, manifest["feeds"])
    assert statuses["city.xml"] == statuses["county.xml"] == "ok"
    titles = [i["title"] for i in manifest["items"]]
    sources = {i["source"] for i in manifest["items"]}
    assert "Orrin City News" in sources and "County Herald" in sources
    assert "Old news" not in titles and "Undated story" not in titles
    assert "Le café rouvre" not in titles, "another language than the voice's"
    assert not (
        {"Storm closes coastal road overnight", "Coastal road closed overnight by storm"}
        <= set(titles)
    ), "a story told twice"
    for item in manifest["items"]:
        published = dt.datetime.fromisoformat(item["published"])
        assert NOW - published <= dt.timedelta(hours=24)
        assert item["start_ms"] < item["end_ms"]
    starts = [i["start_ms"] for i in manifest["items"]]
    assert starts == sorted(starts)
    stem = Path(manifest["audio"]).stem
    assert stem == "orrin-evening-news-2026-12-02-1800"
    transcript = (out / manifest["transcript"]).read_text()
    # WebVTT must escape & < > as &amp; &lt; &gt;: those three are its syntax, not markup
    vtt = re.sub(r"&(amp|lt|gt);", "", (out / manifest["captions"]["vtt"]).read_text())
    captions = vtt + (out / manifest["captions"]["srt"]).read_text()
    for text in (transcript, captions):
        assert not MARKUP_RE.search(text.replace("-->", "")), MARKUP_RE.search(text)
        assert "alert" not in text and "color:red" not in text
    assert "Fish & chips stall opens on the quay." in transcript, "entities decoded once"
    assert "http://city.test/0" in transcript
    check = narrate(env, "check", out / manifest["audio"], "--profile", "podcast", "--json")
    assert check.returncode == 0, check.stdout
    measured = json.loads(check.stdout)[0]["measures"]
    assert abs(measured["integrated_lufs"] - -19.0) <= 1.0 and measured["true_peak_dbtp"] <= -1.0
    assert abs(manifest["loudness"]["integrated_lufs"] - measured["integrated_lufs"]) <= 0.2
    # a second bulletin: a feed is down now (its kept copy is read, marked stale), and the
    # others answer 304 to the conditional request
    _Handler.broken.add("county.xml")
    later = NOW + dt.timedelta(hours=1)
    again = narrate(
        env,
        "bulletin",
        "run",
        definition(tmp_path, feed_server),
        "--out",
        out,
        "--now",
        later.isoformat(),
    )
    assert again.returncode == 0, again.stderr
    second = json.loads((out / "manifest.json").read_text())
    assert {Path(f["url"]).name: f["status"] for f in second["feeds"]}["county.xml"] == "stale"
    assert "city.xml" in _Handler.conditional_hits
    feed = feedparser.parse((out / "feed.xml").read_bytes())
    assert len(feed.entries) == 2
    guids = {entry.id for entry in feed.entries}
    assert len(guids) == 2
    for entry in feed.entries:
        (enclosure,) = entry.enclosures
        assert enclosure.type == "audio/mpeg"
        assert int(enclosure.length) == (out / Path(enclosure.href).name).stat().st_size
        assert entry.itunes_duration.count(":") == 2


def test_not_enough_news_gives_a_shorter_bulletin_and_says_so(
    env: dict[str, str], tmp_path: Path, feed_server: str
) -> None:
    out = tmp_path / "out"
    result = narrate(
        env,
        "bulletin",
        "run",
        definition(tmp_path, feed_server, target_s=900),
        "--out",
        out,
        "--now",
        NOW.isoformat(),
    )
    assert result.returncode == 0, result.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["duration_ms"] < 600_000
    assert any("not enough news" in w for w in manifest["warnings"])
    assert "not enough news" in result.stderr


def test_bad_definitions_exit_2(env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('name = "x"\ntimezone = "Nowhere/City"\n[[feeds]]\nurl = "a.xml"\n')
    result = narrate(env, "bulletin", "run", path, "--out", tmp_path / "o")
    assert result.returncode == 2
    assert "timezone is 'Nowhere/City'" in result.stderr and "hint:" in result.stderr
