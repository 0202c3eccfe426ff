"""Opening and closing credits, as the audiobook stores ask for them (ACX: the title, the
author and the narrator at the start; "This has been ..., The End." at the end).

They are chapters of their own (numbered 0 and one past the last chapter), so they are
rendered, mastered, captioned and tagged like any chapter, become their own short files
(``00-opening-credits.mp3``) and the first and last chapter marks of an m4b. Separate
files rather than the ends of the first and last chapter: the stores set credits up as
sections of their own, and chapter 1 keeps starting with its own heading.
"""

from __future__ import annotations

from dataclasses import replace

from ssml.document import Chapter, Document

OPENING = "Opening Credits"
CLOSING = "Closing Credits"


def _names(names: tuple[str, ...]) -> str:
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def credit_chapters(
    title: str, authors: tuple[str, ...], narrator: str, last_number: int
) -> tuple[Chapter, Chapter]:
    """The opening (number 0) and closing (``last_number + 1``) credits chapters."""
    written = f"Written by {_names(authors)}." if authors else ""
    opening = Chapter(
        title=OPENING,
        paragraphs=tuple(p for p in (f"{title}.", written, f"Narrated by {narrator}.") if p),
        number=0,
    )
    by = f", written by {_names(authors)}" if authors else ""
    closing = Chapter(
        title=CLOSING,
        paragraphs=(f"This has been {title}{by}, narrated by {narrator}.", "The End."),
        number=last_number + 1,
    )
    return opening, closing


def with_credits(
    document: Document, title: str, authors: tuple[str, ...], narrator: str
) -> Document:
    """``document`` with the credits before its first and after its last chapter."""
    numbers = [c.number or position for position, c in enumerate(document.chapters, start=1)]
    chapters = tuple(replace(c, number=n) for c, n in zip(document.chapters, numbers, strict=True))
    opening, closing = credit_chapters(title, authors, narrator, max(numbers, default=0))
    return replace(document, chapters=(opening, *chapters, closing))
