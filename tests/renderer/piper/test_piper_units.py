"""The Piper engine's pure parts: reading its SSML, timing units from a phoneme stream,
splitting long sentences, options, and finding voices on disk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from narrate.errors import UsageError, VoiceNotFoundError
from renderer.piper.align import Timed, timed_symbols, unit_marks
from renderer.piper.engine import (
    PiperSettings,
    check_prosody,
    length_scale_for,
    parse_options,
    split_long,
)
from renderer.piper.text import Unit, read_ssml
from renderer.piper.voices import (
    BUNDLED_LICENCE,
    BrokenVoiceError,
    VoiceFiles,
    list_voices,
    model_card_licence,
    read_config,
    resolve_voice,
)
from ssml.annotations import Break, Phoneme, Sub
from ssml.build import build_blocks


def test_reading_splits_runs_at_breaks_and_keeps_what_is_shown() -> None:
    text = "He paid 1895 for [[it]] and tomato."
    ssml = build_blocks(
        [
            (text, (Sub(8, 12, "eighteen ninety-five"), Phoneme(28, 34, "təˈmɑːtoʊ", "ipa"))),
            ("Next one.", (Break(4, 300),)),
        ],
        pause_ms=700,
        dialect="piper",
    )
    reading = read_ssml(ssml)
    assert reading.text == text + "\n\nNext one.\n"
    first, second, third = reading.runs
    assert [u.spoken for u in first.units] == [
        "He",
        "paid",
        "eighteen ninety-five",
        "for",
        "[ [it] ]",  # literal brackets are not read as phonemes
        "and",
        "[[təˈmɑːtoʊ]]",
        ".",
    ]
    sub = first.units[2]
    assert reading.text[sub.char_start : sub.char_end] == "1895"
    ipa = first.units[6]
    assert ipa.ipa == "təˈmɑːtoʊ" and reading.text[ipa.char_start : ipa.char_end] == "tomato"
    assert first.pause_before_ms == 0 and second.pause_before_ms == 700
    assert [u.spoken for u in second.units] == ["Next"]
    assert third.pause_before_ms == 300 and [u.spoken for u in third.units] == ["one."]
    assert reading.pause_after_ms == 0


def test_trailing_and_repeated_breaks_add_up_and_cap() -> None:
    reading = read_ssml('<speak><break time="2s"/>Hi.<break time="9s"/><break time="5s"/></speak>')
    (run,) = reading.runs
    assert run.pause_before_ms == 2000 and reading.pause_after_ms == 10_000


def stream(*symbols: str, width: int = 100) -> list[Timed]:
    return [Timed(s, i * width, (i + 1) * width) for i, s in enumerate(symbols)]


def test_units_are_timed_from_their_phonemes_even_when_espeak_joins_words() -> None:
    # "was the saint": espeak says "wʌzðə sˈeɪnt" (two words joined)
    units = [Unit("was", 0, 3), Unit("the", 4, 7), Unit("saint", 8, 13)]
    alone = {"was": "wʌz", "the": "ðə", "saint": "sˈeɪnt"}
    heard = stream(*"wʌzðə sˈeɪnt.")
    marks = unit_marks(
        units, heard, lambda u: list(alone[u.spoken]), offset_samples=1000, sample_rate_hz=1000
    )
    assert [(m.char_start, m.start_ms, m.end_ms) for m in marks] == [
        (0, 1000, 1300),
        (4, 1300, 1500),
        (8, 1600, 2200),  # the stress mark before "eɪ" is not its start: "s" is
    ]


def test_a_unit_that_does_not_match_gets_the_sounds_between_its_neighbours() -> None:
    units = [Unit("remember", 0, 8), Unit("a", 9, 10), Unit("winter", 11, 17)]
    alone = {"remember": "ɹᵻmˈɛmbɚ", "a": "ˈeɪ", "winter": "wˈɪntɚ"}
    heard = stream(*"ɹᵻmˈɛmbɚɹ ɐ wˈɪntɚ")
    marks = unit_marks(
        units, heard, lambda u: list(alone[u.spoken]), offset_samples=0, sample_rate_hz=1000
    )
    by_start = {m.char_start: (m.start_ms, m.end_ms) for m in marks}
    assert by_start[9] == (800, 1100)  # "ɹ ɐ": the linking r is heard before "a"
    assert by_start[11][0] == 1200  # "w" (the stress mark after it stays inside the word)


def test_timed_symbols_count_the_pad_before_a_phoneme_and_scale_to_the_audio() -> None:
    id_map = {"^": [1], "_": [0], "$": [2], "a": [3], "b": [4]}
    # ids: ^ _ a _ b _ $  -> samples per id
    spans = timed_symbols(["a", "?", "b"], id_map, [256, 256, 512, 256, 768, 256, 0], 2304)
    assert spans == [Timed("a", 256, 1024), Timed("?", 1024, 1024), Timed("b", 1024, 2048)]
    halved = timed_symbols(["a", "b"], id_map, [256, 256, 512, 256, 768, 256, 0], 1152)
    assert halved[-1].end == 1024  # scaled by 1152 / 2304


def test_long_sentences_are_cut_after_clauses_then_at_word_gaps() -> None:
    sentence = list("ab, cd ef, gh ij.")
    assert split_long(sentence, limit=8) == [list("ab,"), list("cd ef,"), list("gh ij.")]
    assert split_long(list("abcdefgh"), limit=3) == [list("abc"), list("def"), list("gh")]
    assert split_long(sentence) == [sentence]


def test_options_and_prosody() -> None:
    assert parse_options(()) == PiperSettings()
    settings = parse_options((("noise_scale", "0.667"), ("speaker", "2")))
    assert settings.noise_scale == 0.667 and settings.speaker == 2
    assert settings.options() == (
        ("noise_scale", "0.667"),
        ("noise_w_scale", "0"),
        ("speaker", "2"),
    )
    for bad in (("noise_scale", "3"), ("noise_w_scale", "x"), ("speaker", "-1"), ("seed", "1")):
        with pytest.raises(UsageError):
            parse_options((bad,))
    with pytest.raises(UsageError, match="no pitch control"):
        check_prosody(1.0, 1.2, 1.0)
    check_prosody(1.5, 1.0, 0.5)


def write_voice(folder: Path, name: str, config: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    model = folder / f"{name}.onnx"
    model.write_bytes(b"not an onnx model")
    (folder / f"{name}.onnx.json").write_text(json.dumps(config))
    return model


CONFIG = {
    "audio": {"sample_rate": 16000, "quality": "low"},
    "espeak": {"voice": "en-gb"},
    "phoneme_id_map": {"_": [0]},
    "num_speakers": 1,
    "language": {"code": "en_GB"},
    "dataset": "test",
}


def test_voices_by_path_by_name_and_listed(tmp_path: Path) -> None:
    model = write_voice(tmp_path, "en_GB-test-low", CONFIG)
    env = {"NARRATE_PIPER_VOICES": str(tmp_path)}
    by_name = resolve_voice("en_GB-test-low", env)
    assert by_name == VoiceFiles("en_GB-test-low", model, model.with_suffix(".onnx.json"))
    assert resolve_voice(str(model), {}).model == model
    assert read_config(by_name).sample_rate_hz == 16000
    listed = {v.id: v for v in list_voices(env)}
    assert listed["en_GB-test-low"].languages == ("en-gb",)
    assert listed["en_GB-test-low"].sample_rate_hz == 16000
    with pytest.raises(VoiceNotFoundError, match="no voice 'nobody'"):
        resolve_voice("nobody", env)
    with pytest.raises(VoiceNotFoundError, match="does not exist"):
        resolve_voice(str(tmp_path / "missing.onnx"), {})
    (tmp_path / "lonely.onnx").write_bytes(b"x")
    with pytest.raises(VoiceNotFoundError, match="no config"):
        resolve_voice(str(tmp_path / "lonely.onnx"), {})


def test_each_listed_voice_says_its_licence(tmp_path: Path) -> None:
    carded = write_voice(tmp_path / "a", "en_GB-carded-low", CONFIG)
    (carded.parent / "MODEL_CARD").write_text(
        "# Model card for carded (low)\n\n* Language: en_GB\n\n## Dataset\n\n"
        "* URL: https://example.org/corpus\n* License: CC-BY-4.0\n"
    )
    write_voice(tmp_path / "b", "en_GB-bare-low", CONFIG)
    env = {"NARRATE_PIPER_VOICES": f"{tmp_path / 'a'}:{tmp_path / 'b'}"}
    listed = {v.id: v.licence for v in list_voices(env)}
    assert listed["en_GB-carded-low"] == "CC-BY-4.0"
    assert (listed["en_GB-bare-low"] or "").startswith("unknown: no MODEL_CARD")
    assert listed.get("en_US-joe-medium", BUNDLED_LICENCE) == BUNDLED_LICENCE
    assert "commercial" in BUNDLED_LICENCE
    (tmp_path / "b" / "MODEL_CARD").write_text("# Model card\n\n* Speakers: 1\n")
    assert "states none" in model_card_licence(tmp_path / "b" / "en_GB-bare-low.onnx")


def test_a_broken_config_is_a_clear_input_error(tmp_path: Path) -> None:
    write_voice(tmp_path, "bad", {"audio": {}})
    files = resolve_voice(str(tmp_path / "bad.onnx"), {})
    with pytest.raises(BrokenVoiceError, match="not a usable Piper voice config") as raised:
        read_config(files)
    assert raised.value.exit_code == 2
    write_voice(tmp_path, "zh", {**CONFIG, "phoneme_type": "pinyin"})
    with pytest.raises(BrokenVoiceError, match="espeak-ng only"):
        read_config(resolve_voice(str(tmp_path / "zh.onnx"), {}))


def test_rate_is_inverted_through_the_measured_length_scale_curve() -> None:
    assert length_scale_for(1.0) == 1.0
    assert length_scale_for(1 / 1.118) == pytest.approx(1.25)
    assert 0.7 < length_scale_for(1.25) < 0.75  # a plain 0.8 would only reach 0.88
    assert length_scale_for(2.0) == pytest.approx(0.267, abs=0.01)
    assert length_scale_for(0.5) == pytest.approx(2.415, abs=0.01)
    rates = [0.5, 0.7, 0.9, 1.0, 1.1, 1.5, 2.0]
    scales = [length_scale_for(r) for r in rates]
    assert scales == sorted(scales, reverse=True)
