"""The espeak-ng engine: markup offsets, synthesis, voices, word marks, errors."""

from __future__ import annotations

import array
import math
import os
import threading

import numpy as np
import pytest
from lxml import etree

import renderer.espeak as espeak_module
from narrate.errors import SynthesisFailedError, UsageError, VoiceNotFoundError
from renderer.engine import Engine, SynthesisRequest, SynthesisResult
from renderer.espeak import (
    EspeakEngine,
    espeak_parameters,
    markup_to_text_offsets,
    sound_end,
    ssml_text,
)


def speak(body: str) -> str:
    # end the body with a newline before </speak>: otherwise a final "." right after a
    # closing tag is read as "dot" (see the reference notes); the SSML builder does this
    return f"<speak>{body}\n</speak>"


@pytest.fixture(scope="module")
def engine() -> EspeakEngine:
    return EspeakEngine()


def synth(engine: EspeakEngine, ssml: str, voice: str = "en-us", **kw: float) -> SynthesisResult:
    return engine.synthesize(SynthesisRequest(ssml=ssml, voice=voice, **kw))


def rms(pcm: bytes) -> float:
    samples = array.array("h")
    samples.frombytes(pcm)
    return math.sqrt(sum(x * x for x in samples) / max(1, len(samples)))


def mark_texts(result: SynthesisResult, ssml: str) -> list[str]:
    text = ssml_text(ssml)
    return [text[m.char_start : m.char_end] for m in result.marks]


def assert_marks_sane(result: SynthesisResult, ssml: str) -> None:
    text = ssml_text(ssml)
    starts = [m.start_ms for m in result.marks]
    assert starts == sorted(starts)
    for m in result.marks:
        assert 0 <= m.char_start < m.char_end <= len(text), m
        assert m.end_ms is not None
        assert 0 <= m.start_ms <= m.end_ms <= result.duration_ms, m


# --- markup offsets (pure) ----------------------------------------------------------

DOCUMENTS = [
    "<speak>Hello world.</speak>",
    '<speak version="1.0" xml:lang="en-US"><p><s>One <emphasis>two</emphasis> three.</s></p>'
    "\n</speak>",
    "<speak>Tom &amp; Jerry &lt;speak&gt; &quot;hi&quot; &apos;x&apos;\n</speak>",
    "<speak>caf&#233; na&#xEF;ve &#x1F600; end</speak>",
    '<?xml version="1.0" encoding="UTF-8"?>\n<speak>Decl <!-- note --> after.\n</speak>',
    "<speak>A <![CDATA[raw & <stuff>]]> b</speak>",
    '<speak>x <break time="500ms"/> y <say-as interpret-as="characters">abc</say-as>.\n</speak>',
    "<speak>line\r\nbreak\rcr</speak>",
    '<speak><sub alias="World Wide Web">WWW</sub> and a > sign</speak>',
    "<speak><mark name=\"a&gt;b\"/>quoted > attr 'q'</speak>",
    "<!DOCTYPE speak>\n<speak>doctype</speak>",
    "<speak>你好，世界。</speak>",
]


@pytest.mark.parametrize("ssml", DOCUMENTS)
def test_text_content_matches_lxml(ssml: str) -> None:
    root = etree.fromstring(ssml.encode("utf-8"))
    assert ssml_text(ssml) == "".join(root.itertext())


@pytest.mark.parametrize("ssml", DOCUMENTS)
def test_offsets_map_markup_chars_onto_text(ssml: str) -> None:
    text = ssml_text(ssml)
    offsets = markup_to_text_offsets(ssml)
    assert len(offsets) == len(ssml)
    assert offsets == sorted(offsets)
    assert all(0 <= o <= len(text) for o in offsets)
    # the last markup character mapping to a text character is that character itself
    # (or the ";" ending its entity reference, or the end of a normalised line break)
    last = {o: i for i, o in enumerate(offsets)}
    for j, ch in enumerate(text):
        i = last[j]
        if ssml[i] == ";":
            ref = ssml[ssml.rindex("&", 0, i) : i + 1]
            assert etree.fromstring(f"<r>{ref}</r>").text == ch
        elif ch == "\n":
            assert ssml[i] in "\r\n"
        else:
            assert ssml[i] == ch


def test_offsets_of_entities_and_tags() -> None:
    ssml = "<speak>a &amp; <b>c</b></speak>"
    text = ssml_text(ssml)
    assert text == "a & c"
    offsets = markup_to_text_offsets(ssml)
    amp = ssml.index("&amp;")
    assert offsets[amp : amp + 5] == [2] * 5  # all of "&amp;" -> "&"
    assert offsets[ssml.index("c</b>")] == 4
    assert offsets[0] == 0  # inside <speak>: the next text character
    assert offsets[ssml.index("<b>") + 1] == 4
    assert offsets[-1] == len(text)


