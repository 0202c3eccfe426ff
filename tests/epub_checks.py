"""Checks of a read-along EPUB shared by the tests: epubcheck's verdict, and the SMIL clip
times against the word track (``narrate captions JOB --format json``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lxml import etree

from ssml.readalong.words import parse_clock
from tests.conftest import need

SMIL = "{http://www.w3.org/ns/SMIL}"
EPUB_OPS = "{http://www.idpf.org/2007/ops}"


#: epubcheck 4.2 checks the reading order recursively, one frame per reference, and a whole
#: book's word-level overlays overflow the JVM's default stack (w3c/epubcheck#1358, fixed in
#: 5.0); its documented workaround is a larger thread stack
JAVA_STACK = "-Xss256m"


def epubcheck_command() -> tuple[list[str], dict[str, str]]:
    """How to run epubcheck here, and the environment for it. Debian installs it as a jar
    linked from /usr/bin, which runs only where binfmt_misc knows jars, so a jar is run
    with ``java -jar``. Missing: the test skips, or fails in CI."""
    found = shutil.which("epubcheck")
    need(found is not None, "epubcheck is not installed (Debian package epubcheck)")
    assert found is not None
    real = Path(found).resolve()
    env = dict(os.environ)
    if real.suffix == ".jar" or real.read_bytes()[:2] == b"PK":
        java = shutil.which("java")
        need(java is not None, "java is not installed, which the epubcheck jar needs")
        assert java is not None
        return [java, JAVA_STACK, "-jar", str(real)], env
    env["JAVA_TOOL_OPTIONS"] = f"{env.get('JAVA_TOOL_OPTIONS', '')} {JAVA_STACK}".strip()
    return [str(real)], env


@dataclass(frozen=True)
class Verdict:
    returncode: int
    messages: tuple[Mapping[str, Any], ...]

    def of(self, *severities: str) -> list[str]:
        return [
            f"{m['ID']} {m['severity']}: {m['message']} at {m.get('locations')}"
            for m in self.messages
            if m["severity"] in severities
        ]

    @property
    def errors(self) -> list[str]:
        return self.of("FATAL", "ERROR")


def epubcheck(path: Path) -> Verdict:
    """epubcheck's messages about an EPUB (its JSON report)."""
    command, env = epubcheck_command()
    with tempfile.TemporaryDirectory() as work:
        report = Path(work) / "report.json"
        result = subprocess.run(
            [*command, str(path), "--json", str(report)],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
            env=env,
        )
        output = result.stdout + result.stderr
        # a crash (java.lang.StackOverflowError, ...) still prints "0 errors": no verdict
        assert "java.lang." not in output, "epubcheck crashed: " + output[:2000]
        assert report.is_file(), output
        data = json.loads(report.read_text())
    return Verdict(result.returncode, tuple(data["messages"]))


@dataclass(frozen=True)
class ParClip:
    """A ``<par>``: the id it shows, and its clip in milliseconds."""

    document: str  # the content document's zip path
    fragment: str
    begin_ms: int
    end_ms: int
    in_seq: str | None  # the sentence id of the <seq> around it, if any


def overlays(epub: Path) -> dict[str, list[ParClip]]:
    """Every SMIL document of the EPUB (zip path) and its pars, in order."""
    found: dict[str, list[ParClip]] = {}
    with zipfile.ZipFile(epub) as archive:
        for name in archive.namelist():
            if not name.endswith(".smil"):
                continue
            root = etree.fromstring(archive.read(name))
            pars = []
            for par in root.iter(f"{SMIL}par"):
                text = par.find(f"{SMIL}text")
                audio = par.find(f"{SMIL}audio")
                href, fragment = text.get("src").split("#")
                document = _join(name, href)
                parent = par.getparent()
                textref = parent.get(f"{EPUB_OPS}textref") if parent.tag == f"{SMIL}seq" else None
                pars.append(
                    ParClip(
                        document,
                        fragment,
                        parse_clock(audio.get("clipBegin")),
                        parse_clock(audio.get("clipEnd")),
                        textref.split("#")[1] if textref else None,
                    )
                )
            found[name] = pars
    return found


