"""News items from feeds, and the choice of what a bulletin says (pure: bytes and clocks in).

* :func:`parse_feed` reads a feed's bytes with feedparser (never a URL or a path: it would
  fetch them itself, with no timeout) and turns each entry into an :class:`Item` of clean
  text: HTML through narrate's hardened HTML ingest (no entities expanded, scripts and
  styles dropped, entities decoded once), ``text/plain`` content taken as text.
* :func:`select` keeps, per source, the newest items within the age window, up to its
  ``max_items``; skips empty and one-line stub items and items in another language than
  the voice's; tells the same story from several feeds once (:func:`same_story`), every
  skip with its reason.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import feedparser

from narrate.errors import MalformedDocumentError
from ssml.ingest.clean import clean_text
from ssml.ingest.html import extract_blocks, find_body
from ssml.ingest.safexml import parse_html, refuse_entity_declarations
from ssml.normalize import normalize_text

#: fewer words than this, and no more to say than the title: a stub ("Read more...")
STUB_WORDS = 8
#: a story told by two feeds: titles and summaries this similar (bigram Dice, 0-1)
SAME_STORY = 0.5
_MAX_ITEM_CHARS = 4000  # the start of a long article is what a bulletin reads
_SENTENCE_END_RE = re.compile(r"[.!?…:;,]['\")\]]*$")


@dataclass(frozen=True)
class Item:
    source: str
    title: str
    text: str
    link: str | None = None
    published: dt.datetime | None = None  # UTC
    language: str | None = None
    guid: str | None = None

    @property
    def words(self) -> int:
        return len(self.text.split())


@dataclass(frozen=True)
class Feed:
    title: str | None
    language: str | None
    items: tuple[Item, ...]


def parse_feed(data: bytes, source: str) -> Feed:
    """A feed's items (``source``: its name for the bulletin, when the feed has no title)."""
    refuse_entity_declarations(data, source)
    parsed = feedparser.parse(data, sanitize_html=True, resolve_relative_uris=False)
    if not parsed.get("version") or (parsed.get("bozo") and not parsed.entries):
        problem = parsed.get("bozo_exception") or "no RSS or Atom root element"
        raise MalformedDocumentError(
            f"{source} is not an RSS or Atom feed ({problem})",
            hint="check that the URL gives the feed itself, not a web page",
        )
    meta = parsed.get("feed", {})
    title = _plain(str(meta.get("title") or "")) or None
    language = str(meta.get("language") or "").strip() or None
    name = title or source
    items = tuple(
        item for entry in parsed.entries if (item := _item(entry, name, language)) is not None
    )
    return Feed(title, language, items)


def _item(entry: dict[str, object], source: str, language: str | None) -> Item | None:
    title = _text_of(entry.get("title_detail"), str(entry.get("title") or ""))
    body = ""
    for key in ("content", "summary_detail"):
        details = entry.get(key)
        for detail in details if isinstance(details, list) else [details]:
            text = _text_of(detail, "")
            if len(text) > len(body):
                body = text
    if not title and not body:
        return None
    body = _first(body, _MAX_ITEM_CHARS)
    lang = str(entry.get("language") or "") or language
    return Item(
        source=source,
        title=title,
        text=body,
        link=str(entry.get("link") or "") or None,
        published=_published(entry),
        language=lang,
        guid=str(entry.get("id") or "") or None,
    )


def _text_of(detail: object, fallback: str) -> str:
    """Clean text of a feedparser text construct: HTML read by the hardened ingest,
    ``text/plain`` taken as it is (escaped, never parsed)."""
    if not isinstance(detail, dict):
        return normalize_text(clean_text(fallback).text)
    value = str(detail.get("value") or "")
    if str(detail.get("type") or "").endswith("html"):
        return _plain(value)
    return normalize_text(clean_text(value).text)


def _plain(html: str) -> str:
    """The text of an HTML fragment, paragraph by paragraph, through the hardened parser."""
    if "<" not in html and "&" not in html:
        return normalize_text(clean_text(html).text)
    cleaned = clean_text(html, markup=True).text
    root = parse_html(f"<html><body>{cleaned}</body></html>".encode(), "a feed item")
    blocks = [normalize_text(b.text) for b in extract_blocks(find_body(root))]
    return " ".join(_sentence(b) for b in blocks if b)


def _sentence(text: str) -> str:
    """A block read as a sentence: list items and table cells get their full stop."""
    return text if _SENTENCE_END_RE.search(text) else text + "."


def _first(text: str, limit: int) -> str:
    """At most ``limit`` characters, cut after a sentence."""
    if len(text) <= limit:
        return text
    cut = max(text.rfind(". ", 0, limit), text.rfind("! ", 0, limit), text.rfind("? ", 0, limit))
    return text[: cut + 1] if cut > 0 else text[:limit]


