"""The document model that ingest produces and segmentation consumes."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Chapter:
    """One chapter of a document, already normalised for speech.

    ``title`` is the display title (manifest, captions, file name); ``heading`` is what is
    spoken before the body (``"Chapter 4"`` for a bare ``IV``), or ``""`` for none.
    ``paragraphs`` are the body paragraphs in reading order, each a single line of
    normalised text (no newlines).
    """

    title: str
    paragraphs: tuple[str, ...]
    heading: str = ""
    source: str = ""  # where it came from: a spine href, a heading line number, ...

    @property
    def blocks(self) -> tuple[str, ...]:
        """Everything spoken, in order: the heading (if any) then the paragraphs."""
        return ((self.heading,) if self.heading else ()) + self.paragraphs

    @property
    def text(self) -> str:
        """The chapter text that caption character offsets index into."""
        return "\n\n".join(self.blocks)


@dataclass(frozen=True)
class Document:
    """A whole ingested document: its chapters in reading order."""

    chapters: tuple[Chapter, ...]
    title: str | None = None
    language: str | None = None
    format: str = ""  # "markdown", "text", "html", "epub"
    skipped: tuple[str, ...] = field(default=())  # titles of front/back matter left out