def _join(base: str, href: str) -> str:
    import posixpath

    return posixpath.normpath(posixpath.join(posixpath.dirname(base), href))


def check_clips_match_track(
    epub: Path, track: Mapping[str, Any], level: str, *, min_placed: float = 1.0
) -> dict[int, int]:
    """Assert that the overlays' clip times are the word track's: a word ``<par>`` has
    exactly its word's start and end; a sentence ``<par>`` runs from a word's start to a
    later word's end. Returns the word pars per chapter; at least ``min_placed`` of each
    chapter's voiced words have one (word level)."""
    chapters = {c["index"]: c["words"] for c in track["chapters"]}
    pars_per_chapter: dict[int, int] = {}
    for _smil, pars in overlays(epub).items():
        assert pars, "an overlay without <par>"
        index = int(pars[0].fragment.split("-")[0].removeprefix("ra").split("n")[0])
        words = chapters[index]
        starts = {w["start_ms"] for w in words}
        ends = {w["end_ms"] for w in words}
        previous = -1
        for par in pars:
            assert par.end_ms > par.begin_ms
            assert par.begin_ms >= previous, "clips run forwards"
            previous = par.begin_ms
            kind, number = _kind(par.fragment)
            if kind == "w":
                word = words[number]
                assert (par.begin_ms, par.end_ms) == (word["start_ms"], word["end_ms"]), par
                pars_per_chapter[index] = pars_per_chapter.get(index, 0) + 1
            else:
                assert par.begin_ms in starts and par.end_ms in ends, par
        if level == "sentence":
            assert all(_kind(p.fragment)[0] == "s" for p in pars)
        else:
            voiced = sum(
                1
                for w in words
                if w["end_ms"] > w["start_ms"] and any(ch.isalnum() for ch in w["text"])
            )
            assert pars_per_chapter.get(index, 0) >= min_placed * voiced - 12, (index, voiced)
    return pars_per_chapter


def _kind(fragment: str) -> tuple[str, int]:
    """``ra3-w17`` -> ("w", 17); ``ra3-s2`` -> ("s", 2)."""
    tail = fragment.rsplit("-", 1)[1]
    return tail[0], int(tail[1:])


def zip_names(epub: Path) -> Sequence[str]:
    with zipfile.ZipFile(epub) as archive:
        return archive.namelist()


# --- a small, valid EPUB 3 to read along ------------------------------------------------

