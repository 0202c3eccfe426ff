"""Build SSML documents with lxml. Text is always set as text, never parsed as markup.

A manuscript that contains ``<``, ``&`` or ``<speak>`` is read as those characters: lxml
escapes them on serialisation. The text content of the built document (all text nodes
in order) is exactly the segment text plus a final newline, so engines can map their
word positions back to the segment text.
"""

from __future__ import annotations

from collections.abc import Sequence

from lxml import etree

#: SSML dialects narrate can emit; each engine declares the one it accepts.
DIALECTS = ("espeak", "cosyvoice")


def build_ssml(paragraphs: Sequence[str], *, pause_ms: int, dialect: str = "espeak") -> str:
    """A ``<speak>`` document reading ``paragraphs`` with a ``<break>`` between them.

    The paragraphs are separated by ``"\\n\\n"`` in the text content (the same separator
    as the chapter text) and the body ends with ``"\\n"``: espeak-ng reads a final full
    stop right before ``</speak>`` after a tag as "dot" otherwise.
    """
    if dialect not in DIALECTS:
        raise ValueError(f"unknown SSML dialect {dialect!r}")
    speak = etree.Element("speak")
    last: etree._Element | None = None
    for number, paragraph in enumerate(paragraphs):
        text = paragraph if number == 0 else "\n\n" + paragraph
        if last is None:
            speak.text = text
        else:
            last.tail = text
        if number < len(paragraphs) - 1:
            last = etree.SubElement(speak, "break", time=f"{pause_ms}ms")
    if last is None:
        speak.text = (speak.text or "") + "\n"
    else:
        last.tail = (last.tail or "") + "\n"
    return str(etree.tostring(speak, encoding="unicode"))


def text_content(ssml: str) -> str:
    """The text an SSML document speaks (all text nodes in document order)."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    root = etree.fromstring(ssml.encode(), parser)
    return "".join(root.itertext())
