"""EPUB 2/3 ingest: one chapter per spine item, front and back matter skipped.

Reading order is the OPF spine (``linear="no"`` items are left out). Titles come from the
EPUB 3 nav ``toc`` or the EPUB 2 NCX, else the document's first ``h1``-``h3``, else the
file name. A spine item's leading headings that merely repeat its title are not read as
body text (the title is spoken as the chapter heading instead).

Front/back matter is skipped unless ``include_matter`` is set. An item is matter when

* its ``<body>`` or first top-level section has an ``epub:type`` in :data:`MATTER_TYPES`
  (cover, titlepage, imprint, toc, copyright-page, colophon, endnotes, index ...) and
  none in :data:`KEEP_TYPES` (chapter, prologue, epilogue, preface, foreword,
  introduction, dedication, epigraph, acknowledgments, appendix ...);
  ``frontmatter``/``bodymatter``/``backmatter`` alone decide nothing;
* or the nav ``landmarks`` or the EPUB 2 ``<guide>`` give it one of those types;
* or its file name has a word such as ``cover``, ``titlepage``, ``toc``, ``nav``,
  ``copyright``, ``colophon``, ``imprint``, ``uncopyright``, ``endnotes``;
* or its title is one such as "Cover", "Title Page", "Contents", "Copyright", "Index".

The EPUB 3 nav document itself is always matter. Skipped titles go to
``Document.skipped``.
"""

from __future__ import annotations

import contextlib
import io
import posixpath
import re
import zipfile
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import lxml.html
from lxml import etree

from narrate.errors import MalformedDocumentError
from ssml.document import BookMetadata, Cover, Document
from ssml.ingest.archive import DEFAULT_ZIP_LIMITS, Archive, ZipLimits
from ssml.ingest.archive import EPUB as EPUB_KIND
from ssml.ingest.html import (
    NOTE_TYPES,
    Block,
    Options,
    epub_types,
    extract_blocks,
    find_body,
    inline_text,
    local_name,
)
from ssml.ingest.safexml import html_parser, refuse_entity_declarations, xml_parser
from ssml.ingest.text import Section, assemble, prettify_stem
from ssml.normalize import chapter_heading, normalize_text

EPUB_MIMETYPE = b"application/epub+zip"
CONTAINER = "META-INF/container.xml"
ZIP_MAGIC = b"PK\x03\x04"


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


MATTER_TYPES = _words(
    "cover titlepage halftitlepage halftitle frontispiece imprint imprimatur toc "
    "landmarks loi lot loa lov copyright-page colophon endnotes footnotes rearnotes "
    "index bibliography glossary errata seriespage other-credits contributors "
    "revision-history"
)
KEEP_TYPES = _words(
    "chapter part division volume subchapter prologue epilogue preface foreword "
    "introduction preamble conclusion afterword appendix dedication epigraph "
    "acknowledgments acknowledgements abstract"
)
_GUIDE_ALIASES = {"title-page": "titlepage", "notes": "endnotes", "copyright": "copyright-page"}
MATTER_FILE_WORDS = _words(
    "cover titlepage title halftitle halftitlepage toc nav contents copyright "
    "colophon imprint uncopyright endnotes footnotes notes"
)
MATTER_TITLES = frozenset(
    [
        "cover",
        "title page",
        "titlepage",
        "half title",
        "half title page",
        "contents",
        "table of contents",
        "copyright",
        "copyright page",
        "colophon",
        "imprint",
        "uncopyright",
        "endnotes",
        "footnotes",
        "notes",
        "index",
        "landmarks",
        "list of illustrations",
        "list of tables",
    ]
)
_CONTENT_TYPES = frozenset(["application/xhtml+xml", "text/html", "application/xml", "text/xml"])


@dataclass(frozen=True)
class ManifestItem:
    """One ``<item>`` of the OPF manifest; ``path`` is its name inside the zip."""

    href: str
    path: str
    media_type: str
    properties: frozenset[str] = frozenset()


@dataclass
class Package:
    """What ingest needs from the OPF package document."""

    title: str | None = None
    language: str | None = None
    creators: list[str] = field(default_factory=list)
    date: str | None = None
    description: str | None = None
    #: the manifest id of the cover image (EPUB 3 ``cover-image``, EPUB 2 ``meta cover``)
    cover_id: str | None = None
    manifest: dict[str, ManifestItem] = field(default_factory=dict)
    spine: list[str] = field(default_factory=list)  # idrefs of linear items, in order
    ncx_id: str | None = None
    guide: dict[str, set[str]] = field(default_factory=dict)  # path -> types


