"""The simulator speaks the protocol (reference §10), checked with a raw WebSocket client."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from renderer.cosyvoice.simulator import SimulatorThread
from renderer.cosyvoice.simulator.server import max_in_window, percentile

Start = Callable[..., SimulatorThread]


def open_ws(
    sim: SimulatorThread, key: str | None = "k", path: str | None = None
) -> ClientConnection:
    headers = {"Authorization": f"bearer {key}"} if key is not None else {}
    url = sim.url if path is None else f"ws://{sim.host}:{sim.port}{path}"
    return connect(url, additional_headers=headers, proxy=None, legacy=True, open_timeout=5)


def run_task(task_id: str, **params: Any) -> str:
    parameters = {"voice": "longanyang", "format": "pcm", "sample_rate": 16000, **params}
    return json.dumps(
        {
            "header": {"action": "run-task", "task_id": task_id, "streaming": "duplex"},
            "payload": {
                "task_group": "audio",
                "task": "tts",
                "function": "SpeechSynthesizer",
                "model": "cosyvoice-v3-flash",
                "parameters": parameters,
                "input": {},
            },
        }
    )


def frame(action: str, task_id: str, data: dict[str, Any]) -> str:
    return json.dumps(
        {"header": {"action": action, "task_id": task_id, "streaming": "duplex"},
         "payload": {"input": data}}
    )  # fmt: skip


def events(ws: ClientConnection) -> Iterator[dict[str, Any] | bytes]:
    while True:
        try:
            raw = ws.recv(timeout=5)
        except ConnectionClosed:
            return
        yield raw if isinstance(raw, bytes) else json.loads(raw)


def until(ws: ClientConnection, event: str) -> list[dict[str, Any] | bytes]:
    seen: list[dict[str, Any] | bytes] = []
    for item in events(ws):
        seen.append(item)
        if isinstance(item, dict) and item["header"]["event"] == event:
            return seen
    raise AssertionError(f"no {event}: {seen[-3:]}")


def failed(ws: ClientConnection) -> tuple[str, str]:
    last = until(ws, "task-failed")[-1]
    assert isinstance(last, dict)
    return last["header"]["error_code"], last["header"]["error_message"]


def test_handshake_requires_a_key(start_simulator: Start) -> None:
    sim = start_simulator(api_key="secret")
    for key in (None, "wrong"):
        with pytest.raises(InvalidStatus) as caught:
            open_ws(sim, key)
        assert caught.value.response.status_code == 401
    open_ws(sim, "secret", path="/any/path/").close()  # any path, trailing slash too


def test_full_task_event_order_audio_and_usage(cosyvoice_simulator: SimulatorThread) -> None:
    ws = open_ws(cosyvoice_simulator)
    task = uuid.uuid4().hex
    ws.send(run_task(task, word_timestamp_enabled=True))
    assert until(ws, "task-started")
    ws.send(frame("continue-task", task, {"text": "你好。Hello wor"}))
    ws.send(frame("continue-task", task, {"text": "ld!"}))
    ws.send(frame("finish-task", task, {}))
    seen = until(ws, "task-finished")
    kinds = [
        x["payload"]["output"].get("type") if x["header"]["event"] == "result-generated"
        else x["header"]["event"]
        for x in seen if isinstance(x, dict)
    ]  # fmt: skip
    assert kinds[0] == "sentence-begin" and kinds[-1] == "task-finished"
    # every sentence-synthesis event is followed by exactly one binary frame
    for i, item in enumerate(seen):
        if (
            isinstance(item, dict)
            and item["payload"].get("output", {}).get("type") == "sentence-synthesis"
        ):
            assert isinstance(seen[i + 1], bytes)
    ends = [
        x
        for x in seen
        if isinstance(x, dict) and x["payload"].get("output", {}).get("type") == "sentence-end"
    ]
    assert [e["payload"]["output"]["original_text"] for e in ends] == ["你好。", "Hello world!"]
    assert [e["payload"]["usage"]["characters"] for e in ends] == [5, 17]
    words = [w["text"] for e in ends for w in e["payload"]["output"]["sentence"]["words"]]
    assert words == ["你", "好", "。", "Hello", "world", "!"]
    second = ends[1]["payload"]["output"]["sentence"]["words"][0]
    first_audio = sum(len(x) for x in seen[: seen.index(ends[0])] if isinstance(x, bytes))
    assert second["begin_time"] == first_audio // 2 * 1000 // 16000  # cumulative times
    assert seen[-1]["payload"]["usage"]["characters"] == 17  # type: ignore[index]
    # the connection can be reused for a new task
    again = uuid.uuid4().hex
    ws.send(run_task(again))
    assert until(ws, "task-started")
    ws.close()


@pytest.mark.parametrize(
    ("frames", "code", "message"),
    [
        ([json.dumps({"header": {"action": "run-task", "task_id": "t", "streaming": "duplex"},
                      "payload": {"model": "cosyvoice-v3-flash"}})],
         "InvalidParameter", "task can not be null"),
        ([run_task("t", voice="longxiaochun_v2")], "InvalidParameter", "error code: 418"),
        ([run_task("t", voice="longanyangg")], "InvalidParameter", "error code: 418"),
        ([run_task("t", voice="")], "InvalidParameter", "Request voice is invalid!"),
        ([run_task("t", rate=3.0)], "InvalidParameter", "rate must be"),
        ([frame("continue-task", "t", {"text": "x"})], "InvalidParameter", "not started"),
        ([run_task("t", enable_ssml=True), frame("continue-task", "t", {"text": "a"}),
          frame("continue-task", "t", {"text": "b"})],
         "InvalidParameter", "Text request limit violated, expected 1."),
        ([run_task("t"), frame("continue-task", "t", {"text": "字" * 10_001})],
         "InvalidParameter", "exceeds the limit of 20000"),
    ],
)  # fmt: skip
def test_protocol_errors_fail_the_task_and_close(
    cosyvoice_simulator: SimulatorThread, frames: list[str], code: str, message: str
) -> None:
    ws = open_ws(cosyvoice_simulator)
    for item in frames:
        ws.send(item)
    got_code, got_message = failed(ws)
    assert got_code == code and message in got_message
    with pytest.raises(ConnectionClosed):
        ws.recv(timeout=2)


def test_malformed_json_closes_with_1007(cosyvoice_simulator: SimulatorThread) -> None:
    ws = open_ws(cosyvoice_simulator)
    ws.send("{not json")
    with pytest.raises(ConnectionClosed) as caught:
        ws.recv(timeout=2)
    assert caught.value.rcvd is not None and caught.value.rcvd.code == 1007


def test_rate_limit_counts_arrivals(start_simulator: Start, http_stats: Any) -> None:
    sim = start_simulator(rate_limit=3)
    outcomes = []
    for _ in range(4):
        ws = open_ws(sim)
        ws.send(run_task(uuid.uuid4().hex))
        last = next(x for x in events(ws) if isinstance(x, dict))
        outcomes.append(last["header"]["event"])
        if last["header"]["event"] == "task-failed":
            assert last["header"]["error_code"] == "Throttling.RateQuota"
        ws.close()
    assert outcomes == ["task-started"] * 3 + ["task-failed"]
    stats = http_stats(sim)
    assert stats["rejected_by_rate_limit"] == 1 and stats["tasks_started"] == 3
    assert stats["max_tasks_started_in_one_second"] == 3


def test_max_in_window() -> None:
    assert max_in_window([0.0, 0.5, 0.99, 1.0, 1.5, 1.6], 1.0) == 4
    assert max_in_window([], 1.0) == 0


def test_stats_report_how_late_the_event_loop_ran(start_simulator: Start, http_stats: Any) -> None:
    sim = start_simulator()

    async def stall() -> None:  # hold the simulator's loop for 300 ms, as a busy machine does
        time.sleep(0.3)

    sim.call(stall)
    time.sleep(0.1)  # the probe wakes and records the lag
    stats = http_stats(sim)
    assert 250 <= stats["loop_lag_ms_max"] < 10_000
    assert 0 <= stats["loop_lag_ms_p99"] <= stats["loop_lag_ms_max"]
    assert percentile([3.0, 1.0, 2.0], 0.5) == 2.0 and percentile([], 0.99) == 0.0


def test_flush_cancel_and_timers(start_simulator: Start) -> None:
    sim = start_simulator(text_gap_timeout_s=0.5, idle_timeout_s=0.5)
    ws = open_ws(sim)
    task = uuid.uuid4().hex
    ws.send(run_task(task))
    until(ws, "task-started")
    ws.send(frame("continue-task", task, {"text": "no terminator yet"}))
    ws.send(frame("continue-task", task, {"flush": True}))
    seen = until(ws, "result-generated")
    assert seen[-1]["payload"]["output"]["original_text"] == "no terminator yet"  # type: ignore[index]
    code, message = failed(ws)  # no more text for 0.5 s
    assert (code, message) == ("CLIENT_ERROR", "request timeout after 0.5 seconds.")
    ws = open_ws(sim)
    task = uuid.uuid4().hex
    ws.send(run_task(task))
    until(ws, "task-started")
    ws.send(frame("finish-task", task, {"directive": "cancel"}))
    assert until(ws, "task-finished")
    with pytest.raises(ConnectionClosed):
        ws.recv(timeout=2)
    ws = open_ws(sim)
    began = time.monotonic()
    with pytest.raises(ConnectionClosed):
        ws.recv(timeout=3)  # idle: closed by the server
    assert time.monotonic() - began < 2
