"""Compiling annotations per dialect, and checking documents against a dialect."""

from __future__ import annotations

import pytest

from ssml.annotations import Break, Emphasis, Lang, Phoneme, Prosody, SayAs, Sub
from ssml.build import build_blocks, text_content
from ssml.dialects import (
    UnsupportedMarkupError,
    check,
    espeak_alias,
    language_hint,
    validate,
)
from ssml.latex import read_formula

TEXT = "Say tomato and x² now."
ANNOTATIONS = (
    Sub(15, 17, "x squared", formula=read_formula("x^2")),
    Phoneme(4, 10, "təˈmɑːtoʊ", "ipa", alias="tomahto"),
    Emphasis(0, 3),
    Break(22, 300),
)


def test_espeak_compiles_everything_it_can() -> None:
    ssml = build_blocks([(TEXT, ANNOTATIONS)], pause_ms=700, dialect="espeak")
    assert ssml == (
        '<speak><emphasis level="moderate">Say</emphasis> '
        '<mark name="narrate-a0"/><sub alias="[[t@m\'A:toU]]">tomato</sub><mark name="narrate-z0"/>'
        ' and <mark name="narrate-a1"/><sub alias="x squared">x²</sub><mark name="narrate-z1"/>'
        ' now.<break time="300ms"/>\n</speak>'
    )
    assert text_content(ssml) == TEXT + "\n"
    assert validate(ssml, "espeak") == []


def test_cosyvoice_compiles_what_it_accepts_and_drops_the_rest() -> None:
    ssml = build_blocks([(TEXT, ANNOTATIONS)], pause_ms=700, dialect="cosyvoice")
    assert ssml == (
        '<speak xml:lang="en">Say <phoneme alphabet="cmu" ph="T AH0 M AA1 T OW0">tomato</phoneme>'
        ' and <sub alias="x squared">x²</sub> now.<break time="300ms"/>\n</speak>'
    )
    assert text_content(ssml) == TEXT + "\n"
    assert validate(ssml, "cosyvoice") == []


def test_language_spans_and_prosody() -> None:
    blocks = [("Hello 你好 world", (Lang(6, 8, "zh"), Prosody(0, 5, rate=1.5, pitch=1.2)))]
    espeak = build_blocks(blocks, pause_ms=0, dialect="espeak")
    assert '<voice xml:lang="cmn">你好</voice>' in espeak
    assert '<prosody rate="150%" pitch="+20%">Hello</prosody>' in espeak
    cosy = build_blocks(blocks, pause_ms=0, dialect="cosyvoice")
    assert cosy == '<speak xml:lang="en">Hello 你好 world\n</speak>'
    assert validate(espeak, "espeak") == [] and validate(cosy, "cosyvoice") == []


def test_pinyin_and_say_as() -> None:
    blocks = [("重庆 123", (Phoneme(0, 2, "chong2 qing4", "pinyin"), SayAs(3, 6, "digits")))]
    cosy = build_blocks(blocks, pause_ms=0, dialect="cosyvoice")
    assert '<phoneme alphabet="py" ph="chong2 qing4">重庆</phoneme>' in cosy
    assert '<say-as interpret-as="digits">123</say-as>' in cosy
    espeak = build_blocks(blocks, pause_ms=0, dialect="espeak")
    assert '<say-as interpret-as="tts:digits">123</say-as>' in espeak
    assert "phoneme" not in espeak  # espeak ignores <phoneme>: no alias, so plain text


def test_literal_double_brackets_are_not_phonemes_for_espeak() -> None:
    ssml = build_blocks([("see [[Page]] here", ())], pause_ms=0, dialect="espeak")
    assert ssml == '<speak>see <sub alias="[ [">[[</sub>Page]] here\n</speak>'


def test_breaks_are_clamped_for_cosyvoice() -> None:
    ssml = build_blocks([("a", (Break(1, 20),)), ("b", ())], pause_ms=20_000, dialect="cosyvoice")
    assert '<break time="50ms"/>' in ssml and '<break time="10000ms"/>' in ssml


def test_espeak_alias_respells_letters() -> None:
    assert espeak_alias("a squared plus b") == "eh squared plus b"
    assert espeak_alias("the i-th row of A") == "the eyeth row of eh"


def test_language_hint_is_split_off() -> None:
    ssml = '<speak xml:lang="zh" rate="1.2">你好\n</speak>'
    assert language_hint(ssml) == ('<speak rate="1.2">你好\n</speak>', "zh")
    assert language_hint("<speak>x</speak>") == ("<speak>x</speak>", None)