XHTML_HEAD = (
    '<?xml version="1.0" encoding="utf-8"?>\n'
    '<html xmlns="http://www.w3.org/1999/xhtml" xmlns:epub="http://www.idpf.org/2007/ops" '
    'xml:lang="en" lang="en">\n\t<head>\n\t\t<title>{title}</title>\n'
    '\t\t<link href="../css/book.css" rel="stylesheet" type="text/css"/>\n\t</head>\n'
)
CHAPTER_ONE = """\t<body epub:type="bodymatter">
\t\t<section id="chapter-4" epub:type="chapter">
\t\t\t<h2 epub:type="ordinal">IV</h2>
\t\t\t<p id="ra4-first">It was late &amp; dark<a href="notes.xhtml#note-1" id="noteref-1" epub:type="noteref">1</a>. He said <em>nothing. Then</em> he left&#160;at once.</p>
\t\t\t<!-- the Mayor speaks -->
\t\t\t<p>“<em>I</em> have not,” said <b>Fil</b>by&#x2014;the Mayor. Tea<br/>then bed.</p>
\t\t\t<p>The area is <math xmlns="http://www.w3.org/1998/Math/MathML" alttext="x^2"><msup><mi>x</mi><mn>2</mn></msup></math> square metres, <span class="caps">OK</span>?</p>
\t\t\t<figure><img src="../images/dot.png" alt="A dot"/><figcaption>A small dot.</figcaption></figure>
\t\t</section>
\t</body>
</html>
"""  # noqa: E501
CHAPTER_TWO = """\t<body epub:type="bodymatter">
\t\t<section id="chapter-5" epub:type="chapter">
\t\t\t<h2>The Sphinx</h2>
\t\t\t<p>A white figure stood on the lawn. It did not move.</p>
\t\t</section>
\t</body>
</html>
"""
NOTES = """\t<body epub:type="backmatter">
\t\t<section id="endnotes" epub:type="endnotes">
\t\t\t<ol><li id="note-1" epub:type="endnote"><p>A note. <a href="chapter-4.xhtml#noteref-1" epub:type="backlink">↩</a></p></li></ol>
\t\t</section>
\t</body>
</html>
"""  # noqa: E501
NAV = """\t<body>
\t\t<nav epub:type="toc" id="toc"><h2>Contents</h2><ol>
\t\t\t<li><a href="text/chapter-4.xhtml">IV</a></li>
\t\t\t<li><a href="text/chapter-5.xhtml">The Sphinx</a></li>
\t\t\t<li><a href="text/notes.xhtml">Endnotes</a></li>
\t\t</ol></nav>
\t</body>
</html>
"""
PACKAGE = """<?xml version="1.0" encoding="utf-8"?>
<package xmlns="http://www.idpf.org/2007/opf" version="3.0" unique-identifier="uid" xml:lang="en">
\t<metadata xmlns:dc="http://purl.org/dc/elements/1.1/">
\t\t<dc:identifier id="uid">urn:uuid:0b5a4f0e-0c0d-4d7e-9a43-2f4d2c8e1b11</dc:identifier>
\t\t<dc:title>A Small Book</dc:title>
\t\t<dc:creator id="author">A. Writer</dc:creator>
\t\t<dc:language>en</dc:language>
\t\t<meta property="dcterms:modified">2024-01-01T00:00:00Z</meta>
\t</metadata>
\t<manifest>
\t\t<item href="css/book.css" id="book.css" media-type="text/css"/>
\t\t<item href="images/dot.png" id="dot.png" media-type="image/png"/>
\t\t<item href="text/chapter-4.xhtml" id="chapter-4.xhtml" media-type="application/xhtml+xml" properties="mathml"/>
\t\t<item href="text/chapter-5.xhtml" id="chapter-5.xhtml" media-type="application/xhtml+xml"/>
\t\t<item href="text/notes.xhtml" id="notes.xhtml" media-type="application/xhtml+xml"/>
\t\t<item href="toc.xhtml" id="toc.xhtml" media-type="application/xhtml+xml" properties="nav"/>
\t</manifest>
\t<spine>
\t\t<itemref idref="chapter-4.xhtml"/>
\t\t<itemref idref="chapter-5.xhtml"/>
\t\t<itemref idref="notes.xhtml"/>
\t</spine>
</package>
"""  # noqa: E501
#: a 1x1 PNG
DOT_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000100ffff03000006000557bfabd40000000049454e44ae426082"
)


def small_book_files() -> dict[str, bytes]:
    """The members of a small EPUB 3 (besides ``mimetype``): two chapters with inline
    markup, entities, a note reference, a comment, MathML and an image; endnotes."""

    def doc(title: str, body: str) -> bytes:
        return (XHTML_HEAD.format(title=title) + body).encode()

    return {
        "META-INF/container.xml": (
            b'<?xml version="1.0" encoding="utf-8"?>\n<container '
            b'xmlns="urn:oasis:names:tc:opendocument:xmlns:container" version="1.0">'
            b'<rootfiles><rootfile full-path="epub/content.opf" '
            b'media-type="application/oebps-package+xml"/></rootfiles></container>\n'
        ),
        "epub/content.opf": PACKAGE.encode(),
        "epub/css/book.css": b"p { text-indent: 1em; }\n",
        "epub/images/dot.png": DOT_PNG,
        "epub/text/chapter-4.xhtml": doc("IV", CHAPTER_ONE),
        "epub/text/chapter-5.xhtml": doc("The Sphinx", CHAPTER_TWO),
        "epub/text/notes.xhtml": doc("Endnotes", NOTES),
        "epub/toc.xhtml": (XHTML_HEAD.format(title="Contents") + NAV)
        .replace("../css/book.css", "css/book.css")
        .encode(),
    }


def write_small_book(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(
            zipfile.ZipInfo("mimetype"), b"application/epub+zip", compress_type=zipfile.ZIP_STORED
        )
        for name, data in small_book_files().items():
            archive.writestr(name, data, compress_type=zipfile.ZIP_DEFLATED)
    return path
