"""Pronunciation lexicons: the simple format, W3C PLS, and errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from ssml.annotations import Phoneme, Sub
from ssml.lexicon import LexiconError, load_lexicon, parse_simple
from ssml.phonemes import cmu_to_espeak, ipa_to_cmu, to_espeak

SIMPLE = """# a comment
Nguyen = win
tomato = /təˈmɑːtoʊ/           # IPA
GIF = [cmu: JH IH1 F]
重庆 = [pinyin: chong2 qing4]
SQL = sequel [cmu: S IY1 K W AH0 L]
New York = [ipa: nuː ˈjɔːrk]
nasa = nasa
"""

PLS = """<?xml version="1.0" encoding="UTF-8"?>
<lexicon version="1.0" xmlns="http://www.w3.org/2005/01/pronunciation-lexicon"
         alphabet="ipa" xml:lang="en-US">
  <lexeme><grapheme>tomato</grapheme><grapheme>Tomato</grapheme>
    <phoneme>təˈmɑːtoʊ</phoneme></lexeme>
  <lexeme><grapheme>W3C</grapheme><alias>World Wide Web Consortium</alias></lexeme>
  <lexeme><grapheme>GIF</grapheme><phoneme alphabet="x-cmu">JH IH1 F</phoneme></lexeme>
</lexicon>
"""


def test_simple_format(tmp_path: Path) -> None:
    path = tmp_path / "words.lex"
    path.write_text(SIMPLE, encoding="utf-8")
    lexicon = load_lexicon(path)
    text = "Nguyen said NASA and Nasa like tomato, GIF and SQL in New York and 重庆."
    found = lexicon.find(text)
    spans = {text[a.start : a.end]: a for a in found}
    assert spans["Nguyen"] == Sub(0, 6, "win", origin="lexicon")
    assert spans["NASA"] == Sub(12, 16, "nasa", origin="lexicon")
    assert "Nasa" in spans
    assert isinstance(spans["tomato"], Phoneme) and spans["tomato"].alphabet == "ipa"
    assert isinstance(spans["GIF"], Phoneme) and spans["GIF"].ph == "JH IH1 F"
    sql = spans["SQL"]
    assert isinstance(sql, Phoneme) and (sql.alias, sql.alphabet) == ("sequel", "cmu")
    assert isinstance(spans["New York"], Phoneme)
    assert isinstance(spans["重庆"], Phoneme) and spans["重庆"].alphabet == "pinyin"


def test_whole_words_and_case() -> None:
    lexicon = parse_simple("Ada = ay da\n")
    assert lexicon.find("Adam and ada") == []
    assert [a.start for a in lexicon.find("Ada, Ada.")] == [0, 5]


def test_taken_spans_are_left_alone() -> None:
    lexicon = parse_simple("x = ex\n")
    assert lexicon.find("x and x", [(0, 1)]) == [Sub(6, 7, "ex", origin="lexicon")]


def test_pls_import(tmp_path: Path) -> None:
    path = tmp_path / "words.pls"
    path.write_text(PLS, encoding="utf-8")
    lexicon = load_lexicon(path)
    assert len(lexicon.entries) == 3
    found = lexicon.find("The W3C likes Tomato GIFs and a GIF.")
    assert [type(a).__name__ for a in found] == ["Sub", "Phoneme", "Phoneme"]
    assert found[0] == Sub(4, 7, "World Wide Web Consortium", origin="lexicon")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("no equals sign", "line 1: expected 'graphemes = pronunciation'"),
        ("x = [klingon: abc]", "unknown phoneme alphabet 'klingon'"),
        ("x = /ʘʘʘ/", "cannot read the ipa phonemes"),
    ],
)
def test_errors_name_the_line(text: str, message: str) -> None:
    with pytest.raises(LexiconError) as info:
        parse_simple(text, "words.lex")
    assert message in str(info.value)
    assert info.value.exit_code == 2


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(LexiconError):
        load_lexicon(tmp_path / "nope.lex")


def test_phoneme_conversions() -> None:
    assert ipa_to_cmu("təˈmeɪtoʊ") == "T AH0 M EY1 T OW0"
    assert cmu_to_espeak("T AH0 M EY1 T OW2") == "t@m'eIt,oU"
    assert to_espeak("h@'loU", "x-espeak") == "h@'loU"
    assert to_espeak("ni3 hao3", "pinyin") is None
