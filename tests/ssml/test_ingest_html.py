"""Tests for HTML ingest and hardened XML/HTML parsing."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from narrate.errors import EmptyDocumentError, MalformedDocumentError
from ssml.document import Document
from ssml.ingest import load
from ssml.ingest.safexml import parse_html, parse_xml

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<html><body><h1>Laughs</h1><p>&lol9;</p></body></html>
"""

XXE = """<?xml version="1.0"?>
<!DOCTYPE html [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<html><body><h1>Secrets</h1><p>&xxe;</p></body></html>
"""


def html(tmp_path: Path, body: str, name: str = "page.html") -> Document:
    path = tmp_path / name
    path.write_text(body, encoding="utf-8")
    return load(path)


PAGE = """<!DOCTYPE html>
<html lang="en-GB">
<head><title>The  Page</title><style>p { color: red }</style>
<script>var x = "script text";</script></head>
<body>
<header><p>Site header</p></header>
<nav><a href="/">Home</a></nav>
<p>Before any heading.</p>
<!-- a comment -->
<h1>First <em>Chapter</em></h1>
<p>Hello <b>bold</b> <a href="#">link</a> world.<sup>1</sup></p>
<h3>A sub heading</h3>
<div>Loose div text <span>with span</span><p>and a paragraph inside</p>tail text</div>
<ul><li>one</li><li>two<ul><li>nested</li></ul></li></ul>
<blockquote><p>Quoted one.</p><p>Quoted two.</p></blockquote>
<blockquote>Bare quote.</blockquote>
<dl><dt>Term</dt><dd>Definition</dd></dl>
<table><tr><th>H1</th><th>H2</th></tr><tr><td>c1</td><td>c2</td></tr></table>
<pre>code block</pre>
<aside>Aside text</aside>
<noscript>No script</noscript>
<template><p>Template</p></template>
<h2>Second</h2>
<p>Text<br>after break <img src="x.png" alt="an image"> end.</p>
<footer>Site footer</footer>
</body></html>
"""


def test_html_structure(tmp_path: Path) -> None:
    doc = html(tmp_path, PAGE)
    assert doc.format == "html"
    assert doc.title == "The Page"
    assert doc.language == "en-GB"
    assert [c.title for c in doc.chapters] == ["The Page", "First Chapter", "Second"]
    assert doc.chapters[0].paragraphs == ("Before any heading.",)
    assert doc.chapters[1].paragraphs == (
        "Hello bold link world.",
        "A sub heading",
        "Loose div text with span",
        "and a paragraph inside",
        "tail text",
        "one",
        "two",
        "nested",
        "Quoted one.",
        "Quoted two.",
        "Bare quote.",
        "Term",
        "Definition",
        "H1",
        "H2",
        "c1",
        "c2",
    )
    assert doc.chapters[2].paragraphs == ("Text after break end.",)
    assert doc.chapters[1].source == "line 10"


def test_heading_followed_by_heading_merges(tmp_path: Path) -> None:
    doc = html(tmp_path, "<h1>Book</h1><h2>Chapter 1</h2><p>Body.</p>")
    assert [(c.title, c.heading, c.paragraphs) for c in doc.chapters] == [
        ("Chapter 1", "Book. Chapter 1", ("Body.",))
    ]


def test_without_title_preamble_is_introduction(tmp_path: Path) -> None:
    doc = html(tmp_path, "<p>Intro.</p><h2>IV</h2><p>Body.</p>")
    assert [(c.title, c.heading) for c in doc.chapters] == [
        ("Introduction", ""),  # made-up titles are not spoken
        ("IV", "Chapter 4"),
    ]


FOOTNOTES = """<html><body><h1>Notes</h1>
<p>Claim<sup><a href="#fn1">1</a></sup> and<sup>[2]</sup> star<sup>*</sup>
 noteref<a href="#n" role="doc-noteref">3</a> epub<a epub:type="noteref" href="#n">4</a>
 x<sup>a</sup> E = mc<sup>two</sup>.</p>
<p>Back <a href="#r" role="doc-backlink">↩</a>here.</p>
<section class="footnotes"><ol><li id="fn1">The footnote text.</li></ol></section>
</body></html>"""


def test_footnote_markers_and_bodies_dropped(tmp_path: Path) -> None:
    doc = html(tmp_path, FOOTNOTES)
    assert doc.chapters[0].paragraphs == (
        "Claim and star noteref epub xa E = mctwo.",
        "Back here.",
    )


