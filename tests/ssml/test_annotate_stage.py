"""The annotation stage: formulas, lexicon, numbers and languages, end to end to SSML."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ssml.annotate import annotate, annotate_block
from ssml.annotations import Lang, Sub
from ssml.build import text_content
from ssml.dialects import UnsupportedMarkupError, validate
from ssml.document import Chapter, Document
from ssml.ingest import load
from ssml.lexicon import parse_simple
from ssml.segment import SegmentPolicy, segment_chapter

FORMULA_MARKS = re.compile(r"[\\$^_{]")


def doc(*paragraphs: str, fmt: str = "text", language: str | None = None) -> Document:
    return Document((Chapter("One", paragraphs),), format=fmt, language=language)


def test_formula_is_replaced_by_its_display_and_spoken_as_an_alias() -> None:
    out = annotate(doc("So $x^2 + y^2 = z^2$ holds. It costs $5 and $10."))
    chapter = out.chapters[0]
    assert chapter.paragraphs == ("So x² + y² = z² holds. It costs $5 and $10.",)
    formula, five, ten = chapter.annotations[0]
    assert isinstance(formula, Sub) and formula.formula is not None
    assert chapter.paragraphs[0][formula.start : formula.end] == "x² + y² = z²"
    assert formula.alias == "x squared plus y squared equals z squared"
    assert formula.formula.source == "x^2 + y^2 = z^2"
    assert (five.alias, ten.alias) == ("five dollars", "ten dollars")


def test_punctuation_inside_a_display_formula_moves_after_it() -> None:
    out = annotate(doc(r"$$x = 1.$$"))
    assert out.chapters[0].paragraphs == ("x = 1.",)
    (sub,) = out.chapters[0].annotations[0]
    assert (sub.start, sub.end) == (0, 5)


def test_segments_carry_formulas_and_keep_the_text_content() -> None:
    out = annotate(doc(r"Let \(a\) be. Then $$\frac{a}{b}.$$ Done in 1905, e.g. now."))
    (segment,) = segment_chapter(out.chapters[0], SegmentPolicy(200))
    assert [f.spoken for f in segment.formulas] == ["a", "a over b"]
    assert [f.display for f in segment.formulas] == ["a", "a/b"]
    assert text_content(segment.ssml) == segment.text + "\n"
    assert '<sub alias="eh">a</sub>' in segment.ssml  # espeak says the letter
    assert validate(segment.ssml, "espeak") == []


def test_a_sentence_split_never_cuts_a_formula() -> None:
    formula = " + ".join(f"x_{k}" for k in range(30)) + r" = 1. \text{So } y = 2"
    out = annotate(doc(f"Consider ${formula}$ here. More text follows."))
    segments = segment_chapter(out.chapters[0], SegmentPolicy(40))
    (whole,) = [s for s in segments if "<sub" in s.ssml]
    assert whole.text.startswith("x₀ + x₁") and whole.text.endswith("So y = 2")
    for s in segments:
        assert text_content(s.ssml) == s.text + "\n"


def test_lexicon_entries_keep_the_written_word() -> None:
    lexicon = parse_simple("Nguyen = win\ntomato = /təˈmɑːtoʊ/\nnasa = nasa\n")
    out = annotate(doc("Dr. Nguyen from NASA likes tomato soup."), lexicon=lexicon)
    (segment,) = segment_chapter(out.chapters[0], SegmentPolicy(200))
    assert segment.text == "Dr. Nguyen from NASA likes tomato soup."
    assert '<sub alias="win">Nguyen</sub>' in segment.ssml
    assert '<sub alias="nasa">NASA</sub>' in segment.ssml
    assert '<sub alias="[[t@m\'A:toU]]">tomato</sub>' in segment.ssml
    cosy = annotate(doc("Dr. Nguyen likes tomato."), lexicon=lexicon, dialect="cosyvoice")
    (segment,) = segment_chapter(cosy.chapters[0], SegmentPolicy(200, dialect="cosyvoice"))
    assert '<phoneme alphabet="cmu" ph="T AH0 M AA1 T OW0">tomato</phoneme>' in segment.ssml


def test_chinese_and_english_paragraphs_are_told_apart() -> None:
    out = annotate(doc("An English paragraph.", "子曰：学而时习之。", "Another one."))
    assert out.language == "en"
    annotations = out.chapters[0].annotations
    assert annotations[0] == () and annotations[2] == ()
    assert annotations[1] == (Lang(0, 9, "zh"),)
    ssml = "".join(s.ssml for s in segment_chapter(out.chapters[0], SegmentPolicy(500)))
    assert '<voice xml:lang="cmn">子曰：学而时习之。</voice>' in ssml
    chinese = annotate(doc("子曰：学而时习之，不亦说乎？", "Confucius said so."))
    assert chinese.language == "zh"
    assert chinese.chapters[0].annotations[1] == (Lang(0, 18, "en"),)


def test_numbers_are_not_normalised_in_chinese() -> None:
    out = annotate(doc("他在2024年花了$5。", language="zh"))
    assert not any(isinstance(a, Sub) for a in out.chapters[0].annotations[0])


def test_passthrough_keeps_latex_for_cosyvoice_in_chinese_only() -> None:
    source = doc(r"勾股定理：$a^2+b^2=c^2$。", r"In English $a^2$ too.")
    out = annotate(source, dialect="cosyvoice", latex="passthrough")
    zh, en = (next(a for a in anns if isinstance(a, Sub)) for anns in out.chapters[0].annotations)
    assert isinstance(zh, Sub) and zh.alias == "$a^2+b^2=c^2$" and zh.origin == "latex-passthrough"
    assert isinstance(en, Sub) and en.alias == "a squared"
    espeak = annotate(source, dialect="espeak", latex="passthrough")
    first = next(a for a in espeak.chapters[0].annotations[0] if isinstance(a, Sub))
    assert first.alias.startswith("a squared plus")


def test_malformed_formulas_are_warned_about_not_fatal() -> None:
    out = annotate(doc(r"Broken $\frac{1}{$ here."))
    assert out.warnings and "chapter 1 (One)" in out.warnings[0]
    (segment,) = segment_chapter(out.chapters[0], SegmentPolicy(200))
    assert not FORMULA_MARKS.search(segment.ssml)


SSML = """<speak xml:lang="en">
  <p>Hello <sub alias="World Wide Web">WWW</sub>.<break time="300ms"/>
  On <say-as interpret-as="date">2024-03-16</say-as>.</p>
  <p><prosody rate="slow">Slowly.</prosody></p>
