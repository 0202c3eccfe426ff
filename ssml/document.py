"""The document model that ingest produces, annotation enriches and segmentation consumes."""

from __future__ import annotations

from dataclasses import dataclass, field

from ssml.annotations import Annotation


@dataclass(frozen=True)
class Chapter:
    """One chapter of a document, already normalised for speech.

    ``title`` is the display title (manifest, captions, file name); ``heading`` is what is
    spoken before the body (``"Chapter 4"`` for a bare ``IV``), or ``""`` for none.
    ``paragraphs`` are the body paragraphs in reading order, each a single line of
    normalised text (no newlines). ``annotations`` holds, for each of :attr:`blocks`
    (heading first when there is one), the engine-neutral annotations of that block
    (offsets into the block's text); it is empty until :func:`ssml.annotate.annotate`
    has run, and a shorter tuple means "no annotations" for the remaining blocks.
    """

    title: str
    paragraphs: tuple[str, ...]
    heading: str = ""
    source: str = ""  # where it came from: a spine href, a heading line number, ...
    #: its 1-based number in the whole document, kept when chapters are selected
    number: int | None = None
    annotations: tuple[tuple[Annotation, ...], ...] = ()

    @property
    def blocks(self) -> tuple[str, ...]:
        """Everything spoken, in order: the heading (if any) then the paragraphs."""
        return ((self.heading,) if self.heading else ()) + self.paragraphs

    @property
    def text(self) -> str:
        """The chapter text that caption character offsets index into."""
        return "\n\n".join(self.blocks)

    def block_annotations(self, index: int) -> tuple[Annotation, ...]:
        """The annotations of block ``index`` (empty when it has none)."""
        return self.annotations[index] if index < len(self.annotations) else ()


@dataclass(frozen=True)
class Cover:
    """A cover image: its bytes and media type (``image/jpeg`` or ``image/png``)."""

    data: bytes = field(repr=False)
    media_type: str


@dataclass(frozen=True)
class BookMetadata:
    """What a document says about the book it is: tags, credits and the m4b use it.

    ``date`` is as the document gives it (``1895``, ``2024-05-01``); ``authors`` in the
    order given.
    """

    title: str | None = None
    authors: tuple[str, ...] = ()
    language: str | None = None
    date: str | None = None
    description: str | None = None
    cover: Cover | None = None
    #: a cover named by the document (a Markdown front matter), relative to it, not yet read
    cover_file: str | None = None


@dataclass(frozen=True)
class Document:
    """A whole ingested document: its chapters in reading order.

    ``warnings`` collects what the annotation stage could only read approximately
    (malformed formulas, ...). ``ssml_source`` is the raw markup when the input was an
    SSML document, kept so it can be checked against the chosen engine's dialect.
    """

    chapters: tuple[Chapter, ...]
    title: str | None = None
    language: str | None = None
    format: str = ""  # "markdown", "text", "html", "epub", "docx", "ssml"
    skipped: tuple[str, ...] = field(default=())  # titles of front/back matter left out
    warnings: tuple[str, ...] = field(default=())
    ssml_source: str | None = None
    metadata: BookMetadata = field(default_factory=BookMetadata)