MATH = """<html><body><h1>Math</h1>
<p>Area <math alttext="\\pi r^2"><mi>π</mi><msup><mi>r</mi><mn>2</mn></msup></math> here.</p>
<p>Sum <math><semantics><mrow><mi>a</mi><mo>+</mo><mi>b</mi></mrow>
<annotation encoding="application/x-tex">a+b</annotation></semantics></math> there.</p>
</body></html>"""


def test_mathml_becomes_delimited_latex(tmp_path: Path) -> None:
    doc = html(tmp_path, MATH)
    assert doc.chapters[0].paragraphs == ("Area \\(\\pi r^2\\) here.", "Sum \\(a+b\\) there.")


def test_mathml_without_tex_is_converted(tmp_path: Path) -> None:
    doc = html(
        tmp_path,
        "<h1>M</h1><p>So <math display='block'><mfrac><mn>1</mn><msqrt><mi>x</mi></msqrt>"
        "</mfrac><mo>≤</mo><msup><mi>y</mi><mn>2</mn></msup></math></p>",
    )
    assert doc.chapters[0].paragraphs == ("So \\[\\frac{1}{\\sqrt{x}} ≤ {y}^{2}\\]",)


def test_entities_and_typography(tmp_path: Path) -> None:
    doc = html(
        tmp_path, "<h1>T</h1><p>caf&eacute; &ldquo;q&rdquo; a&nbsp;b&hellip; x&#8288;&mdash;y</p>"
    )
    assert doc.chapters[0].paragraphs == ('café "q" a b... x — y',)


def test_xhtml_extension_and_xml_declaration(tmp_path: Path) -> None:
    page = (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.1//EN" '
        '"http://www.w3.org/TR/xhtml11/DTD/xhtml11.dtd">\n'
        '<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="fr"><head><title>X</title></head>'
        "<body><h1>Un</h1><p>Bonjour.</p></body></html>"
    )
    doc = html(tmp_path, page, name="page.xhtml")
    assert doc.format == "html"
    assert [c.paragraphs for c in doc.chapters] == [("Bonjour.",)]


def test_empty_page(tmp_path: Path) -> None:
    with pytest.raises(EmptyDocumentError):
        html(tmp_path, "<html><head><title>T</title></head><body><script>x</script></body></html>")


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "p.html"
    path.write_bytes(b"<p>caf\xe9</p>")
    with pytest.raises(MalformedDocumentError, match="byte offset 6"):
        load(path)


# --- hostile input --------------------------------------------------------------------


@pytest.mark.parametrize("name", ["bomb.html", "bomb.xhtml", "bomb"])
def test_billion_laughs_refused_quickly(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text(BILLION_LAUGHS, encoding="utf-8")
    start = time.perf_counter()
    with pytest.raises(MalformedDocumentError) as info:
        load(path, format="html" if name == "bomb" else None)
    assert time.perf_counter() - start < 1
    message = str(info.value)
    assert "<!ENTITY" in message and "billion laughs" in message
    assert "remove the <!ENTITY> declarations" in message


def test_xxe_refused(tmp_path: Path) -> None:
    path = tmp_path / "xxe.html"
    path.write_text(XXE, encoding="utf-8")
    with pytest.raises(MalformedDocumentError, match="entities") as info:
        load(path)
    assert "root:" not in str(info.value)


def test_parsers_do_not_expand_entities_even_if_called_directly() -> None:
    with pytest.raises(MalformedDocumentError):
        parse_xml(XXE.encode(), "x.xml")
    with pytest.raises(MalformedDocumentError):
        parse_html(BILLION_LAUGHS.encode(), "x.html")


def test_utf16_entity_declaration_is_seen() -> None:
    with pytest.raises(MalformedDocumentError, match="entities"):
        parse_xml(XXE.replace('"1.0"?>', '"1.0" encoding="utf-16"?>').encode("utf-16"), "x.xml")


def test_parse_xml_rejects_malformed() -> None:
    with pytest.raises(MalformedDocumentError, match="not well-formed"):
        parse_xml(b"<a><b></a>", "broken.xml")


def test_absurdly_deep_nesting_refused(tmp_path: Path) -> None:
    page = "<html><body>" + "<div>" * 5000 + "<p>deep</p>" + "</div>" * 5000 + "</body></html>"
    with pytest.raises(MalformedDocumentError, match="256 levels deep"):
        html(tmp_path, page)


@pytest.mark.parametrize("content", ["", "  \n", "<html></html>"])
def test_empty_html_file(tmp_path: Path, content: str) -> None:
    with pytest.raises(EmptyDocumentError):
        html(tmp_path, content)