</speak>
"""


def test_ssml_documents_are_read_and_checked_against_the_engine(tmp_path: Path) -> None:
    path = tmp_path / "talk.ssml"
    path.write_text(SSML, encoding="utf-8")
    document = load(path)
    assert document.format == "ssml"
    assert document.chapters[0].paragraphs == ("Hello WWW. On 2024-03-16.", "Slowly.")
    out = annotate(document, dialect="espeak")
    ssml = "".join(s.ssml for s in segment_chapter(out.chapters[0], SegmentPolicy(500)))
    assert '<sub alias="World Wide Web">WWW</sub>' in ssml
    assert '<break time="300ms"/>' in ssml
    assert "the sixteenth of March twenty twenty-four" in ssml
    assert '<prosody rate="75%">Slowly.</prosody>' in ssml
    with pytest.raises(UnsupportedMarkupError) as info:
        annotate(document, dialect="cosyvoice")
    assert "line 4, column 6: <prosody> is not supported by cosyvoice" in str(info.value)


def test_xml_with_a_speak_root_is_ssml(tmp_path: Path) -> None:
    path = tmp_path / "talk.xml"
    path.write_text('<?xml version="1.0"?>\n<speak>Hi <sub alias="there">x</sub>.</speak>')
    assert load(path).format == "ssml"


@pytest.mark.parametrize(
    "name",
    [
        "d2l-en_linear-algebra.md",
        "d2l-en_calculus.md",
        "h-g-wells_the-time-machine.md",
        "lunyu_ch1-8_zh.txt",
    ],
)
@pytest.mark.parametrize(("dialect", "max_chars"), [("espeak", 1500), ("cosyvoice", 2000)])
def test_every_corpus_segment_passes_its_dialect_check(
    name: str, dialect: str, max_chars: int, corpus: Path
) -> None:
    document = annotate(load(corpus / name), dialect=dialect)
    for chapter in document.chapters:
        for segment in segment_chapter(chapter, SegmentPolicy(max_chars, dialect=dialect)):
            assert validate(segment.ssml, dialect) == [], segment.ssml[:300]
            assert text_content(segment.ssml) == segment.text + "\n"


@pytest.mark.parametrize("name", ["d2l-en_linear-algebra.md", "d2l-en_calculus.md"])
@pytest.mark.parametrize("dialect", ["espeak", "cosyvoice"])
def test_d2l_lessons_have_no_raw_latex_in_any_ssml(name: str, dialect: str, corpus: Path) -> None:
    document = annotate(load(corpus / name), dialect=dialect)
    formulas = 0
    for chapter in document.chapters:
        for segment in segment_chapter(chapter, SegmentPolicy(1500, dialect=dialect)):
            for formula in segment.formulas:
                formulas += 1
                assert formula.spoken, formula
                assert not FORMULA_MARKS.search(formula.spoken + formula.display), formula
            # what is left once code spans (`sum_A`) are taken out holds no LaTeX mark
            prose = re.sub(r"\b\w+_\w+\b", "", text_content(segment.ssml))
            assert not FORMULA_MARKS.search(prose), prose
            for alias in re.findall(r'alias="([^"]*)"', segment.ssml):
                assert not FORMULA_MARKS.search(alias), alias
    assert formulas > 100
    assert document.warnings == ()


def test_markdown_text_loses_its_doubled_backslashes_and_annotations_follow() -> None:
    text = r"A \\ b \(x^2\) c \\\\ d $5 e"
    existing = (
        Sub(text.index("d"), text.index("d") + 1, "dee"),
        Sub(len(text) - 1, len(text), "ee"),
    )
    shown, annotations = annotate_block(text, existing, dollars=False, escaped=True)
    assert shown == r"A \ b x² c \\ d $5 e"
    by_alias = {a.alias: shown[a.start : a.end] for a in annotations if isinstance(a, Sub)}
    assert by_alias == {"dee": "d", "ee": "e", "x squared": "x²", "five dollars": "$5"}


def test_empty_and_unmatched_double_dollars_are_dropped_in_text_too() -> None:
    warnings: list[str] = []
    shown, annotations = annotate_block("a $$$$ b $$ c", warnings=warnings, where="here")
    assert (shown, annotations) == ("a b c", ())
    assert warnings == [
        "here: an empty formula '$$$$' was left out of the text",
        "here: a '$$' that opens no formula (no closing '$$') was left out of the text",
    ]
