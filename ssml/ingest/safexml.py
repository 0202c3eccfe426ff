"""Hardened parsing of untrusted XML and HTML (zip archives: :mod:`ssml.ingest.archive`).

* XML and HTML are parsed by lxml with entity resolution, network access, DTD loading
  and ``huge_tree`` all off, and comments/processing instructions dropped.
* Any document whose DOCTYPE declares entities (``<!ENTITY``) is refused before it reaches
  a parser: that is how "billion laughs" and external-entity (XXE) attacks start, and no
  book needs it. XML is checked again after parsing for an internal DTD with entities.
"""

from __future__ import annotations

import re
from typing import Any

import lxml.html
from lxml import etree

from narrate.errors import MalformedDocumentError

_ENTITY_DECL_RE = re.compile(rb"<!ENTITY", re.IGNORECASE)
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


# --- XML / HTML -----------------------------------------------------------------------


def refuse_entity_declarations(data: bytes, name: str) -> None:
    """Raise MalformedDocumentError if the document declares XML entities."""
    text = data
    if data[:2] in _UTF16_BOMS:
        text = data.decode("utf-16", errors="replace").encode("utf-8")
    if _ENTITY_DECL_RE.search(text):
        raise MalformedDocumentError(
            f"{name} declares XML entities in its DOCTYPE (<!ENTITY ...>); narrate refuses "
            "such documents because entity expansion is used for 'billion laughs' and "
            "external-entity attacks",
            hint="remove the <!ENTITY> declarations (and the DOCTYPE's [...] block) from "
            "the file, or re-export it from the program that made it",
        )


def xml_parser(*, keep_comments: bool = False) -> Any:
    """An lxml XML parser that resolves nothing and fetches nothing.

    ``keep_comments`` keeps comments and processing instructions, for a document that is
    written back out (a read-along EPUB's content documents) rather than only read.
    """
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=not keep_comments,
        remove_pis=not keep_comments,
    )


def html_parser() -> Any:
    """An lxml HTML parser (input taken as UTF-8) that fetches nothing."""
    return lxml.html.HTMLParser(
        no_network=True,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
        encoding="utf-8",
    )


def parse_xml(
    data: bytes, name: str, *, fix: str = "check that the file is well-formed XML"
) -> Any:
    """Parse untrusted XML into its root element, or raise MalformedDocumentError."""
    refuse_entity_declarations(data, name)
    try:
        root = etree.fromstring(data, xml_parser())
    except etree.XMLSyntaxError as exc:
        raise MalformedDocumentError(f"{name} is not well-formed XML: {exc}", hint=fix) from None
    if root is None:
        raise MalformedDocumentError(f"{name} holds no XML element", hint=fix)
    dtd = root.getroottree().docinfo.internalDTD
    if dtd is not None and any(True for _ in dtd.iterentities()):
        refuse_entity_declarations(b"<!ENTITY", name)
    return root


def parse_html(data: bytes, name: str) -> Any:
    """Parse untrusted UTF-8 HTML into its root element, or raise MalformedDocumentError."""
    refuse_entity_declarations(data, name)
    parser = html_parser()
    try:
        root = lxml.html.document_fromstring(data, parser=parser)
    except (etree.ParserError, etree.XMLSyntaxError, ValueError) as exc:
        raise MalformedDocumentError(
            f"{name} could not be parsed as HTML: {exc}",
            hint="check that the file is an HTML page saved as UTF-8",
        ) from None
    if any("excessive depth" in str(entry.message).lower() for entry in parser.error_log):
        raise MalformedDocumentError(
            f"{name} nests its elements more than 256 levels deep, which narrate refuses "
            "for safety",
            hint="simplify the page's structure or re-export it",
        )
    return root
