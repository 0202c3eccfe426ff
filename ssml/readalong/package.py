"""The package document of a read-along EPUB: a new one, or the book's own amended.

Either way each content document that has an overlay names it (``media-overlay`` on its
manifest item), the SMIL documents, the audio and the stylesheet are in the manifest, and
the metadata gains ``media:duration`` per overlay (``refines`` its item) and for the whole
book (their sum), and ``media:active-class`` (and ``media:narrator`` when the book names
one). An amended package keeps everything else it had; earlier ``media:`` properties and
``media-overlay`` attributes are replaced (a book that already had overlays gets ours).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lxml import etree

from ssml.ingest.html import local_name
from ssml.readalong.generated import ACTIVE_CLASS
from ssml.readalong.words import clock

OPF_NS = "http://www.idpf.org/2007/opf"
DC_NS = "http://purl.org/dc/elements/1.1/"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


@dataclass(frozen=True)
class Item:
    """A manifest item; ``overlay`` is the id of its media overlay's item."""

    id: str
    href: str
    media_type: str
    properties: str | None = None
    overlay: str | None = None


@dataclass(frozen=True)
class Overlay:
    """A media overlay's manifest id and its duration (the sum of its clips)."""

    id: str
    duration_ms: int


@dataclass(frozen=True)
class SpineInsert:
    """A content document added to a book's reading order: just before (or ``after``) the
    itemref ``anchor``; at the end when ``anchor`` is None."""

    idref: str
    anchor: str | None = None
    after: bool = False


@dataclass(frozen=True)
class BookInfo:
    """What a new package says about the book."""

    identifier: str
    title: str
    language: str
    modified: str  # CCYY-MM-DDThh:mm:ssZ
    authors: tuple[str, ...] = ()
    narrator: str | None = None
    date: str | None = None
    description: str | None = None


def _opf(name: str) -> str:
    return f"{{{OPF_NS}}}{name}"


def _dc(name: str) -> str:
    return f"{{{DC_NS}}}{name}"


def _meta(metadata: Any, prop: str, value: str, refines: str | None = None) -> Any:
    meta = etree.Element(_opf("meta"), property=prop)
    if refines:
        meta.set("refines", f"#{refines}")
    meta.text = value
    _append(metadata, meta)
    return meta


def _overlay_metadata(metadata: Any, overlays: Sequence[Overlay], narrator: str | None) -> None:
    for overlay in overlays:
        _meta(metadata, "media:duration", clock(overlay.duration_ms), overlay.id)
    _meta(metadata, "media:duration", clock(sum(o.duration_ms for o in overlays)))
    _meta(metadata, "media:active-class", ACTIVE_CLASS)
    if narrator:
        _meta(metadata, "media:narrator", narrator)


def _append(parent: Any, element: Any) -> None:
    """Append ``element`` as the last child, indented like the children before it."""
    children = list(parent)
    if children:
        last = children[-1]
        closing = last.tail
        last.tail = children[-2].tail if len(children) > 1 else parent.text
        element.tail = closing
    parent.append(element)


def _insert_before(anchor: Any, element: Any) -> None:
    """Insert ``element`` just before ``anchor``, indented like it."""
    previous = anchor.getprevious()
    anchor.addprevious(element)
    element.tail = previous.tail if previous is not None else anchor.getparent().text


def _item(manifest: Any, item: Item) -> Any:
    element = etree.Element(
        _opf("item"), id=item.id, href=item.href, **{"media-type": item.media_type}
    )
    if item.properties:
        element.set("properties", item.properties)
    if item.overlay:
        element.set("media-overlay", item.overlay)
    _append(manifest, element)
    return element


