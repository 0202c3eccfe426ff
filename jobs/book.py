"""The book as a whole: its metadata (from the document, overridden by the command line),
its cover in storage, the credits, the tags of every delivered file, and the m4b with a
book-level caption track.

Metadata flows: the document's own (EPUB package metadata, a Markdown front matter) <-
``--title``, ``--author``, ``--narrator``, ``--cover`` (these win) -> ``jobs.book`` (the
cover stored content-addressed, by key) -> tags, credits, the m4b and the manifest.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from jobs.storage import Storage
from narrate.errors import InputError
from narrate.files import write_bytes_atomic
from renderer.engine import Engine
from renderer.tags import Tags
from ssml.credits import with_credits
from ssml.document import Cover, Document
from ssml.ingest.epub import image_type

MAX_COVER_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True)
class BookOptions:
    """What the command line says about the book (each wins over the document)."""

    title: str | None = None
    author: str | None = None
    narrator: str | None = None
    cover: Path | None = None
    #: add opening and closing credits (:mod:`ssml.credits`)
    credits: bool = False


@dataclass(frozen=True)
class BookInfo:
    """The book's metadata as a job keeps it (``jobs.book``)."""

    title: str
    authors: tuple[str, ...] = ()
    narrator: str | None = None
    language: str | None = None
    date: str | None = None
    description: str | None = None
    cover: Cover | None = field(default=None, repr=False)

    def to_json(self, cover_key: str | None) -> dict[str, object]:
        return {
            "title": self.title,
            "authors": list(self.authors),
            "narrator": self.narrator,
            "language": self.language,
            "date": self.date,
            "description": self.description,
            "cover_key": cover_key,
            "cover_type": self.cover.media_type if self.cover else None,
        }


def load_cover(path: Path) -> Cover:
    """A ``--cover`` file: a JPEG or PNG image of at most 10 MB, else InputError (exit 2)."""
    try:
        size = path.stat().st_size
        if size > MAX_COVER_BYTES:
            raise InputError(
                f"the cover {path.name} is {size / 1024 / 1024:.1f} MB; the limit is 10 MB",
                hint="stores want about 2400x2400 pixels: a JPEG of that size is under 2 MB",
            )
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(
            f"cannot read the cover {str(path)!r}: {exc.strerror or exc}",
            hint="check the path given to --cover",
        ) from None
    media_type = image_type(data)
    if media_type is None:
        raise InputError(
            f"the cover {path.name} is not a JPEG or PNG image",
            hint="save the cover as .jpg or .png",
        )
    return Cover(data, media_type)


def book_info(document: Document, options: BookOptions, fallback_title: str) -> BookInfo:
    """The book's metadata: the document's, with the command line's on top."""
    meta = document.metadata
    authors = (options.author,) if options.author else meta.authors
    return BookInfo(
        title=options.title or meta.title or document.title or fallback_title,
        authors=tuple(a for a in authors if a),
        narrator=options.narrator,
        language=meta.language or document.language,
        date=meta.date,
        description=meta.description,
        cover=load_cover(options.cover) if options.cover else meta.cover,
    )


def voice_credit(engine: Engine, voice_id: str) -> str:
    """Who narrates when no ``--narrator`` is given: the engine's voice, named as such."""
    name = next((v.name for v in engine.voices() if v.id == voice_id), voice_id)
    return f"the {name} voice of {engine.spec.display_name}, a synthetic voice"


def add_credits(document: Document, info: BookInfo, narrator: str) -> Document:
    return with_credits(document, info.title, info.authors, narrator)


def store_cover(storage: Storage, cover: Cover | None) -> str | None:
    """Keep the cover in storage (content-addressed); its key, or None."""
    if cover is None:
        return None
    digest = hashlib.sha256(cover.data).hexdigest()
    suffix = ".png" if cover.media_type == "image/png" else ".jpg"
    path = storage.root / "covers" / f"{digest}{suffix}"
    if not path.is_file():
        write_bytes_atomic(path, cover.data)
    return storage.key(path)


@dataclass(frozen=True)
class StoredBook:
    """``jobs.book`` read back, with the cover's bytes."""

    title: str
    authors: tuple[str, ...]
    narrator: str | None
    date: str | None
    cover: bytes | None
    cover_type: str

    def tags(self, title: str, track: int | None = None, tracks: int | None = None) -> Tags:
        return Tags(
            title=title,
            album=self.title,
            artists=self.authors,
            track=track,
            tracks=tracks,
            date=self.date,
            narrator=self.narrator,
            cover=self.cover,
            cover_type=self.cover_type,
        )


def stored_book(book: Mapping[str, object] | None, storage: Storage, title: str) -> StoredBook:
    """The job's book metadata (``jobs.book``), or just a title for jobs made before it."""
    book = book or {}
    key = book.get("cover_key")
    cover = storage.path(str(key)).read_bytes() if key else None
    authors = book.get("authors") or []
    assert isinstance(authors, Sequence)
    return StoredBook(
        title=str(book.get("title") or title),
        authors=tuple(str(a) for a in authors),
        narrator=str(book["narrator"]) if book.get("narrator") else None,
        date=str(book["date"]) if book.get("date") else None,
        cover=cover,
        cover_type=str(book.get("cover_type") or "image/jpeg"),
    )
