"""An EPUB's own content documents marked with the word track: ids on each sentence and
word, nothing else changed; inline markup, entities, a sentence crossing an ``<em>``, a
word split by ``<b>``, the spoken heading, formulas that cannot be placed."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from jobs.render import RenderRequest, read_document
from ssml.ingest.archive import EPUB, Archive
from ssml.ingest.epub import find_opf, read_package, resolve
from ssml.ingest.html import extract_blocks, find_body
from ssml.readalong.source import (
    SourceText,
    choose_prefix,
    content_options,
    mark_document,
    parse_content,
)
from ssml.readalong.words import key_of, layout
from tests.epub_checks import small_book_files, write_small_book
from tests.ssml.test_readalong_words import Word, track

X = "{http://www.w3.org/1999/xhtml}"
OURS = re.compile(r"^ra\d+(n\d+)?-[sw]\d+(-\d+)?$")


def unwrap_ours(root: Any) -> Any:
    """The document with every span narrate added replaced by what it holds."""
    for span in [el for el in root.iter(f"{X}span") if OURS.match(el.get("id") or "")]:
        parent = span.getparent()
        index = parent.index(span)
        text, tail, children = span.text or "", span.tail or "", list(span)
        if index == 0:
            parent.text = (parent.text or "") + text
        else:
            before = parent[index - 1]
            before.tail = (before.tail or "") + text
        for offset, child in enumerate(children):
            parent.insert(index + offset, child)
        last = children[-1] if children else None
        parent.remove(span)
        if last is not None:
            last.tail = (last.tail or "") + tail
        elif index == 0:
            parent.text = (parent.text or "") + tail
        else:
            before = parent[index - 1]
            before.tail = (before.tail or "") + tail
    return root


@pytest.fixture
def chapter_four(tmp_path: Path) -> tuple[Any, str, str, bytes]:
    """The small book's first chapter: (the chapter as rendered, its title, its text, the
    content document's bytes)."""
    book = write_small_book(tmp_path / "small.epub")
    document = read_document(RenderRequest(book))
    chapter = document.chapters[0]
    return chapter, chapter.title, chapter.text, small_book_files()["epub/text/chapter-4.xhtml"]


def mark(data: bytes, title: str, text: str, words: list[Word], prefix: str = "ra1-") -> Any:
    root = parse_content(data, "chapter-4.xhtml")
    found = layout(text, title)
    document, groups = mark_document(root, words, found, prefix)
    return document, list(groups), etree.fromstring(document.finish(None))


def test_nothing_but_the_spans_changes(chapter_four: tuple[Any, str, str, bytes]) -> None:
    _chapter, title, text, data = chapter_four
    _document, _groups, marked = mark(data, title, text, track(text))
    original = parse_content(data, "chapter-4.xhtml")
    assert etree.tostring(unwrap_ours(marked)) == etree.tostring(original)
    assert b"<!-- the Mayor speaks -->" in etree.tostring(marked)  # comments are kept


def test_every_word_is_placed_where_its_letters_are(
    chapter_four: tuple[Any, str, str, bytes],
) -> None:
    _chapter, title, text, data = chapter_four
    words = track(text)
    document, groups, marked = mark(data, title, text, words)
    elements = {el.get("id"): el for el in marked.iter() if el.get("id")}
    placed = [p for g in groups for p in g.pars]
    for par in placed:
        word = words[int(par.fragment.removeprefix("ra1-w"))]
        assert key_of("".join(elements[par.fragment].itertext())) == key_of(word.text)
        assert (par.begin_ms, par.end_ms) == (word.start_ms, word.end_ms)
    stats = document.stats
    assert stats.words == len(words)
    assert stats.covered == 2  # "Chapter 4", written <h2>IV</h2>
    assert stats.unplaced == 1  # "x²": MathML, read as a formula
    assert stats.silent == 2  # "&", "—": nothing to say, no time
    assert stats.placed == len(placed) == len(words) - 5
    assert elements["ra1-s0"].getparent().tag == f"{X}h2"
    assert "".join(elements["ra1-s0"].itertext()) == "IV"