def _published(entry: dict[str, object]) -> dt.datetime | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        value = entry.get(key)
        if value:
            return dt.datetime.fromtimestamp(calendar.timegm(value), dt.UTC)  # type: ignore[arg-type]
    return None


# --- choosing ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Skipped:
    item: Item
    reason: str


@dataclass(frozen=True)
class Selection:
    kept: tuple[Item, ...]
    skipped: tuple[Skipped, ...] = field(default=())


def primary_language(tag: str | None) -> str | None:
    """``en`` of ``en-GB`` (None stays None)."""
    return tag.replace("_", "-").split("-")[0].lower() if tag else None


def select(
    feeds: Sequence[tuple[Sequence[Item], int]],
    now: dt.datetime,
    max_age: dt.timedelta,
    language: str | None,
) -> Selection:
    """What a bulletin may tell, per source newest first (``(items, max_items)`` per feed,
    in the definition's order)."""
    skipped: list[Skipped] = []
    chosen: list[list[Item]] = []
    wanted = primary_language(language)
    for items, max_items in feeds:
        fresh: list[Item] = []
        for item in items:
            reason = _reject(item, now, max_age, wanted)
            if reason:
                skipped.append(Skipped(item, reason))
            else:
                fresh.append(item)
        fresh.sort(key=lambda i: i.published or now, reverse=True)
        chosen.append(fresh[:max_items])
        skipped += [
            Skipped(i, f"more than {max_items} items from this source") for i in fresh[max_items:]
        ]
    kept: list[Item] = []
    for item in _interleave(chosen):
        twin = next((k for k in kept if same_story(k, item)), None)
        if twin is not None:
            skipped.append(Skipped(item, f"the same story as {twin.source}'s {twin.title!r}"))
        else:
            kept.append(item)
    return Selection(tuple(kept), tuple(skipped))


def _reject(
    item: Item, now: dt.datetime, max_age: dt.timedelta, language: str | None
) -> str | None:
    if item.published is None:
        return "no date: its age is unknown"
    if item.published > now + dt.timedelta(minutes=10):
        return "dated in the future"
    if now - item.published > max_age:
        return f"older than {max_age.total_seconds() / 3600:g} hours"
    if language and item.language and primary_language(item.language) != language:
        return f"in another language ({item.language})"
    if language and _script_mismatch(item, language):
        return "in another script than the voice's language"
    if item.words + len(item.title.split()) < STUB_WORDS or not item.text.strip():
        return "a stub: no text to read beyond a line"
    return None


def _script_mismatch(item: Item, language: str) -> bool:
    """Text mostly in CJK characters for a non-CJK voice (or the reverse)."""
    letters = [c for c in item.title + item.text if c.isalpha()]
    if not letters:
        return False
    cjk = sum(1 for c in letters if "\u3040" <= c <= "\u9fff" or "\uac00" <= c <= "\ud7af")
    cjk_voice = language in ("zh", "ja", "ko", "cmn", "yue")
    return (cjk / len(letters) > 0.5) != cjk_voice


def _interleave(groups: Sequence[Sequence[Item]]) -> Iterable[Item]:
    """First items of every source, then the second ones, ...: no source fills it alone."""
    for rank in range(max((len(g) for g in groups), default=0)):
        for group in groups:
            if rank < len(group):
                yield group[rank]


# --- the same story -----------------------------------------------------------------------

_WORD_RE = re.compile(r"\w+")


def _bigrams(text: str) -> set[str]:
    words = " ".join(_WORD_RE.findall(text.lower()))
    return {words[i : i + 2] for i in range(len(words) - 1)}


def dice(a: str, b: str) -> float:
    """The bigram Dice coefficient of two texts (0: nothing shared, 1: the same)."""
    first, second = _bigrams(a), _bigrams(b)
    if not first or not second:
        return 0.0
    return 2 * len(first & second) / (len(first) + len(second))


def same_story(a: Item, b: Item) -> bool:
    """Two feeds telling one story: titles alike, or titles and openings alike together.

    Measured on hand-made pairs (``tests/ssml/test_news.py``): the same story reworded by
    two outlets scores 0.83-0.90 on titles; different stories on one topic ("Council
    approves harbour plan" / "Council delays vote on school budget") score 0.30-0.42, so
    0.5 leaves a margin on both sides. False positives it would make: two different stories
    whose titles share most of their words ("Mill Street bakery opens" / "Mill Street
    bakery closes", 0.77); false negatives: one story under unrelated headlines, caught
    only when the openings also match (summaries' first 200 characters at 0.6 or more,
    with titles at 0.25 or more).
    """
    if dice(a.title, b.title) >= SAME_STORY:
        return True
    return dice(a.text[:200], b.text[:200]) >= 0.6 and dice(a.title, b.title) >= 0.25


def sentences(text: str) -> list[str]:
    """``text`` cut into sentences (for trimming an item to fit)."""
    parts = re.split(r"(?<=[.!?…])\s+(?=[A-Z0-9\"'(])", text.strip())
    return [p for p in parts if p]