def test_offsets_of_numeric_references() -> None:
    ssml = "<speak>caf&#233;s x</speak>"
    offsets = markup_to_text_offsets(ssml)
    assert ssml_text(ssml) == "cafés x"
    ref = ssml.index("&#233;")
    assert offsets[ref : ref + 6] == [3] * 6
    assert offsets[ssml.index("s x")] == 4


def test_text_outside_the_root_does_not_count() -> None:
    ssml = "\n<speak>in</speak>\n"
    assert ssml_text(ssml) == "in"
    assert markup_to_text_offsets(ssml) == [0] + [0] * 7 + [0, 1] + [2] * 9


def test_bad_ampersand_is_kept_literally() -> None:
    assert ssml_text("<speak>a &bogus b &#xZZ;</speak>") == "a &bogus b &#xZZ;"


# --- silence helper (pure) ----------------------------------------------------------


def test_sound_end_trims_trailing_silence() -> None:
    samples = array.array("h", [1000] * 2205 + [0] * 22050 + [1000] * 100)
    assert sound_end(samples, 0, 2205 + 22050, 20.0) == 2205
    # a faint floor below the threshold counts as silence too
    faint = array.array("h", [1000] * 500 + [3, -3] * 2000)
    assert sound_end(faint, 0, len(faint), 20.0) == 500
    # all silent: keep the bound; zero threshold: no trimming
    assert sound_end(array.array("h", [0] * 1000), 0, 1000, 20.0) == 1000
    assert sound_end(samples, 0, 5000, 0.0) == 5000


# --- parameters -------------------------------------------------------------------


def test_parameter_mapping() -> None:
    assert espeak_parameters(1.0, 1.0, 1.0) == (175, 50, 100)
    assert espeak_parameters(2.0, 2.0, 2.0) == (350, 100, 200)
    assert espeak_parameters(0.5, 0.5, 0.0) == (88, 25, 0)


@pytest.mark.parametrize(
    ("rate", "pitch", "volume"),
    [
        (2.5, 1, 1),
        (0.4, 1, 1),
        (1, 0.3, 1),
        (1, 2.1, 1),
        (1, 1, -0.1),
        (1, 1, 2.5),
        (math.nan, 1, 1),
    ],
)
def test_out_of_range_multipliers_are_usage_errors(
    engine: EspeakEngine, rate: float, pitch: float, volume: float
) -> None:
    with pytest.raises(UsageError) as info:
        synth(engine, speak("Hi."), rate=rate, pitch=pitch, volume=volume)
    assert info.value.exit_code == 2


# --- synthesis ----------------------------------------------------------------------


def test_engine_satisfies_protocol(engine: EspeakEngine) -> None:
    assert isinstance(engine, Engine)
    assert engine.name == "espeak"
    assert engine.default_voice == "en-us"
    assert engine.max_segment_chars == 1500


def test_sentence_gives_plausible_audio(engine: EspeakEngine) -> None:
    ssml = speak("The quick brown fox jumps over the lazy dog.")
    result = synth(engine, ssml)
    assert result.sample_rate_hz == 22050
    assert len(result.pcm) % 2 == 0 and result.sample_count > 0
    assert 2000 <= result.duration_ms <= 3200
    assert rms(result.pcm) > 500
    assert mark_texts(result, ssml) == [
        "The",
        "quick",
        "brown",
        "fox",
        "jumps",
        "over",
        "the",
        "lazy",
        "dog",
    ]
    assert result.marks[0].start_ms == 0
    assert_marks_sane(result, ssml)


def test_marks_restart_at_zero_on_every_call(engine: EspeakEngine) -> None:
    first = synth(engine, speak("One two three."))
    second = synth(engine, speak("One two three."))
    assert second.marks[0].start_ms == 0
    assert abs(first.duration_ms - second.duration_ms) < 20
    assert [m.start_ms for m in first.marks] == pytest.approx(
        [m.start_ms for m in second.marks], abs=5
    )


def test_break_adds_its_time(engine: EspeakEngine) -> None:
    plain = synth(engine, speak("The quick brown fox jumps over the lazy dog."))
    ssml = speak('The quick brown fox <break time="1000ms"/> jumps over the lazy dog.')
    broken = synth(engine, ssml)
    assert 900 <= broken.duration_ms - plain.duration_ms <= 1100
    # the word before the break ends before the pause, not when the next word starts
    texts = mark_texts(broken, ssml)
    before = broken.marks[texts.index("fox")]
    after = broken.marks[texts.index("jumps")]
    assert before.end_ms is not None
    assert after.start_ms - before.end_ms >= 900


