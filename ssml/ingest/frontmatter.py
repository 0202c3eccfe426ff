"""A Markdown manuscript's YAML front matter as book metadata (pure).

.. code-block:: yaml

    ---
    title: The Lighthouse Keeper's Clock
    author: Ada Writer            # or authors: [Ada Writer, Sam Second]
    language: en
    date: 2024-05-01
    description: A short story about a clock.
    cover: images/cover.jpg       # relative to the Markdown file
    ---

Untrusted input, read safely: ``yaml.SafeLoader`` (no Python objects), no aliases or
anchors at all (the YAML way to a "billion laughs"), at most :data:`MAX_BYTES`; only
scalars (and a list of names for authors) are taken, anything else is left out with a
warning. A front matter that is not YAML is a warning, never an error.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import yaml

MAX_BYTES = 64 * 1024
_MAX_FIELD_CHARS = 2000


class _NoAliasLoader(yaml.SafeLoader):
    """SafeLoader that refuses anchors and aliases."""

    def fetch_alias(self) -> None:
        raise yaml.YAMLError("aliases are not allowed in front matter")

    def fetch_anchor(self) -> None:
        raise yaml.YAMLError("anchors are not allowed in front matter")


@dataclass(frozen=True)
class FrontMatter:
    title: str | None = None
    authors: tuple[str, ...] = ()
    language: str | None = None
    date: str | None = None
    description: str | None = None
    #: the cover image's path as written (relative to the Markdown file)
    cover: str | None = None


def read_front_matter(source: str) -> tuple[FrontMatter, list[str]]:
    """The metadata in a front matter block's text, and warnings about what was left out."""
    if len(source.encode("utf-8")) > MAX_BYTES:
        return FrontMatter(), [f"the front matter is larger than {MAX_BYTES // 1024} KB: ignored"]
    try:
        data = yaml.load(source, Loader=_NoAliasLoader)  # a SafeLoader: no Python objects
    except yaml.YAMLError as exc:
        return FrontMatter(), [f"the front matter is not valid YAML ({_first_line(exc)}): ignored"]
    if data is None:
        return FrontMatter(), []
    if not isinstance(data, dict):
        return FrontMatter(), ["the front matter is not a set of 'key: value' lines: ignored"]
    warnings: list[str] = []
    text = _Fields(data, warnings)
    authors = data.get("authors", data.get("author"))
    names: tuple[str, ...] = ()
    if isinstance(authors, list) and all(_scalar(a) for a in authors):
        names = tuple(_clip(str(a)) for a in authors if str(a).strip())
    elif _scalar(authors) and authors is not None:
        names = (_clip(str(authors)),)
    elif authors is not None:
        warnings.append("the front matter's author is not a name or a list of names: ignored")
    return (
        FrontMatter(
            title=text.get("title"),
            authors=names,
            language=text.get("language") or text.get("lang"),
            date=text.get("date"),
            description=text.get("description"),
            cover=text.get("cover"),
        ),
        warnings,
    )


class _Fields:
    def __init__(self, data: dict[Any, Any], warnings: list[str]) -> None:
        self.data = data
        self.warnings = warnings

    def get(self, key: str) -> str | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not _scalar(value):
            self.warnings.append(f"the front matter's {key!r} is not a plain value: ignored")
            return None
        if isinstance(value, dt.date):
            return value.isoformat()
        return _clip(str(value)).strip() or None


def _scalar(value: object) -> bool:
    return isinstance(value, str | int | float | dt.date) and not isinstance(value, bool)


def _clip(text: str) -> str:
    return text[:_MAX_FIELD_CHARS]


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
