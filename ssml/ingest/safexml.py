"""Hardened parsing of untrusted XML, HTML and zip archives.

* XML and HTML are parsed by lxml with entity resolution, network access, DTD loading
  and ``huge_tree`` all off, and comments/processing instructions dropped.
* Any document whose DOCTYPE declares entities (``<!ENTITY``) is refused before it reaches
  a parser: that is how "billion laughs" and external-entity (XXE) attacks start, and no
  book needs it. XML is checked again after parsing for an internal DTD with entities.
* Zip archives are checked against :class:`ZipLimits` (member count, declared member and
  total sizes, compression ratio) before anything is extracted, and every member is read
  in chunks that stop as soon as the actual bytes exceed the member's cap, whatever its
  header declared.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from typing import Any

import lxml.html
from lxml import etree

from narrate.errors import DocumentTooLargeError, MalformedDocumentError

MiB = 1024 * 1024

_ENTITY_DECL_RE = re.compile(rb"<!ENTITY", re.IGNORECASE)
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")

EPUB_FIX = "re-export it from the program that made it, or check it with epubcheck"


@dataclass(frozen=True)
class ZipLimits:
    """Safety caps for reading a zip archive.

    The ratio cap only applies to members whose size is above ``ratio_floor``: tiny
    members (a short CSS file full of spaces) can legitimately compress better than
    100:1, and they cannot be bombs.
    """

    max_members: int = 10_000
    max_member_size: int = 64 * MiB
    max_total_size: int = 512 * MiB
    max_ratio: int = 100
    ratio_floor: int = 1 * MiB
    chunk_size: int = 64 * 1024


DEFAULT_ZIP_LIMITS = ZipLimits()


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


def xml_parser() -> Any:
    """An lxml XML parser that resolves nothing and fetches nothing."""
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
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


def parse_xml(data: bytes, name: str, *, fix: str = EPUB_FIX) -> Any:
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


# --- zip ------------------------------------------------------------------------------


def check_zip(archive: zipfile.ZipFile, name: str, limits: ZipLimits = DEFAULT_ZIP_LIMITS) -> None:
    """Refuse an archive whose directory declares too many or too large members."""
    members = archive.infolist()
    if len(members) > limits.max_members:
        raise DocumentTooLargeError(
            f"{name} has {len(members)} files inside; the limit is {limits.max_members}",
            hint="an EPUB book never needs that many; " + EPUB_FIX,
        )
    total = 0
    for info in members:
        _check_declared(info, name, limits)
        total += info.file_size
        if total > limits.max_total_size:
            raise DocumentTooLargeError(
                f"{name} would unpack to more than {limits.max_total_size // MiB} MB",
                hint="split the book into smaller files, or " + EPUB_FIX,
            )


def _check_declared(info: zipfile.ZipInfo, name: str, limits: ZipLimits) -> None:
    if info.file_size > limits.max_member_size:
        raise _member_too_large(info.filename, name, limits)
    if info.file_size > limits.ratio_floor and (
        info.compress_size == 0 or info.file_size / info.compress_size > limits.max_ratio
    ):
        raise _bomb(info.filename, name, limits)


def _member_too_large(member: str, name: str, limits: ZipLimits) -> DocumentTooLargeError:
    return DocumentTooLargeError(
        f"{member} inside {name} is larger than the {limits.max_member_size // MiB} MB "
        "limit for one file in an archive",
        hint="shrink or split that file (large images are the usual cause), or " + EPUB_FIX,
    )


def _bomb(member: str, name: str, limits: ZipLimits) -> DocumentTooLargeError:
    return DocumentTooLargeError(
        f"{member} inside {name} is compressed more than {limits.max_ratio}:1, which is "
        "what a zip bomb looks like; narrate refuses to unpack it",
        hint="if the file is genuine, " + EPUB_FIX,
    )


def read_member(
    archive: zipfile.ZipFile,
    member: str,
    name: str,
    limits: ZipLimits = DEFAULT_ZIP_LIMITS,
) -> bytes:
    """Read one member, stopping as soon as it exceeds its caps, whatever it declared."""
    try:
        info = archive.getinfo(member)
    except KeyError:
        raise MalformedDocumentError(
            f"the EPUB is broken: {member} is missing from {name}", hint=EPUB_FIX
        ) from None
    _check_declared(info, name, limits)
    ratio_cap = max(limits.ratio_floor, info.compress_size * limits.max_ratio)
    cap = min(limits.max_member_size, ratio_cap)
    chunks: list[bytes] = []
    size = 0
    try:
        with archive.open(info) as stream:
            while chunk := stream.read(limits.chunk_size):
                size += len(chunk)
                if size > cap:
                    if size > limits.max_member_size:
                        raise _member_too_large(member, name, limits)
                    raise _bomb(member, name, limits)
                chunks.append(chunk)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError) as exc:
        raise MalformedDocumentError(
            f"the EPUB is broken: {member} inside {name} cannot be unpacked ({exc})",
            hint=EPUB_FIX,
        ) from None
    except RuntimeError as exc:  # encrypted, or an unsupported compression method
        raise MalformedDocumentError(
            f"the EPUB is broken: {member} inside {name} cannot be read ({exc})",
            hint="remove any password or DRM, or " + EPUB_FIX,
        ) from None
    return b"".join(chunks)