def test_rate_two_roughly_halves_duration(engine: EspeakEngine) -> None:
    ssml = speak("The quick brown fox jumps over the lazy dog, and then it runs away.")
    normal = synth(engine, ssml)
    fast = synth(engine, ssml, rate=2.0)
    slow = synth(engine, ssml, rate=0.5)
    assert 0.4 <= fast.duration_ms / normal.duration_ms <= 0.65
    assert slow.duration_ms > 1.5 * normal.duration_ms


def test_volume_scales_amplitude(engine: EspeakEngine) -> None:
    ssml = speak("Louder and softer.")
    normal = rms(synth(engine, ssml).pcm)
    half = rms(synth(engine, ssml, volume=0.5).pcm)
    assert 0.35 <= half / normal <= 0.65
    silent = synth(engine, ssml, volume=0.0)
    assert rms(silent.pcm) < 1 and silent.marks


def median_f0(pcm: bytes) -> float:
    """Median pitch (Hz) of the voiced 46 ms frames, by autocorrelation."""
    x = np.frombuffer(pcm, dtype=np.int16).astype(np.float64)
    found = []
    lo, hi = 22050 // 400, 22050 // 60
    for i in range(0, len(x) - 1024, 512):
        w = x[i : i + 1024]
        if np.sqrt(np.mean(w * w)) < 500:
            continue
        w = w - w.mean()
        ac = np.correlate(w, w, "full")[1023:]
        k = lo + int(np.argmax(ac[lo:hi]))
        if ac[k] > 0.3 * ac[0]:
            found.append(22050 / k)
    return float(np.median(found))


def test_pitch_changes_the_voice(engine: EspeakEngine) -> None:
    ssml = speak("Up and down we go, over the hills and far away.")
    low = median_f0(synth(engine, ssml, pitch=0.5).pcm)
    normal = median_f0(synth(engine, ssml).pcm)
    high = median_f0(synth(engine, ssml, pitch=2.0).pcm)
    assert low < normal < high
    assert high > 1.4 * low


def test_entities_are_spoken_and_marks_index_decoded_text(engine: EspeakEngine) -> None:
    ssml = speak("Tom &amp; Jerry wrote &lt;speak&gt; on the board.")
    text = ssml_text(ssml)
    assert text == "Tom & Jerry wrote <speak> on the board.\n"
    result = synth(engine, ssml)
    assert_marks_sane(result, ssml)
    marks = {text[m.char_start : m.char_end]: m for m in result.marks}
    assert list(marks) == ["Tom", "&", "Jerry", "wrote", "speak", "on", "board"]
    assert (marks["&"].char_start, marks["&"].char_end) == (4, 5)
    assert (marks["speak"].char_start, marks["speak"].char_end) == (19, 24)
    # "&" is spoken ("and"): it takes time
    assert marks["Jerry"].start_ms - marks["&"].start_ms > 100


def test_markup_is_not_counted_in_mark_offsets(engine: EspeakEngine) -> None:
    ssml = speak(
        '<p><s>Hello <emphasis level="strong">brave</emphasis> new caf&#233; world.</s></p>'
    )
    result = synth(engine, ssml)
    assert mark_texts(result, ssml) == ["Hello", "brave", "new", "café", "world"]
    assert_marks_sane(result, ssml)


def test_number_gives_several_marks_inside_the_token(engine: EspeakEngine) -> None:
    ssml = speak("It costs 3.50 dollars.")
    result = synth(engine, ssml)
    text = ssml_text(ssml)
    number = (text.index("3.50"), text.index("3.50") + 4)
    inside = [m for m in result.marks if number[0] <= m.char_start < number[1]]
    assert len(inside) >= 2
    assert all(m.char_end <= number[1] for m in inside)
    assert_marks_sane(result, ssml)


def test_chinese_gives_marks(engine: EspeakEngine) -> None:
    ssml = speak("你好，世界。我们今天去公园散步吧。")
    result = synth(engine, ssml, voice="cmn")
    assert result.duration_ms > 2000
    texts = mark_texts(result, ssml)
    assert len(texts) >= 10
    assert all(len(t) == 1 and "\u4e00" <= t <= "\u9fff" for t in texts)
    assert_marks_sane(result, ssml)


def test_other_voices_and_variants(engine: EspeakEngine) -> None:
    ssml = speak("Good morning.")
    base = synth(engine, ssml, voice="en-us")
    for voice in ("en", "en-gb-x-rp", "fr", "en-us+f3", "en-US+F3", "en-us+klatt", "en-us+Alex"):
        result = synth(engine, ssml, voice=voice)
        assert result.duration_ms > 300 and result.marks, voice
        assert result.pcm != base.pcm


