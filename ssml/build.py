"""Build SSML documents with lxml. Text is always set as text, never parsed as markup.

A manuscript that contains ``<``, ``&`` or ``<speak>`` is read as those characters: lxml
escapes them on serialisation. The text content of the built document (all text nodes
in order) is exactly the segment text plus a final newline, so engines can map their
word positions back to the segment text. Annotations (formulas, lexicon entries,
numbers, pauses, ...) are compiled per dialect by :mod:`ssml.dialects`; ``dialect`` is a
dialect object or its name.
"""

from __future__ import annotations

from collections.abc import Sequence

from lxml import etree

from ssml.annotations import Annotation
from ssml.dialects import DIALECTS, Dialect, compile_blocks

__all__ = ["DIALECTS", "Dialect", "build_blocks", "build_ssml", "text_content"]


def build_ssml(
    paragraphs: Sequence[str], *, pause_ms: int, dialect: Dialect | str = "espeak"
) -> str:
    """A ``<speak>`` document reading ``paragraphs`` with a ``<break>`` between them.

    The paragraphs are separated by ``"\\n\\n"`` in the text content (the same separator
    as the chapter text) and the body ends with ``"\\n"``: espeak-ng reads a final full
    stop right before ``</speak>`` after a tag as "dot" otherwise.
    """
    return compile_blocks([(p, ()) for p in paragraphs], pause_ms=pause_ms, dialect=dialect)


def build_blocks(
    blocks: Sequence[tuple[str, Sequence[Annotation]]],
    *,
    pause_ms: int,
    dialect: Dialect | str = "espeak",
) -> str:
    """Like :func:`build_ssml`, for blocks that carry annotations (offsets into each)."""
    return compile_blocks(blocks, pause_ms=pause_ms, dialect=dialect)


def text_content(ssml: str) -> str:
    """The text an SSML document speaks (all text nodes in document order)."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    root = etree.fromstring(ssml.encode(), parser)
    return "".join(root.itertext())