def new_package(
    info: BookInfo, items: Sequence[Item], spine: Sequence[str], overlays: Sequence[Overlay]
) -> bytes:
    """A new EPUB 3 package document (UTF-8)."""
    root = etree.Element(_opf("package"), nsmap={None: OPF_NS})
    root.set("version", "3.0")
    root.set("unique-identifier", "uid")
    root.set(XML_LANG, info.language)
    metadata = etree.SubElement(root, _opf("metadata"), nsmap={"dc": DC_NS})
    identifier = etree.SubElement(metadata, _dc("identifier"), id="uid")
    identifier.text = info.identifier
    etree.SubElement(metadata, _dc("title")).text = info.title
    etree.SubElement(metadata, _dc("language")).text = info.language
    for number, author in enumerate(info.authors, start=1):
        creator = etree.SubElement(metadata, _dc("creator"), id=f"creator-{number}")
        creator.text = author
        _meta(metadata, "role", "aut", f"creator-{number}").set("scheme", "marc:relators")
    if info.date:
        etree.SubElement(metadata, _dc("date")).text = info.date
    if info.description:
        etree.SubElement(metadata, _dc("description")).text = info.description
    _meta(metadata, "dcterms:modified", info.modified)
    _overlay_metadata(metadata, overlays, info.narrator)
    manifest = etree.SubElement(root, _opf("manifest"))
    for item in items:
        _item(manifest, item)
    spine_element = etree.SubElement(root, _opf("spine"))
    for idref in spine:
        etree.SubElement(spine_element, _opf("itemref"), idref=idref)
    etree.indent(root, space="  ")
    data: bytes = etree.tostring(root, encoding="utf-8", xml_declaration=True)
    return data + b"\n"


def is_epub3(root: Any) -> bool:
    """Whether a package document is EPUB 3 (media overlays need it)."""
    return str(root.get("version") or "").strip().startswith("3")


def package_ids(root: Any) -> set[str]:
    """Every id in a package document (manifest ids share that space)."""
    return {str(el.get("id")) for el in root.iter() if isinstance(el.tag, str) and el.get("id")}


def unique_id(base: str, taken: set[str]) -> str:
    """``base``, or ``base-2``, ``base-3`` ...: the first not in ``taken`` (which gains it)."""
    candidate, number = base, 1
    while candidate in taken:
        number += 1
        candidate = f"{base}-{number}"
    taken.add(candidate)
    return candidate


def amend_package(
    root: Any,
    *,
    items: Sequence[Item],
    overlays: Sequence[Overlay],
    links: dict[str, str],
    spine: Sequence[SpineInsert] = (),
    narrator: str | None = None,
) -> bytes:
    """The book's own package document with the overlays added (see the module docstring).

    ``links``: content item id -> its overlay's item id; ``spine``: where the content
    documents added to the book (credits) go in its reading order.
    """
    metadata = _child(root, "metadata")
    manifest = _child(root, "manifest")
    order = _child(root, "spine")
    if metadata is None or manifest is None or order is None:
        raise ValueError("the package document lacks its metadata, manifest or spine")
    for meta in list(metadata):
        if local_name(meta) == "meta" and str(meta.get("property") or "").startswith("media:"):
            metadata.remove(meta)
    for element in manifest:
        if isinstance(element.tag, str) and element.get("media-overlay") is not None:
            del element.attrib["media-overlay"]
        if isinstance(element.tag, str) and element.get("id") in links:
            element.set("media-overlay", links[str(element.get("id"))])
    _overlay_metadata(metadata, overlays, narrator)
    for item in items:
        _item(manifest, item)
    refs = {str(ref.get("idref")): ref for ref in order if isinstance(ref.tag, str)}
    for insert in spine:
        element = etree.Element(_opf("itemref"), idref=insert.idref)
        anchor = refs.get(insert.anchor) if insert.anchor is not None else None
        following = anchor.getnext() if anchor is not None and insert.after else anchor
        if anchor is not None and insert.after and following is None:
            _append(order, element)
        elif following is not None:
            _insert_before(following, element)
        else:
            _append(order, element)
        refs[insert.idref] = element
    data: bytes = etree.tostring(root.getroottree(), encoding="utf-8", xml_declaration=True)
    return data + b"\n"


def _child(root: Any, name: str) -> Any | None:
    return next((el for el in root if local_name(el) == name), None)
