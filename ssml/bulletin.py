"""A bulletin definition: what a newsroom's nightly bulletin is, read from TOML (pure).

.. code-block:: toml

    name = "Orrin Evening News"
    timezone = "Europe/London"        # IANA name
    schedule = "0 18 * * *"           # cron, in that local time
    target_duration_s = 180
    max_item_age_h = 24
    engine = "espeak"                 # any engine, with voice, rate, ... as render takes them
    voice = "en-gb"
    intro = "Good evening. This is {name} for {weekday}, {date}."
    outro = "That was {name}. Good night."
    [[feeds]]
    url = "city.xml"                  # a path relative to this file, or an http(s) URL
    max_items = 3

Every key is checked: an unknown key, a bad cron expression, an unknown time zone, no
feeds, a template naming an unknown field: :class:`~narrate.errors.UsageError` naming the
key and the fix (exit 2). Templates may use ``{name}``, ``{weekday}``, ``{date}``,
``{time}`` and, in ``transition``, ``{source}`` and ``{title}``.
"""

from __future__ import annotations

import string
import tomllib
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cronsim import CronSim, CronSimError

from narrate.errors import UsageError

DEFAULT_INTRO = "Good evening. This is {name} for {weekday}, {date}."
DEFAULT_OUTRO = "That was {name}. Good night."
DEFAULT_TRANSITION = "From {source}."
DEFAULT_SCHEDULE = "0 18 * * *"

_TEMPLATE_FIELDS = {"name", "weekday", "date", "time"}
_TRANSITION_FIELDS = _TEMPLATE_FIELDS | {"source", "title"}
_MASTERS = ("podcast", "broadcast", "none")
#: renderer.caption_profiles.CAPTION_PROFILE_NAMES (ssml does not import renderer; a test
#: keeps the two the same)
CAPTION_PROFILES = ("standard", "children", "broadcast")


@dataclass(frozen=True)
class FeedSource:
    """One feed: a URL (http/https) or a file path (relative to the definition)."""

    url: str
    max_items: int = 3
    #: how the transition names the source (default: the feed's own title)
    name: str | None = None


@dataclass(frozen=True)
class Definition:
    name: str
    feeds: tuple[FeedSource, ...]
    timezone: str = "UTC"
    schedule: str = DEFAULT_SCHEDULE
    target_duration_s: int = 180
    max_item_age_h: float = 24.0
    engine: str = "espeak"
    voice: str | None = None
    rate: float = 1.0
    pitch: float = 1.0
    volume: float = 1.0
    model: str | None = None
    options: tuple[tuple[str, str], ...] = ()
    #: the language of the items to keep (primary subtag); None: the voice's
    language: str | None = None
    intro: str = DEFAULT_INTRO
    outro: str = DEFAULT_OUTRO
    transition: str = DEFAULT_TRANSITION
    master: str = "podcast"
    #: the subtitle rules its captions are cut to (``--caption-profile``)
    caption_profile: str = "standard"
    #: where relative feed paths are read from
    base_dir: Path = field(default=Path("."), compare=False)

    def feed_location(self, feed: FeedSource) -> str:
        """An http(s) URL as written, or the feed file's absolute path."""
        if feed.url.startswith(("http://", "https://")):
            return feed.url
        return str((self.base_dir / feed.url).resolve())


_KEYS = {
    "name": str,
    "timezone": str,
    "schedule": str,
    "target_duration_s": int,
    "max_item_age_h": (int, float),
    "engine": str,
    "voice": str,
    "rate": (int, float),
    "pitch": (int, float),
    "volume": (int, float),
    "model": str,
    "options": dict,
    "language": str,
    "intro": str,
    "outro": str,
    "transition": str,
    "master": str,
    "caption_profile": str,
    "feeds": list,
}
_FEED_KEYS = {"url": str, "max_items": int, "name": str}