@dataclass
class Navigation:
    """Titles (first toc entry per file) and landmark types, keyed by zip path."""

    titles: dict[str, str] = field(default_factory=dict)
    landmarks: dict[str, set[str]] = field(default_factory=dict)


def broken(what: str) -> MalformedDocumentError:
    """The error for a structurally broken EPUB."""
    return MalformedDocumentError(f"the EPUB is broken: {what}", hint=EPUB_KIND.fix)


def resolve(base: str, href: str) -> str:
    """The zip path that ``href`` (relative to the file ``base``) points at, sans fragment."""
    target = unquote(href.split("#", 1)[0])
    return posixpath.normpath(posixpath.join(posixpath.dirname(base), target)).lstrip("/")


# --- archive --------------------------------------------------------------------------


def looks_like_epub(data: bytes) -> bool:
    """Zip magic plus a ``mimetype`` member saying ``application/epub+zip``."""
    if not data.startswith(ZIP_MAGIC):
        return False
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        info = archive.getinfo("mimetype")
        if info.file_size > 100:
            return False
        return archive.read(info).strip() == EPUB_MIMETYPE
    except (zipfile.BadZipFile, zipfile.LargeZipFile, KeyError, ValueError, OSError):
        return False


class _Reader(Archive):
    """The EPUB's members (:class:`~ssml.ingest.archive.Archive`), and its XHTML."""

    def content(self, path: str) -> Any:
        """An XHTML content document; tag soup is read with the HTML parser instead."""
        data = self.markup(path)
        refuse_entity_declarations(data, path)
        try:
            root = etree.fromstring(data, xml_parser())
        except etree.XMLSyntaxError:
            root = None
        if root is None:
            try:
                root = lxml.html.document_fromstring(data, parser=html_parser())
            except (etree.ParserError, etree.XMLSyntaxError, ValueError) as exc:
                raise broken(f"{path} cannot be parsed as XHTML ({exc})") from None
        return root


def check_mimetype(reader: _Reader) -> None:
    """A ``mimetype`` member, when present, must say ``application/epub+zip``."""
    if reader.has("mimetype"):
        value = reader.read("mimetype").strip()
        if value != EPUB_MIMETYPE:
            shown = value[:60].decode("ascii", "replace")
            raise broken(f"its mimetype file says {shown!r}, not 'application/epub+zip'")


def find_opf(reader: _Reader) -> str:
    """The OPF path named by ``META-INF/container.xml``."""
    if not reader.has(CONTAINER):
        raise broken(f"{CONTAINER} is missing")
    rootfiles = [el for el in reader.xml(CONTAINER).iter() if local_name(el) == "rootfile"]
    preferred = [el for el in rootfiles if el.get("media-type") == "application/oebps-package+xml"]
    for el in preferred + rootfiles:
        path = str(el.get("full-path") or "").strip().lstrip("/")
        if path:
            if not reader.has(path):
                raise broken(f"the package file {path} named in {CONTAINER} is missing")
            return path
    raise broken(f"{CONTAINER} names no package (.opf) file")


# --- package, navigation --------------------------------------------------------------


def _text(el: Any) -> str:
    return " ".join("".join(el.itertext()).split())


def read_package(root: Any, opf_path: str) -> Package:
    """Metadata, manifest, spine and guide of an OPF document."""
    package = Package()
    for el in root.iter():
        name = local_name(el)
        if name == "title" and package.title is None:
            package.title = _text(el) or None
        elif name == "language" and package.language is None:
            package.language = _text(el) or None
        elif name == "creator" and _text(el):
            package.creators.append(_text(el))
        elif name == "date" and package.date is None:
            package.date = _text(el) or None
        elif name == "description" and package.description is None:
            package.description = _plain(el) or None
        elif name == "meta" and str(el.get("name") or "").lower() == "cover" and el.get("content"):
            package.cover_id = package.cover_id or str(el.get("content"))
        elif name == "item" and el.get("id") and el.get("href"):
            href = str(el.get("href"))
            package.manifest[str(el.get("id"))] = ManifestItem(
                href=href,
                path=resolve(opf_path, href),
                media_type=str(el.get("media-type") or "").strip().lower(),
                properties=frozenset(str(el.get("properties") or "").split()),
            )
            if "cover-image" in str(el.get("properties") or "").split():
                package.cover_id = str(el.get("id"))
        elif name == "spine":
            package.ncx_id = str(el.get("toc")) if el.get("toc") else None
        elif name == "itemref" and el.get("linear", "yes").strip().lower() != "no":
            package.spine.append(str(el.get("idref") or ""))
        elif name == "reference" and el.get("href") and el.get("type"):
            kind = str(el.get("type")).strip().lower()
            path = resolve(opf_path, str(el.get("href")))
            package.guide.setdefault(path, set()).add(_GUIDE_ALIASES.get(kind, kind))
    return package