def test_ids_are_unique_and_avoid_the_documents_own(
    chapter_four: tuple[Any, str, str, bytes],
) -> None:
    _chapter, title, text, data = chapter_four
    _document, groups, marked = mark(data, title, text, track(text), prefix="ra4-")
    ids = [el.get("id") for el in marked.iter() if el.get("id")]
    assert len(ids) == len(set(ids))
    assert "ra4-first" in ids  # the book's own id, and so narrate's are ra4n1-...
    assert all(g.fragment is None or g.fragment.startswith("ra4n1-s") for g in groups)
    assert choose_prefix(parse_content(data, "x"), "ra7-") == "ra7-"


def test_a_sentence_crossing_an_em_is_wrapped_in_pieces_the_first_carrying_the_id(
    chapter_four: tuple[Any, str, str, bytes],
) -> None:
    _chapter, title, text, data = chapter_four
    _document, groups, marked = mark(data, title, text, track(text))
    elements = {el.get("id"): el for el in marked.iter() if el.get("id")}
    by_text = {"".join(elements[g.fragment].itertext()): g.fragment for g in groups if g.fragment}
    # "He said <em>nothing. Then</em> he left": sentence 2 starts outside the <em> and ends in it
    first = elements[by_text["He said "]]
    second = elements[by_text["He said "] + "-2"]
    assert first.getparent().tag == f"{X}p" and "".join(second.itertext()) == "nothing."
    assert second.getparent().tag == f"{X}em"
    then = elements[by_text["Then"]]
    assert then.getparent().tag == f"{X}em"
    assert "".join(elements[by_text["Then"] + "-2"].itertext()) == " he left\xa0at once."


def test_boundaries_at_the_edge_of_an_inline_element_are_lifted_out_of_it(
    chapter_four: tuple[Any, str, str, bytes],
) -> None:
    _chapter, title, text, data = chapter_four
    words = track(text)
    _document, _groups, marked = mark(data, title, text, words)
    spans = {el.get("id"): el for el in marked.iter(f"{X}span") if el.get("id")}

    def span_of(word: str) -> Any:
        index = next(i for i, w in enumerate(words) if w.text == word)
        return spans[f"ra1-w{index}"]

    quoted_i = span_of('"I')  # “<em>I</em>: the quote and the <em> inside the word's span
    written = etree.tostring(quoted_i, with_tail=False, encoding="unicode")
    assert written.endswith(">“<em>I</em></span>")
    filby = span_of("Filby")  # <b>Fil</b>by: one span around both
    assert "".join(filby.itertext()).startswith("Filby")
    assert filby.find(f"{X}b") is not None
    sentence = filby.getparent()
    assert sentence.tag == f"{X}span" and sentence.find(f"{X}span/{X}em") is not None


def test_the_spoken_text_is_what_ingest_reads(corpus: Path) -> None:
    """The walk over a content document sees exactly ingest's blocks, for every spine
    document of the Time Machine; with a track of every word, all words are placed."""
    book = corpus / "h-g-wells_the-time-machine.epub"
    document = read_document(RenderRequest(book))
    with Archive(book.read_bytes(), book.name, EPUB) as archive:
        opf = find_opf(archive)  # type: ignore[arg-type]
        package = read_package(archive.xml(opf), opf)
        for idref in package.spine:
            member = package.manifest[idref].path
            root = parse_content(archive.markup(member), member)
            body = find_body(root)
            source = SourceText(body, content_options(body))
            blocks = extract_blocks(body, content_options(body))
            assert [source.stream[b.start : b.end] for b in source.blocks] == [
                b.text for b in blocks
            ], member
        for chapter in document.chapters:
            member = resolve(opf, chapter.source)
            root = parse_content(archive.markup(member), member)
            marked, groups = mark_document(
                root, track(chapter.text), layout(chapter.text, chapter.title), "ra1-"
            )
            for _group in groups:
                pass
            stats = marked.stats
            assert stats.unplaced == 0, chapter.title
            assert stats.placed + stats.covered + stats.silent == stats.words
            assert stats.covered <= 2  # "Chapter 1" for <h2>I</h2>