@pytest.mark.parametrize(
    "voice", ["xx-nope", "de-de", "zh", "", "en-us+nonexistent", "f3", "en-us+f3+m3"]
)
def test_unknown_voice(engine: EspeakEngine, voice: str) -> None:
    with pytest.raises(VoiceNotFoundError) as info:
        synth(engine, speak("Hello."), voice=voice)
    assert info.value.exit_code == 2
    assert repr(voice) in str(info.value)
    assert "narrate voices --engine espeak" in str(info.value)
    # the engine still works afterwards
    assert synth(engine, speak("Hello.")).marks


def test_a_language_tag_names_the_voice_that_speaks_it_first(engine: EspeakEngine) -> None:
    """``en-gb`` (as a bulletin definition or a front matter gives it) is espeak's ``en``
    voice, English as spoken in Great Britain; the job stores the voice's own id."""
    ssml = speak("Good morning.")
    for voice in ("en-gb", "en-GB+f3"):  # (espeak is not sample-exact run to run)
        assert synth(engine, ssml, voice=voice).duration_ms > 300
    for asked, stored in (("en-gb", "en"), ("EN-GB+F3", "en+f3"), ("en-us", "en-us")):
        assert engine.complete(SynthesisRequest(ssml="", voice=asked)).voice == stored


def test_voices_lists_file_ids(engine: EspeakEngine) -> None:
    voices = engine.voices()
    ids = [v.id for v in voices]
    assert len(voices) > 100
    assert len(ids) == len(set(ids))
    for wanted in ("en-us", "en", "en-gb-x-rp", "cmn", "fr", "de", "yue"):
        assert wanted in ids
    en_us = next(v for v in voices if v.id == "en-us")
    assert "America" in en_us.name and "en-us" in en_us.languages
    assert all(v.gender in (None, "male", "female") for v in voices)
    assert not any("+" in i or "/" in i for i in ids)


def test_every_listed_voice_id_is_accepted(engine: EspeakEngine) -> None:
    for voice in engine.voices()[:: max(1, len(engine.voices()) // 15)]:
        assert synth(engine, speak("a"), voice=voice.id).sample_count > 0


def test_concurrent_calls_are_serialised(engine: EspeakEngine) -> None:
    ssml_a = speak("The first thread reads this sentence aloud.")
    ssml_b = speak("你好，世界。")
    expected_a = synth(engine, ssml_a)
    expected_b = synth(engine, ssml_b, voice="cmn")
    results: list[tuple[str, SynthesisResult]] = []
    errors: list[BaseException] = []

    def work(kind: str) -> None:
        try:
            for _ in range(4):
                if kind == "a":
                    results.append((kind, synth(engine, ssml_a)))
                else:
                    results.append((kind, synth(engine, ssml_b, voice="cmn", rate=1.5)))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in "abab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(results) == 16
    for kind, result in results:
        if kind == "a":
            assert abs(result.duration_ms - expected_a.duration_ms) < 30
            assert len(result.marks) == len(expected_a.marks)
        else:
            assert result.duration_ms < 0.85 * expected_b.duration_ms


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_works_in_a_process_forked_after_initialisation(engine: EspeakEngine) -> None:
    expected = synth(engine, speak("Forked worker.")).duration_ms
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report the duration it gets, then leave without cleanup
        try:
            os.close(read)
            result = synth(engine, speak("Forked worker."))
            os.write(write, str(result.duration_ms).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        got = pipe.read()
    os.waitpid(pid, 0)
    assert got and abs(int(got) - expected) < 30


def test_empty_document(engine: EspeakEngine) -> None:
    result = synth(engine, speak(""))
    assert result.marks == ()
    assert result.duration_ms < 200


def test_espeak_error_is_synthesis_failed(
    engine: EspeakEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    synth(engine, speak("warm up"))  # make sure the library is loaded
    library = espeak_module._LIBRARY
    assert library is not None
    monkeypatch.setattr(library.lib, "espeak_Synth", lambda *args: -1)
    with pytest.raises(SynthesisFailedError) as info:
        synth(engine, speak("Hello."))
    assert info.value.exit_code == 1
    monkeypatch.undo()
    assert synth(engine, speak("Hello.")).marks


def test_callback_failure_is_synthesis_failed(
    engine: EspeakEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(espeak_module, "_RawEvent", broken)
    with pytest.raises(SynthesisFailedError, match="boom"):
        synth(engine, speak("Hello there."))
    monkeypatch.undo()
    assert synth(engine, speak("Hello there.")).marks
