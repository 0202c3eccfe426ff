"""The cosyvoice engine against the simulator: audio, word marks, reuse, limits, faults."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from jobs.throttle import FileThrottle
from narrate.errors import FatalError, RetryableError, UsageError
from renderer.cosyvoice.config import ServiceConfig
from renderer.cosyvoice.engine import CosyVoiceEngine
from renderer.cosyvoice.enrollment import EnrollmentClient
from renderer.cosyvoice.errors import (
    CosyVoiceAccountError,
    CosyVoiceAuthError,
    CosyVoiceSentenceTooLongError,
    CosyVoiceThrottledError,
    CosyVoiceTruncatedError,
)
from renderer.cosyvoice.simulator import SimulatorThread
from renderer.cosyvoice.simulator.voice import speak, tokens
from renderer.cosyvoice.text import SENTENCE_CAP_MS, plan_task, sentence_spans
from renderer.engine import SynthesisRequest
from renderer.timing import align_words, tokenize
from ssml.build import build_ssml

Config = Callable[..., ServiceConfig]
EN = ["The derivative measures change. It is a limit!", "A second paragraph follows here."]
ZH = ["子曰：“学而时习之，不亦说乎？有朋自远方来，不亦乐乎？”", "人不知而不愠，不亦君子乎？"]


def request(paragraphs: list[str], **kw: Any) -> SynthesisRequest:
    ssml = build_ssml(paragraphs, pause_ms=700, dialect="cosyvoice")
    return SynthesisRequest(ssml=ssml, voice=kw.pop("voice", "longanyang"), **kw)


def simulator_samples(req: SynthesisRequest, sample_rate: int = 24000) -> int:
    """What the simulator speaks for the request: its sentences plus the local breaks."""
    plan = plan_task(req.ssml)
    text = plan.text.rstrip()
    spoken = sum(
        len(speak(text[a:b], sample_rate=sample_rate, rate=req.rate).pcm) // 2
        for a, b in sentence_spans(text)
    )
    return spoken + sum(ms * sample_rate // 1000 for _pos, ms in plan.breaks)


@pytest.mark.parametrize("paragraphs", [EN, ZH], ids=["english", "chinese"])
def test_audio_and_words_follow_the_simulator(
    cosyvoice_simulator: SimulatorThread, service_config: Config, paragraphs: list[str]
) -> None:
    engine = CosyVoiceEngine(config=service_config(cosyvoice_simulator))
    req = request(paragraphs, rate=1.25)
    result = engine.synthesize(req)
    assert result.sample_rate_hz == 24000
    assert result.sample_count == simulator_samples(req)
    text = plan_task(req.ssml).text
    words = align_words(text, result.marks, result.duration_ms)
    assert len(words) == len(tokenize(text))
    # every word (every character in Chinese) got its own mark: nothing was interpolated
    anchored = {m.char_start for m in result.marks}
    assert all(any(w.char_start <= a < w.char_end for a in anchored) for w in words)
    starts = [m.start_ms for m in result.marks]
    assert starts == sorted(starts) and result.marks[-1].end_ms <= result.duration_ms
    assert result.billed_chars == plan_task(req.ssml).billed


def test_break_between_paragraphs_becomes_silence(
    cosyvoice_simulator: SimulatorThread, service_config: Config
) -> None:
    engine = CosyVoiceEngine(config=service_config(cosyvoice_simulator))
    result = engine.synthesize(request(EN))
    text = plan_task(request(EN).ssml).text
    second = text.index("A second")
    before = max(m.end_ms or 0 for m in result.marks if m.char_end <= second)
    after = min(m.start_ms for m in result.marks if m.char_start >= second)
    assert after - before >= 700
    pcm = result.pcm[before * 48 : (before + 700) * 48]
    assert pcm == bytes(len(pcm))


def test_connection_is_reused_between_tasks(
    cosyvoice_simulator: SimulatorThread,
    service_config: Config,
    http_stats: Callable[[SimulatorThread], dict[str, Any]],
) -> None:
    engine = CosyVoiceEngine(config=service_config(cosyvoice_simulator))
    for _ in range(3):
        engine.synthesize(request(["One short sentence."]))
    stats = http_stats(cosyvoice_simulator)
    assert stats["tasks_started"] == 3 and stats["tasks_finished"] == 3
    assert stats["connections"] == 1 and engine.client.connections_opened == 1


@pytest.mark.parametrize(
    ("fields", "env"),
    [
        ({"timestamps": "task-finished"}, {}),
        ({"timestamps": "both", "time_base": "sentence", "index_base": "sentence"}, {}),
        ({"finished_usage": False}, {}),
    ],
    ids=["words-in-task-finished", "sentence-relative-times", "no-usage-in-finished"],
)
def test_timestamp_and_usage_variants_give_the_same_marks(
    start_simulator: Callable[..., SimulatorThread],
    service_config: Config,
    fields: dict[str, Any],
    env: dict[str, str],
) -> None:
    reference = CosyVoiceEngine(config=service_config(start_simulator())).synthesize(request(ZH))
    variant = CosyVoiceEngine(config=service_config(start_simulator(**fields), **env))
    result = variant.synthesize(request(ZH))
    assert result.marks == reference.marks
    assert result.billed_chars == reference.billed_chars


@pytest.mark.parametrize("fmt", ["wav", "mp3", "opus"])
def test_other_formats_are_decoded(
    cosyvoice_simulator: SimulatorThread, service_config: Config, fmt: str
) -> None:
    engine = CosyVoiceEngine(config=service_config(cosyvoice_simulator))
    req = request(EN, options=(("format", fmt),))
    result = engine.synthesize(req)
    expected = simulator_samples(req) * 1000 // 24000
    tolerance = 1 if fmt == "wav" else 0.05 * expected + 150
    assert abs(result.duration_ms - expected) <= tolerance
    assert len(result.marks) == len(tokens(plan_task(req.ssml).text))


def test_ssml_mode_sends_the_document(
    cosyvoice_simulator: SimulatorThread, service_config: Config
) -> None:
    engine = CosyVoiceEngine(config=service_config(cosyvoice_simulator))
    ssml = (
        '<speak>Dial <say-as interpret-as="telephone">110</say-as> now.'
        '<break time="1s"/> Done.</speak>'
    )
    result = engine.synthesize(SynthesisRequest(ssml=ssml, voice="longanyang"))
    assert result.billed_chars == len("Dial 110 now. Done.")
    assert [m.char_start for m in result.marks][:3] == [0, 5, 9]
    assert result.duration_ms >= 1000 + 4 * 45


def test_long_sentences_stay_under_the_cap(
    cosyvoice_simulator: SimulatorThread, service_config: Config
) -> None:
    engine = CosyVoiceEngine(config=service_config(cosyvoice_simulator))
    text = "It was " + "and the long road went on past the hills, " * 30 + "until night."
    result = engine.synthesize(request([text]))
    assert result.duration_ms > SENTENCE_CAP_MS  # more than one sentence can hold
    # in SSML mode (one message) narrate cannot cut it: a fatal error, not endless retries
    with pytest.raises(CosyVoiceSentenceTooLongError, match="per-sentence cap") as caught:
        engine.synthesize(request([text], options=(("ssml", "on"),)))
    assert isinstance(caught.value, FatalError)
    assert "ssml=off" in str(caught.value)


def test_chinese_without_punctuation_is_cut_below_the_cap(
    cosyvoice_simulator: SimulatorThread, service_config: Config
) -> None:
    engine = CosyVoiceEngine(config=service_config(cosyvoice_simulator))
    text = "学而时习之不亦说乎有朋自远方来不亦乐乎" * 20 + "。"  # 400 Han, no cut point
    result = engine.synthesize(request([text]))
    assert result.duration_ms > SENTENCE_CAP_MS


def test_compressed_formats_are_not_judged_per_sentence(
    cosyvoice_simulator: SimulatorThread, service_config: Config
) -> None:
    engine = CosyVoiceEngine(config=service_config(cosyvoice_simulator))
    text = "No. " + "Wait, then. " * 6 + "We stopped for a long time, and then we walked on home."
    result = engine.synthesize(request([text], options=(("format", "opus"),)))
    assert result.duration_ms > 3000


def test_rate_limit_is_respected_across_threads(
    cosyvoice_simulator: SimulatorThread,
    service_config: Config,
    http_stats: Callable[[SimulatorThread], dict[str, Any]],
    tmp_path: Path,
) -> None:
    gate = FileThrottle(tmp_path / "throttle")
    config = service_config(cosyvoice_simulator)
    errors: list[BaseException] = []

    def work() -> None:
        engine = CosyVoiceEngine(gate, config)  # one engine per worker, one shared gate
        try:
            for _ in range(2):
                engine.synthesize(request(["Tick."]))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    stats = http_stats(cosyvoice_simulator)
    assert not errors
    assert stats["tasks_started"] == 8
    assert stats["rejected_by_rate_limit"] == 0
    assert stats["max_tasks_started_in_one_second"] <= 3


def test_throttling_answer_pauses_the_shared_gate(
    start_simulator: Callable[..., SimulatorThread], service_config: Config, tmp_path: Path
) -> None:
    sim = start_simulator(faults=("throttle",), fail_rate=1.0)
    gate = FileThrottle(tmp_path / "throttle")
    engine = CosyVoiceEngine(gate, service_config(sim))
    with pytest.raises(CosyVoiceThrottledError) as caught:
        engine.synthesize(request(["Hello."]))
    assert "Throttling.RateQuota" in caught.value.message and "task " in caught.value.message
    began = time.monotonic()
    with gate.permit(engine.config.account):
        waited = time.monotonic() - began
    assert waited >= caught.value.pause_s - 0.1


@pytest.mark.parametrize("fault", ["internal", "drop", "truncate"])
def test_transient_faults_are_retryable_and_the_engine_recovers(
    start_simulator: Callable[..., SimulatorThread], service_config: Config, fault: str
) -> None:
    sim = start_simulator(faults=(fault,), fault_marker="FAULTY")
    engine = CosyVoiceEngine(config=service_config(sim))
    with pytest.raises(RetryableError) as caught:
        engine.synthesize(request(["FAULTY sentence one. Sentence two is here."]))
    assert "task" in caught.value.message
    if fault == "truncate":
        assert isinstance(caught.value, CosyVoiceTruncatedError)
    assert engine.synthesize(request(["A healthy sentence."])).duration_ms > 0


def test_slow_first_packet_times_out_as_retryable(
    start_simulator: Callable[..., SimulatorThread], service_config: Config
) -> None:
    sim = start_simulator(faults=("slow",), fail_rate=1.0, slow_first_packet_s=1.0)
    engine = CosyVoiceEngine(config=service_config(sim, NARRATE_COSYVOICE_TIMEOUT_S="0.3"))
    with pytest.raises(RetryableError, match=r"sent nothing for 0\.3 s"):
        engine.synthesize(request(["Hello."]))
    patient = CosyVoiceEngine(config=service_config(sim, NARRATE_COSYVOICE_TIMEOUT_S="5"))
    result = patient.synthesize(request(["Hello."]))
    assert result.duration_ms > 0 and patient.client.tasks_started == 1


def test_arrears_is_fatal_with_code_task_and_advice(
    start_simulator: Callable[..., SimulatorThread], service_config: Config
) -> None:
    sim = start_simulator(faults=("arrears",), fail_rate=1.0)
    engine = CosyVoiceEngine(config=service_config(sim))
    with pytest.raises(CosyVoiceAccountError) as caught:
        engine.synthesize(request(["Hello."]))
    text = str(caught.value)
    assert "Arrearage" in text and "(task " in text and "top it up" in text
    assert isinstance(caught.value, FatalError)


def test_wrong_key_is_refused_at_the_handshake(
    start_simulator: Callable[..., SimulatorThread], service_config: Config
) -> None:
    sim = start_simulator(api_key="right-key")
    engine = CosyVoiceEngine(config=service_config(sim, DASHSCOPE_API_KEY="wrong-key"))
    with pytest.raises(CosyVoiceAuthError) as caught:
        engine.synthesize(request(["Hello."]))
    assert "HTTP 401" in str(caught.value) and "wrong-key" not in str(caught.value)
    assert caught.value.exit_code == 2
    good = CosyVoiceEngine(config=service_config(sim, DASHSCOPE_API_KEY="right-key"))
    assert good.synthesize(request(["Hello."])).duration_ms > 0


def test_handshake_throttling_mode(
    start_simulator: Callable[..., SimulatorThread], service_config: Config
) -> None:
    sim = start_simulator(rate_limit=1, throttle_mode="handshake")
    first = CosyVoiceEngine(config=service_config(sim))
    first.synthesize(request(["Hello."]))
    with pytest.raises(CosyVoiceThrottledError, match="HTTP 429"):
        CosyVoiceEngine(config=service_config(sim)).synthesize(request(["Hello."]))


def test_cloned_voice_lifecycle(
    start_simulator: Callable[..., SimulatorThread], service_config: Config
) -> None:
    sim = start_simulator(voice_ready_s=0.5)
    config = service_config(sim)
    voices = EnrollmentClient(config)
    voice_id = voices.clone(
        target_model="cosyvoice-v3-plus", prefix="narrator", url="https://example.com/me.wav"
    )
    assert voice_id.startswith("cosyvoice-v3-plus-narrator-")
    assert voices.query(voice_id).status == "DEPLOYING"
    engine = CosyVoiceEngine(config=config)
    with pytest.raises(FatalError, match="418") as caught:  # not ready yet: the service says 418
        engine.synthesize(request(["Hi."], voice=voice_id, model="cosyvoice-v3-plus"))
    assert "narrate voices status" in str(caught.value)
    with pytest.raises(UsageError, match="made for cosyvoice-v3-plus"):  # refused locally
        engine.synthesize(request(["Hi."], voice=voice_id, model="cosyvoice-v3-flash"))
    time.sleep(0.6)
    assert voices.query(voice_id).status == "OK"
    result = engine.synthesize(request(["Hi there."], voice=voice_id, model="cosyvoice-v3-plus"))
    assert result.duration_ms > 0
    assert [v.voice_id for v in voices.list()] == [voice_id]
    voices.delete(voice_id)
    assert voices.list() == []
