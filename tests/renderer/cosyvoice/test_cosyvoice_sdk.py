"""The official ``dashscope`` SDK (pinned in the test extra), unchanged, against the simulator.

Pointing it at the simulator is what the reference verified (§9.1): any key, the module's
``base_websocket_api_url`` and ``base_http_api_url``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from renderer.cosyvoice.simulator import SimulatorThread

dashscope = pytest.importorskip("dashscope")
from dashscope.audio.tts_v2 import (  # noqa: E402
    AudioFormat,
    ResultCallback,
    SpeechSynthesizer,
    VoiceEnrollmentService,
)
from dashscope.common.error import RequestFailure  # noqa: E402


@pytest.fixture
def sdk_simulator(start_simulator: Callable[..., SimulatorThread]) -> Iterator[SimulatorThread]:
    sim = start_simulator(rate_limit=0, voice_ready_s=0.0)
    saved = (dashscope.api_key, dashscope.base_websocket_api_url, dashscope.base_http_api_url)
    dashscope.api_key = "sdk-test-key"
    dashscope.base_websocket_api_url = sim.url
    dashscope.base_http_api_url = f"{sim.http_base}/api/v1"
    yield sim
    dashscope.api_key, dashscope.base_websocket_api_url, dashscope.base_http_api_url = saved


class Collector(ResultCallback):  # type: ignore[misc]
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.audio = bytearray()
        self.completed = False

    def on_event(self, message: str) -> None:
        self.events.append(json.loads(message))

    def on_data(self, data: bytes) -> None:
        self.audio += data

    def on_complete(self) -> None:
        self.completed = True


def test_blocking_call_returns_pcm(sdk_simulator: SimulatorThread) -> None:
    synthesizer = SpeechSynthesizer(
        model="cosyvoice-v3-flash", voice="longanyang", format=AudioFormat.PCM_24000HZ_MONO_16BIT
    )
    audio = synthesizer.call("Hello world. 你好，世界。")
    # Hello(5 letters) world(5) at 45+55n ms, two Han at 190 ms, pauses . ， 。
    assert len(audio) // 2 == sum(
        ms * 24000 // 1000 for ms in (320, 320, 150, 190, 190, 90, 190, 190, 150)
    )
    assert len(synthesizer.get_last_request_id()) == 32


def test_default_format_is_mp3(sdk_simulator: SimulatorThread) -> None:
    audio = SpeechSynthesizer(model="cosyvoice-v3-flash", voice="longanyang").call("Default.")
    assert audio[:3] == b"ID3" or audio[0] == 0xFF


def test_streaming_with_word_timestamps(sdk_simulator: SimulatorThread) -> None:
    collector = Collector()
    synthesizer = SpeechSynthesizer(
        model="cosyvoice-v3-flash",
        voice="longanyang",
        format=AudioFormat.PCM_22050HZ_MONO_16BIT,
        callback=collector,
        additional_params={"word_timestamp_enabled": True},
    )
    synthesizer.streaming_call("First sentence. Second")
    synthesizer.streaming_call(" sentence here.")
    synthesizer.streaming_complete()
    assert collector.completed
    ends = [e for e in collector.events if e["payload"]["output"]["type"] == "sentence-end"]
    words = [w["text"] for e in ends for w in e["payload"]["output"]["sentence"]["words"]]
    assert words == ["First", "sentence", ".", "Second", "sentence", "here", "."]
    last = ends[-1]["payload"]["output"]["sentence"]["words"][-1]
    assert last["end_time"] == len(collector.audio) // 2 * 1000 // 22050
    assert synthesizer.get_response()["header"]["event"] == "task-finished"
    assert ends[-1]["payload"]["usage"]["characters"] == len(
        "First sentence. Second sentence here."
    )


def test_task_failed_surfaces_as_request_failure(sdk_simulator: SimulatorThread) -> None:
    synthesizer = SpeechSynthesizer(model="cosyvoice-v2", voice="longanyang")
    with pytest.raises(RequestFailure) as caught:
        synthesizer.call("wrong family")
    assert "418" in str(caught.value)


def test_enrollment_service_and_cloned_voice(sdk_simulator: SimulatorThread) -> None:
    service = VoiceEnrollmentService()
    voice_id = service.create_voice(
        target_model="cosyvoice-v3-flash", prefix="sdk", url="https://example.com/me.wav"
    )
    assert service.query_voice(voice_id)["status"] == "OK"
    assert [v["voice_id"] for v in service.list_voices()] == [voice_id]
    audio = SpeechSynthesizer(
        model="cosyvoice-v3-flash", voice=voice_id, format=AudioFormat.PCM_16000HZ_MONO_16BIT
    ).call("Cloned.")
    assert len(audio) > 0
    service.delete_voice(voice_id)
    assert service.list_voices() == []