def _plain(el: Any) -> str:
    """An element's text, with markup escaped inside it (dc:description) read as text."""
    text = _text(el)
    if "<" in text and ">" in text:
        with contextlib.suppress(etree.ParserError, etree.XMLSyntaxError, ValueError):
            text = " ".join(lxml.html.fromstring(text, parser=html_parser()).text_content().split())
    return text


def read_cover(reader: _Reader, package: Package) -> Cover | None:
    """The cover image, when the package names one that is a JPEG or PNG image."""
    item = package.manifest.get(package.cover_id or "")
    if item is None or not reader.has(item.path):
        return None
    data = reader.read(item.path)
    media_type = image_type(data)
    return Cover(data, media_type) if media_type else None


def image_type(data: bytes) -> str | None:
    """``image/jpeg`` or ``image/png`` from the file's magic bytes, else None."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    return None


def read_nav(root: Any, nav_path: str) -> Navigation:
    """Toc titles and landmarks from an EPUB 3 navigation document."""
    nav = Navigation()
    for el in root.iter():
        if local_name(el) != "nav":
            continue
        kinds = epub_types(el) | set(str(el.get("role") or "").replace("doc-", "").split())
        for a in el.iter():
            if local_name(a) != "a" or not a.get("href"):
                continue
            path = resolve(nav_path, str(a.get("href")))
            if "toc" in kinds:
                title = " ".join(inline_text(a).split())
                if title:
                    nav.titles.setdefault(path, title)
            elif "landmarks" in kinds:
                nav.landmarks.setdefault(path, set()).update(epub_types(a))
    return nav


def read_ncx(root: Any, ncx_path: str) -> Navigation:
    """Toc titles from an EPUB 2 NCX document."""
    nav = Navigation()
    for point in root.iter():
        if local_name(point) != "navpoint":
            continue
        label = next((el for el in point if local_name(el) == "navlabel"), None)
        content = next((el for el in point if local_name(el) == "content"), None)
        if label is not None and content is not None and content.get("src"):
            title = _text(label)
            if title:
                nav.titles.setdefault(resolve(ncx_path, str(content.get("src"))), title)
    return nav


def read_navigation(reader: _Reader, package: Package) -> Navigation:
    """The EPUB 3 nav if it has a toc, else the EPUB 2 NCX, else nothing."""
    items = package.manifest.values()
    nav_item = next((i for i in items if "nav" in i.properties), None)
    nav = Navigation()
    if nav_item is not None and reader.has(nav_item.path):
        nav = read_nav(reader.content(nav_item.path), nav_item.path)
    if nav.titles:
        return nav
    ncx_item = package.manifest.get(package.ncx_id or "") or next(
        (i for i in items if i.media_type == "application/x-dtbncx+xml"), None
    )
    if ncx_item is not None and reader.has(ncx_item.path):
        ncx = read_ncx(reader.xml(ncx_item.path), ncx_item.path)
        return Navigation(titles=ncx.titles, landmarks=nav.landmarks)
    return nav


# --- matter ---------------------------------------------------------------------------


def item_types(body: Any) -> set[str]:
    """``epub:type`` tokens of the body and its first top-level sectioning element."""
    types = epub_types(body)
    element = body
    for _ in range(3):  # look through up to three wrappers without a type of their own
        children = [c for c in element if local_name(c) not in ("", "script", "style")]
        if not children:
            break
        element = children[0]
        own = epub_types(element)
        if own:
            return types | own
    return types


def _file_words(path: str) -> set[str]:
    stem = posixpath.splitext(posixpath.basename(path))[0].lower()
    return set(re.split(r"[^a-z]+", stem))


def is_matter(
    types: set[str], signals: set[str], path: str, title: str, *, is_nav: bool = False
) -> bool:
    """Whether a spine item is front/back matter (see the module docstring)."""
    if is_nav:
        return True
    if types & KEEP_TYPES:
        return False
    if (types | signals) & MATTER_TYPES:
        return True
    return bool(_file_words(path) & MATTER_FILE_WORDS) or (
        " ".join(title.casefold().replace("-", " ").split()) in MATTER_TITLES
    )


# --- chapters -------------------------------------------------------------------------


def _same_heading(heading: str, title: str) -> bool:
    h, t = normalize_text(heading).casefold(), normalize_text(title).casefold()
    if not h or h == t:
        return True
    if chapter_heading(heading).casefold() == chapter_heading(title).casefold():
        return True
    return re.search(rf"(?<!\w){re.escape(h)}(?!\w)", t) is not None


def body_paragraphs(blocks: list[Block], title: str) -> list[str]:
    """Block texts, less the leading headings that repeat the title."""
    paragraphs: list[str] = []
    leading = True
    for block in blocks:
        if leading and block.level and _same_heading(block.text, title):
            continue
        leading = leading and block.level > 0
        paragraphs.append(block.text)
    return paragraphs


def first_heading(blocks: list[Block]) -> str | None:
    """The text of the first ``h1``-``h3``, if any."""
    return next((b.text for b in blocks if 1 <= b.level <= 3), None)


@dataclass
class _Item:
    section: Section
    matter: bool


def read_item(
    reader: _Reader, package: Package, nav: Navigation, idref: str, continues: str | None
) -> _Item | None:
    """One spine item as a section, or None if it is not a text document.

    An item with neither a toc entry nor a heading, in a book that has a toc, continues
    the previous item (``continues`` is its title): it gets that title, and no spoken
    heading.
    """
    item = package.manifest.get(idref)
    if item is None:
        raise broken(f"the spine names {idref!r}, which is not in the manifest")
    if item.media_type not in _CONTENT_TYPES:
        return None
    if not reader.has(item.path):
        raise broken(f"the spine item {item.path} is missing from the archive")
    body = find_body(reader.content(item.path))
    types = item_types(body)
    # A notes document is read whole (when matter is kept); elsewhere notes are dropped.
    blocks = extract_blocks(body, Options(drop_header=False, drop_notes=not types & NOTE_TYPES))
    own_title = nav.titles.get(item.path) or first_heading(blocks)
    continued = not own_title and continues is not None
    title = normalize_text(
        own_title
        or continues
        or prettify_stem(posixpath.splitext(posixpath.basename(item.path))[0])
    )
    signals = nav.landmarks.get(item.path, set()) | package.guide.get(item.path, set())
    matter = is_matter(types, signals, item.path, title, is_nav="nav" in item.properties)
    has_heading = any(b.level for b in blocks)
    paragraphs = body_paragraphs(blocks, title)
    section = Section(
        title,
        paragraphs,
        source=item.href,
        merge_if_empty=has_heading,
        speak_heading=not continued,
    )
    return _Item(section, matter)


def parse(
    data: bytes,
    name: str,
    stem: str,
    *,
    include_matter: bool = False,
    limits: ZipLimits = DEFAULT_ZIP_LIMITS,
) -> Document:
    """Parse an EPUB 2/3 archive into a Document."""
    del stem  # titles come from the book itself
    with _Reader(data, name, EPUB_KIND, limits) as reader:
        check_mimetype(reader)
        opf_path = find_opf(reader)
        package = read_package(reader.xml(opf_path), opf_path)
        if not package.spine:
            raise broken(f"its package file {opf_path} has an empty spine (no reading order)")
        nav = read_navigation(reader, package)
        cover = read_cover(reader, package)
        items: list[_Item] = []
        for idref in package.spine:
            previous = items[-1].section.title if items and nav.titles else None
            item = read_item(reader, package, nav, idref, previous)
            if item is not None:
                items.append(item)
    kept = [i.section for i in items if include_matter or not i.matter]
    skipped = [i.section.title for i in items if i.matter and not include_matter]
    return Document(
        chapters=tuple(assemble(kept)),
        title=package.title,
        language=package.language,
        format="epub",
        skipped=tuple(normalize_text(t) for t in skipped),
        warnings=tuple(reader.warnings),
        metadata=BookMetadata(
            title=package.title,
            authors=tuple(package.creators),
            language=package.language,
            date=package.date,
            description=package.description,
            cover=cover,
        ),
    )