USER = """<speak>
  <p>Hello <prosody rate="slow">there</prosody>.</p>
  <p><audio src="x.wav"/><mark name="m"/>
     <break time="20s"/><say-as interpret-as="date">2024-01-01</say-as></p>
</speak>"""


def test_validate_reports_line_and_column() -> None:
    problems = validate(USER, "cosyvoice", source=True)
    assert [(p.line, p.column) for p in problems] == [(2, 12), (3, 6), (3, 26), (4, 6)]
    assert "prosody" in problems[0].message
    assert "audio" in problems[1].message
    assert "20s" in problems[3].message
    espeak = validate(USER, "espeak", source=True)
    assert [(p.line, p.column, p.message.split(":")[0]) for p in espeak] == [
        (3, 6, "<audio> is not supported by espeak")
    ]


def test_not_well_formed_and_wrong_root() -> None:
    (problem,) = validate("<speak>\n  <sub alias='x'>y</speak>", "espeak")
    assert problem.line == 2 and "well-formed" in problem.message
    assert "must be a <speak>" in validate("<p>x</p>", "espeak")[0].message
    assert "nested" in validate("<speak><speak>x</speak></speak>", "cosyvoice")[0].message


def test_value_checks() -> None:
    bad = (
        '<speak rate="3" volume="150"><phoneme alphabet="py" ph="ni3">你好</phoneme>'
        '<sub alias=" ">x</sub><sub>y</sub></speak>'
    )
    messages = [p.message for p in validate(bad, "cosyvoice")]
    assert any("rate 3" in m for m in messages)
    assert any("volume 150" in m for m in messages)
    assert any("not valid py" in m for m in messages)
    assert any("empty alias" in m for m in messages)
    assert any("needs the attribute 'alias'" in m for m in messages)


def test_check_raises_an_input_error() -> None:
    with pytest.raises(UnsupportedMarkupError) as info:
        check(USER, "cosyvoice", name="talk.ssml")
    assert info.value.exit_code == 2
    assert "line 2, column 12" in str(info.value)


def test_piper_compiles_aliases_ipa_and_pauses_and_drops_the_rest() -> None:
    ssml = build_blocks([(TEXT, ANNOTATIONS), ("Next.", ())], pause_ms=700, dialect="piper")
    assert ssml == (
        '<speak>Say <phoneme alphabet="ipa" ph="təˈmɑːtoʊ">tomato</phoneme>'
        ' and <sub alias="x squared">x²</sub> now.<break time="300ms"/><break time="700ms"/>'
        "\n\nNext.\n</speak>"
    )
    assert text_content(ssml) == TEXT + "\n\nNext.\n"
    assert validate(ssml, "piper") == []


def test_piper_reads_cmu_as_ipa_say_as_as_words_and_respells_formula_letters() -> None:
    blocks = [
        (
            "tomato ABC 42 a",
            (
                Phoneme(0, 6, "T AH0 M EY1 T OW2", "cmu"),
                SayAs(7, 10, "characters"),
                SayAs(11, 13, "digits"),
                Sub(14, 15, "a squared", formula=read_formula("a^2")),
            ),
        )
    ]
    ssml = build_blocks(blocks, pause_ms=0, dialect="piper")
    assert '<phoneme alphabet="ipa" ph="təmˈeɪtˌoʊ">tomato</phoneme>' in ssml
    assert '<sub alias="eh bee see">ABC</sub>' in ssml
    assert '<sub alias="four two">42</sub>' in ssml
    assert '<sub alias="eh squared">a</sub>' in ssml
    pinyin = build_blocks(
        [("重庆", (Phoneme(0, 2, "chong2 qing4", "pinyin", alias="x"),))],
        pause_ms=0,
        dialect="piper",
    )
    assert pinyin == '<speak><sub alias="x">重庆</sub>\n</speak>'


def test_piper_validation() -> None:
    assert validate('<speak><phoneme alphabet="cmu" ph="T AH0">t</phoneme></speak>', "piper")
    assert validate('<speak>a<break time="11s"/>b</speak>', "piper")
    assert validate(USER, "piper", source=True)[0].message.startswith(
        "<prosody> is not supported by piper"
    )
    source = (
        '<speak><p>Hi <say-as interpret-as="date">2024-01-01</say-as>'
        '<break strength="weak"/></p></speak>'
    )
    assert validate(source, "piper", source=True) == []
