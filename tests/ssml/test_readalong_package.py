"""The package document: overlays named by their content items, ``media:duration`` per
overlay and for the book (their sum), the active class; the book's own package amended
without losing anything."""

from __future__ import annotations

from typing import Any

from lxml import etree

from ssml.ingest.safexml import parse_xml
from ssml.readalong.generated import ACTIVE_CLASS
from ssml.readalong.package import (
    BookInfo,
    Item,
    Overlay,
    SpineInsert,
    amend_package,
    new_package,
    package_ids,
    unique_id,
)
from ssml.readalong.words import parse_clock
from tests.epub_checks import PACKAGE

OPF = "{http://www.idpf.org/2007/opf}"
DC = "{http://purl.org/dc/elements/1.1/}"


def metas(root: Any) -> list[tuple[str | None, str | None, str]]:
    return [(m.get("property"), m.get("refines"), m.text) for m in root.iter(f"{OPF}meta")]


def durations(root: Any) -> tuple[dict[str, int], int]:
    per: dict[str, int] = {}
    total = -1
    for prop, refines, value in metas(root):
        if prop == "media:duration" and refines:
            per[refines.removeprefix("#")] = parse_clock(value)
        elif prop == "media:duration":
            total = parse_clock(value)
    return per, total


INFO = BookInfo(
    identifier="urn:uuid:77bda570-c4fe-4744-aea5-af507236b2cc",
    title="The <Lighthouse> & Clock",
    language="en",
    modified="2024-05-01T10:00:00Z",
    authors=("A. Writer", "B. Writer"),
    narrator="the en-us voice of espeak, a synthetic voice",
)


def test_a_new_package_declares_every_overlay_and_their_sum() -> None:
    overlays = [Overlay("overlay-1", 31_944), Overlay("overlay-2", 3_600_001)]
    items = [
        Item("nav", "nav.xhtml", "application/xhtml+xml", properties="nav"),
        Item("chapter-1", "text/01.xhtml", "application/xhtml+xml", overlay="overlay-1"),
        Item("overlay-1", "smil/01.smil", "application/smil+xml"),
        Item("chapter-2", "text/02.xhtml", "application/xhtml+xml", overlay="overlay-2"),
        Item("overlay-2", "smil/02.smil", "application/smil+xml"),
    ]
    root = etree.fromstring(new_package(INFO, items, ["chapter-1", "chapter-2"], overlays))
    per, total = durations(root)
    assert per == {"overlay-1": 31_944, "overlay-2": 3_600_001}
    assert total == sum(per.values())
    assert ("media:active-class", None, ACTIVE_CLASS) in metas(root)
    assert ("media:narrator", None, INFO.narrator) in metas(root)
    assert root.get("version") == "3.0"
    assert root.find(f"{OPF}metadata/{DC}title").text == INFO.title  # escaped on the way out
    overlay_of = {i.get("id"): i.get("media-overlay") for i in root.iter(f"{OPF}item")}
    assert overlay_of["chapter-1"] == "overlay-1" and overlay_of["nav"] is None
    assert [r.get("idref") for r in root.iter(f"{OPF}itemref")] == ["chapter-1", "chapter-2"]
    assert [c.text for c in root.iter(f"{DC}creator")] == ["A. Writer", "B. Writer"]


def test_the_books_own_package_keeps_everything_and_gains_the_overlays() -> None:
    root = parse_xml(PACKAGE.encode(), "content.opf")
    before = etree.tostring(root)
    taken = package_ids(root)
    smil_id = unique_id("chapter-4.xhtml", taken)  # taken: becomes chapter-4.xhtml-2
    assert smil_id == "chapter-4.xhtml-2"
    data = amend_package(
        root,
        items=[
            Item(smil_id, "readalong/04.smil", "application/smil+xml"),
            Item("ra-audio", "readalong/04.mp3", "audio/mpeg"),
            Item("ra-opening", "readalong/00.xhtml", "application/xhtml+xml"),
            Item("ra-closing", "readalong/06.xhtml", "application/xhtml+xml"),
        ],
        overlays=[Overlay(smil_id, 12_345)],
        links={"chapter-4.xhtml": smil_id},
        spine=[
            SpineInsert("ra-opening", "chapter-4.xhtml"),
            SpineInsert("ra-closing", "chapter-5.xhtml", after=True),
        ],
    )
    amended = etree.fromstring(data)
    per, total = durations(amended)
    assert per == {smil_id: 12_345} and total == 12_345
    items = {i.get("id"): i for i in amended.iter(f"{OPF}item")}
    assert items["chapter-4.xhtml"].get("media-overlay") == smil_id
    assert items["chapter-5.xhtml"].get("media-overlay") is None
    assert [r.get("idref") for r in amended.iter(f"{OPF}itemref")] == [
        "ra-opening",
        "chapter-4.xhtml",
        "chapter-5.xhtml",
        "ra-closing",
        "notes.xhtml",
    ]
    # everything the book had is still there, as it was
    original = etree.fromstring(before)
    for element in original.iter():
        if element.tag == f"{OPF}item" and element.get("id") == "chapter-4.xhtml":
            continue
        if isinstance(element.tag, str) and element.get("id"):
            kept = amended.xpath(f"//*[@id='{element.get('id')}']")
            assert kept and dict(kept[0].attrib) == dict(element.attrib)
    assert b'\t\t<item id="ra-audio"' in data  # indented like the book's own items


def test_overlays_the_book_already_had_are_replaced() -> None:
    text = PACKAGE.replace(
        '<meta property="dcterms:modified">',
        '<meta property="media:duration">0:00:01.000</meta><meta property="dcterms:modified">',
    ).replace(
        'id="chapter-5.xhtml" media-type="application/xhtml+xml"',
        'id="chapter-5.xhtml" media-type="application/xhtml+xml" media-overlay="old"',
    )
    root = parse_xml(text.encode(), "content.opf")
    links = {"chapter-4.xhtml": "new"}
    amended = etree.fromstring(
        amend_package(root, items=[], overlays=[Overlay("new", 500)], links=links)
    )
    per, total = durations(amended)
    assert per == {"new": 500} and total == 500
    assert [p for p, _r, _v in metas(amended)].count("media:duration") == 2
    overlays = {i.get("id"): i.get("media-overlay") for i in amended.iter(f"{OPF}item")}
    assert overlays["chapter-5.xhtml"] is None and overlays["chapter-4.xhtml"] == "new"
