"""Chapters written from the chapter text: every word in a span, ids unique, text intact."""

from __future__ import annotations

from collections import Counter

from lxml import etree

from ssml.readalong.generated import (
    ACTIVE_CLASS,
    STYLESHEET,
    GeneratedChapter,
    container_xml,
    nav_document,
)
from ssml.readalong.words import by_sentence, layout
from tests.ssml.test_readalong_words import Word, track

X = "{http://www.w3.org/1999/xhtml}"
TEXT = (
    "Chapter 1: The Storm\n\n"
    'Mara kept the light — eleven years. "Steady," she said & smiled <sometimes>.\n\n'
    "x² + y² = z² holds. 你好，世界。"
)


def build(text: str = TEXT, words: list[Word] | None = None) -> tuple[GeneratedChapter, list]:
    found = layout(text, "Chapter 1: The Storm")
    chapter = GeneratedChapter(
        found, title="Chapter 1: The Storm", language="en", css_href="../ra.css", prefix="ra1-"
    )
    groups = [chapter.add(g) for g in by_sentence(words or track(text), found.sentences)]
    return chapter, groups


def test_every_voiced_word_gets_a_span_with_its_track_times() -> None:
    words = track(TEXT)
    chapter, groups = build()
    root = etree.fromstring(chapter.finish())
    spans = {el.get("id"): "".join(el.itertext()) for el in root.iter(f"{X}span")}
    pars = [p for g in groups for p in g.pars]
    for par in pars:
        index = int(par.fragment.removeprefix("ra1-w"))
        assert spans[par.fragment] == words[index].text
        assert (par.begin_ms, par.end_ms) == (words[index].start_ms, words[index].end_ms)
    assert chapter.stats.silent == 4  # "—", "&", "+", "=": nothing to say, no time
    assert chapter.stats.placed == len(pars) == len(words) - 4
    assert chapter.stats.words == len(words)
    assert chapter.stats.unplaced == chapter.stats.covered == 0


def test_the_text_is_the_chapter_text_and_ids_are_unique() -> None:
    chapter, _groups = build()
    data = chapter.finish()
    root = etree.fromstring(data)
    blocks = [el for el in root.iter() if el.tag in (f"{X}h1", f"{X}p")]
    assert [el.tag for el in blocks] == [f"{X}h1", f"{X}p", f"{X}p"]
    assert "\n\n".join("".join(el.itertext()) for el in blocks) == TEXT
    ids = Counter(el.get("id") for el in root.iter() if el.get("id"))
    assert ids and max(ids.values()) == 1
    assert b"&amp;" in data and b">&lt;sometimes&gt;.<" in data
    assert data.startswith(b"<?xml version='1.0' encoding='utf-8'?>\n<!DOCTYPE html>")


def test_sentence_spans_hold_their_words() -> None:
    chapter, groups = build()
    root = etree.fromstring(chapter.finish())
    by_id = {el.get("id"): el for el in root.iter() if el.get("id")}
    for group in groups:
        sentence = by_id[group.fragment]
        inside = {el.get("id") for el in sentence.iter(f"{X}span")}
        assert {p.fragment for p in group.pars} <= inside
        if group.pars:
            assert group.begin_ms == group.pars[0].begin_ms
            assert group.end_ms == group.pars[-1].end_ms


def test_text_the_track_does_not_cover_is_kept_without_spans() -> None:
    words = [w for w in track(TEXT) if w.char_start < TEXT.index('"Steady')]  # a failed segment
    chapter, _groups = build(words=words)
    root = etree.fromstring(chapter.finish())
    body = root.find(f"{X}body")
    assert "".join(body.itertext()) == TEXT.replace("\n\n", "")
    assert chapter.stats.words == len(words)


def test_nav_container_and_stylesheet() -> None:
    nav = etree.fromstring(nav_document("Book", "en", [("One", "text/01.xhtml")]))
    links = [(a.text, a.get("href")) for a in nav.iter(f"{X}a")]
    assert links == [("One", "text/01.xhtml")]
    container = etree.fromstring(container_xml("EPUB/package.opf"))
    assert container[0][0].get("full-path") == "EPUB/package.opf"
    assert f".{ACTIVE_CLASS}" in STYLESHEET
