"""``feed.xml``: every bulletin in a folder as a podcast feed (RSS 2.0 with the iTunes
namespace), rebuilt from the bulletins' own manifests after each run.

Each episode gets a stable unique GUID (the bulletin's name and slot, never a URL that
changes), its own enclosure (the episode's own file, never a ``latest.mp3``: Apple ignores
an enclosure URL it has seen before) with its length in bytes and its type, a pubDate and
an ``itunes:duration``. ``base_url`` makes enclosure URLs absolute (a podcast host serves
the folder); without it they are relative names. Built with lxml, so every text is escaped.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

ITUNES = "http://www.itunes.com/dtds/podcast-1.0.dtd"
#: how many episodes the feed lists (the newest)
MAX_EPISODES = 100


@dataclass(frozen=True)
class Episode:
    guid: str
    title: str
    audio: str  # file name in the folder
    length_bytes: int
    published: dt.datetime
    duration_ms: int
    description: str


def episodes_in(folder: Path) -> list[Episode]:
    """The bulletins in ``folder``, from their manifests (``<stem>.json``), newest first."""
    found = []
    for manifest in folder.glob("*.json"):
        if manifest.name == "manifest.json":
            continue
        try:
            data = json.loads(manifest.read_text())
            audio = folder / str(data["audio"])
            found.append(
                Episode(
                    guid=str(data["guid"]),
                    title=str(data["title"]),
                    audio=audio.name,
                    length_bytes=audio.stat().st_size,
                    published=dt.datetime.fromisoformat(str(data["published"])),
                    duration_ms=int(data["duration_ms"]),
                    description=str(data.get("description") or ""),
                )
            )
        except (OSError, ValueError, KeyError, TypeError):
            continue  # not a bulletin's manifest, or its audio is gone
    found.sort(key=lambda e: e.published, reverse=True)
    return found[:MAX_EPISODES]


def feed_xml(
    title: str,
    description: str,
    language: str | None,
    episodes: Sequence[Episode],
    base_url: str | None,
) -> bytes:
    """The RSS 2.0 document (UTF-8 bytes)."""
    rss = etree.Element("rss", version="2.0", nsmap={"itunes": ITUNES})
    channel = etree.SubElement(rss, "channel")
    _text(channel, "title", title)
    _text(channel, "description", description)
    _text(channel, "link", base_url or "")
    if language:
        _text(channel, "language", language)
    _text(channel, f"{{{ITUNES}}}author", title)
    _text(channel, f"{{{ITUNES}}}explicit", "false")
    etree.SubElement(channel, f"{{{ITUNES}}}category", text="News")
    for episode in episodes:
        item = etree.SubElement(channel, "item")
        _text(item, "title", episode.title)
        _text(item, "description", episode.description)
        guid = _text(item, "guid", episode.guid)
        guid.set("isPermaLink", "false")
        _text(item, "pubDate", email.utils.format_datetime(episode.published.astimezone(dt.UTC)))
        url = f"{base_url.rstrip('/')}/{episode.audio}" if base_url else episode.audio
        etree.SubElement(
            item, "enclosure", url=url, length=str(episode.length_bytes), type="audio/mpeg"
        )
        _text(item, f"{{{ITUNES}}}duration", _clock(episode.duration_ms))
    return bytes(etree.tostring(rss, xml_declaration=True, encoding="utf-8", pretty_print=True))


def _text(parent: etree._Element, tag: str, value: str) -> etree._Element:
    element = etree.SubElement(parent, tag)
    element.text = value
    return element


def _clock(ms: int) -> str:
    seconds = round(ms / 1000)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}"