def load_definition(path: Path) -> Definition:
    """Read and check a definition file (UsageError, exit 2, for anything wrong)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(
            f"cannot read the bulletin definition {str(path)!r}: {exc}",
            hint="give the path of a UTF-8 TOML file",
        ) from None
    return parse_definition(text, path.name, path.resolve().parent)


def parse_definition(text: str, name: str, base_dir: Path) -> Definition:
    """A definition from TOML text (``name`` for messages)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(
            f"{name} is not valid TOML: {exc}", hint="check the line it names"
        ) from None
    _check_keys(data, _KEYS, name, "")
    if not data.get("name"):
        raise _bad(name, "name", "is missing", 'add e.g. name = "Evening News"')
    feeds = data.get("feeds") or []
    if not feeds:
        raise _bad(name, "feeds", "lists no feed", 'add a [[feeds]] table with url = "..."')
    sources = tuple(_feed(entry, name, number) for number, entry in enumerate(feeds, start=1))
    timezone = str(data.get("timezone", "UTC"))
    _check_timezone(timezone, name)
    schedule = str(data.get("schedule", DEFAULT_SCHEDULE))
    _check_cron(schedule, timezone, name)
    target = int(data.get("target_duration_s", 180))
    if not 10 <= target <= 3600:
        raise _bad(name, "target_duration_s", f"is {target}", "give 10 to 3600 seconds")
    age = float(data.get("max_item_age_h", 24))
    if age <= 0:
        raise _bad(name, "max_item_age_h", f"is {age}", "give a positive number of hours")
    master = str(data.get("master", "podcast"))
    if master not in _MASTERS:
        raise _bad(name, "master", f"is {master!r}", f"choose one of {', '.join(_MASTERS)}")
    captions = str(data.get("caption_profile", "standard"))
    if captions not in CAPTION_PROFILES:
        raise _bad(
            name,
            "caption_profile",
            f"is {captions!r}",
            f"choose one of {', '.join(CAPTION_PROFILES)}",
        )
    templates = {
        key: str(data.get(key, default))
        for key, default in (
            ("intro", DEFAULT_INTRO),
            ("outro", DEFAULT_OUTRO),
            ("transition", DEFAULT_TRANSITION),
        )
    }
    for key, template in templates.items():
        _check_template(
            template, _TRANSITION_FIELDS if key == "transition" else _TEMPLATE_FIELDS, name, key
        )
    options = data.get("options") or {}
    return Definition(
        name=str(data["name"]),
        feeds=sources,
        timezone=timezone,
        schedule=schedule,
        target_duration_s=target,
        max_item_age_h=age,
        engine=str(data.get("engine", "espeak")),
        voice=str(data["voice"]) if data.get("voice") else None,
        rate=float(data.get("rate", 1.0)),
        pitch=float(data.get("pitch", 1.0)),
        volume=float(data.get("volume", 1.0)),
        model=str(data["model"]) if data.get("model") else None,
        options=tuple(sorted((str(k), str(v)) for k, v in options.items())),
        language=str(data["language"]) if data.get("language") else None,
        master=master,
        caption_profile=captions,
        base_dir=base_dir,
        **templates,
    )


def _feed(entry: Any, name: str, number: int) -> FeedSource:
    where = f"feeds[{number}]"
    if not isinstance(entry, dict):
        raise _bad(name, where, "is not a table", 'write [[feeds]] then url = "..." under it')
    _check_keys(entry, _FEED_KEYS, name, f"{where}.")
    url = str(entry.get("url") or "").strip()
    if not url:
        raise _bad(name, f"{where}.url", "is missing", 'add url = "news.xml" or an https:// URL')
    if "://" in url and not url.startswith(("http://", "https://")):
        raise _bad(name, f"{where}.url", f"is {url!r}", "give an http(s) URL or a file path")
    max_items = int(entry.get("max_items", 3))
    if not 1 <= max_items <= 50:
        raise _bad(name, f"{where}.max_items", f"is {max_items}", "give 1 to 50")
    return FeedSource(url, max_items, str(entry["name"]) if entry.get("name") else None)


def _check_keys(data: dict[str, Any], known: dict[str, Any], name: str, prefix: str) -> None:
    for key, value in data.items():
        if key not in known:
            raise _bad(
                name, prefix + key, "is not a known key", f"use one of: {', '.join(sorted(known))}"
            )
        expected = known[key]
        if isinstance(value, bool) or not isinstance(value, expected):
            kinds = expected if isinstance(expected, tuple) else (expected,)
            wanted = " or ".join(_KIND_NAMES[k] for k in kinds)
            raise _bad(name, prefix + key, f"is {value!r}", f"give {wanted}")


_KIND_NAMES = {
    str: "a string",
    int: "a whole number",
    float: "a number",
    list: "a list",
    dict: "a table",
}


def _check_timezone(timezone: str, name: str) -> None:
    try:
        zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise _bad(
            name, "timezone", f"is {timezone!r}, not an IANA time zone",
            'use a name such as "Europe/London", "America/New_York" or "UTC"',
        ) from None  # fmt: skip


def _check_cron(schedule: str, timezone: str, name: str) -> None:
    import datetime as dt

    try:
        next(CronSim(schedule, dt.datetime.now(zoneinfo.ZoneInfo(timezone))))
    except (CronSimError, StopIteration, ValueError) as exc:
        raise _bad(
            name, "schedule", f"is {schedule!r}, not a cron expression ({exc})",
            'five fields: minute hour day-of-month month day-of-week, e.g. "0 18 * * *"',
        ) from None  # fmt: skip


def _check_template(template: str, fields: set[str], name: str, key: str) -> None:
    try:
        names = {
            f for _text, f, _spec, _conv in string.Formatter().parse(template) if f is not None
        }
    except ValueError as exc:
        raise _bad(
            name, key, f"is not a valid template ({exc})", "write {name} with both braces"
        ) from None
    unknown = sorted(n for n in names if n not in fields)
    if unknown or "" in names:
        raise _bad(
            name, key, f"names unknown fields {unknown or ['{}']}",
            f"use only {', '.join('{' + f + '}' for f in sorted(fields))}",
        )  # fmt: skip


def _bad(name: str, key: str, problem: str, fix: str) -> UsageError:
    return UsageError(f"{name}: {key} {problem}", hint=fix)
