"""The simulator's server: WebSocket synthesis, voice enrollment and ``/stats`` on one port.

What it does, after the reference's checklist (§10):

1. Handshake: ``Authorization: Bearer KEY`` (or ``bearer``) checked at the upgrade;
   a missing key, or one other than ``--api-key``, gets HTTP 401 and no socket. Any path.
2. Frames: the documented shape and the SDK's (extra payload keys in continue-task,
   ``type``, ``format: "Default"`` = mp3, ``sample_rate: 0`` = 22050). Malformed JSON or
   a frame without action/task id: close code 1007. Missing ``payload.input``:
   ``InvalidParameter`` "task can not be null". Unknown model, a voice that does not fit
   the model, a cloned voice not ``OK``: ``InvalidParameter`` "[tts:]Engine return error
   code: 418". Every ``task-failed`` closes the socket.
3. State per connection: idle -> started -> finishing -> idle; continue/finish before
   started fails; a run-task during a task aborts it silently; reuse after task-finished.
4. Timers: 23 s text gap -> ``CLIENT_ERROR`` "request timeout after 23 seconds."; 60 s
   idle -> close; first-packet latency and real-time factor knobs.
5. Sentences cut on 。！？!?；; … and ". " and newlines; an unterminated tail waits for
   more text, a flush or finish-task. Per sentence: sentence-begin, N x
   (sentence-synthesis + one binary frame), sentence-end with words and cumulative
   ``usage.characters``; then task-finished.
6. Audio: :mod:`.voice` tones, PCM s16le; WAV = a 44-byte header on the first frame;
   MP3 and Ogg Opus encoded per sentence with the bundled ffmpeg. A sentence's audio is
   capped at 33.44 s (§11).
7. Billing: :func:`renderer.cosyvoice.billing.billed_chars` of every text received (SSML
   tags free); 20,000 per continue-task and 200,000 per task enforced.
8. SSML: with ``enable_ssml`` exactly one continue-task; ``<break>`` becomes silence.
9. Throttling: at most ``rate_limit`` run-tasks per second per key, counted at arrival
   (optionally stamped up to ``arrival_jitter_s`` late); over it a task-failed
   ``Throttling.RateQuota`` (or HTTP 429 at the handshake).
   Faults by rate (seeded): throttle, internal, arrears, drop, slow, truncate.
10. Cancel (``directive: cancel``) and flush.
11. Timestamps: per Han character, per Latin token, punctuation alone; cumulative or
    sentence-relative times, in sentence-end, task-finished or both.
12. Enrollment: ``POST .../services/audio/tts/customization`` with create/list/query/
    update/delete; DEPLOYING -> OK after a delay (a URL containing "undeployed" ends
    UNDEPLOYED), prefix rules, the 1000-voice quota.

``GET /stats`` returns the counters as JSON, including how late the simulator's own event
loop ran (``loop_lag_ms_max``, ``loop_lag_ms_p99``): on a busy machine the simulator stamps
an arrival when its loop gets to the frame, so its arrival stamps jitter by that much.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import random
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from aiohttp import WSMsgType, web

from renderer.cosyvoice.billing import PER_MESSAGE_LIMIT, PER_TASK_LIMIT, billed_chars
from renderer.cosyvoice.models import (
    BIT_RATE_RANGE,
    FORMATS,
    INSTRUCTION_MAX_CHARS,
    MODELS,
    PITCH_RANGE,
    RATE_RANGE,
    SAMPLE_RATES,
    SEED_RANGE,
    SYSTEM_VOICES,
    WS_PATH,
    custom_voice_model,
    normalize_region,
    system_voice_family,
)
from renderer.cosyvoice.simulator.config import SimulatorConfig
from renderer.cosyvoice.simulator.voice import speak
from renderer.cosyvoice.text import SENTENCE_END, parse_ssml

ENROLLMENT_SUFFIX = "/services/audio/tts/customization"
RATE_QUOTA = ("Throttling.RateQuota", "Requests rate limit exceeded, please try again later.")
ENGINE_418 = "[tts:]Engine return error code: 418"
#: the event-loop probe: how often it wakes, and how many of its samples are kept
LAG_PROBE_S = 0.01
LAG_SAMPLES = 60_000
_PREFIX_RULE = "prefix must be 1-10 letters, digits or underscores"


# --- counters -------------------------------------------------------------------------


@dataclass
class Stats:
    connections: int = 0
    handshakes_rejected: int = 0
    tasks_started: int = 0
    tasks_finished: int = 0
    tasks_failed: int = 0
    rejected_by_rate_limit: int = 0
    faults_injected: Counter[str] = field(default_factory=Counter)
    billed_characters: int = 0
    billed_characters_finished: int = 0
    start_times: list[float] = field(default_factory=list)
    #: how late the event loop woke for its probe, in ms (the last LAG_SAMPLES probes)
    loop_lags_ms: deque[float] = field(default_factory=lambda: deque(maxlen=LAG_SAMPLES))
    loop_lag_ms_max: float = 0.0

    def record_lag(self, lag_ms: float) -> None:
        self.loop_lags_ms.append(lag_ms)
        self.loop_lag_ms_max = max(self.loop_lag_ms_max, lag_ms)

    def snapshot(self) -> dict[str, Any]:
        return {
            "connections": self.connections,
            "handshakes_rejected": self.handshakes_rejected,
            "tasks_started": self.tasks_started,
            "tasks_finished": self.tasks_finished,
            "tasks_failed": self.tasks_failed,
            "rejected_by_rate_limit": self.rejected_by_rate_limit,
            "faults_injected": sum(self.faults_injected.values()),
            "faults_by_kind": dict(self.faults_injected),
            "billed_characters": self.billed_characters,
            "billed_characters_finished": self.billed_characters_finished,
            "max_tasks_started_in_one_second": max_in_window(self.start_times, 1.0),
            "loop_lag_ms_max": round(self.loop_lag_ms_max, 1),
            "loop_lag_ms_p99": round(percentile(self.loop_lags_ms, 0.99), 1),
        }


def percentile(values: Iterable[float], fraction: float) -> float:
    """The value below which ``fraction`` of ``values`` lie (0.0 when there are none)."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def max_in_window(times: list[float], window_s: float) -> int:
    """The most entries of sorted ``times`` inside any half-open window of ``window_s``."""
    best, low = 0, 0
    for high, t in enumerate(times):
        while t - times[low] >= window_s:
            low += 1
        best = max(best, high - low + 1)
    return best


# --- voices ---------------------------------------------------------------------------


@dataclass
class SimVoice:
    voice_id: str
    target_model: str
    prefix: str
    kind: str  # "clone" | "design"
    source: str  # url or voice prompt
    created: float
    ready_at: float  # monotonic
    fails: bool
    modified: float = 0.0

    def status(self, now: float) -> str:
        if now < self.ready_at:
            return "DEPLOYING"
        return "UNDEPLOYED" if self.fails else "OK"


def _stamp(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


class EnrollmentError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


# --- the service ----------------------------------------------------------------------


class Simulator:
    """The state of one simulated service (shared by all connections)."""

    def __init__(self, config: SimulatorConfig | None = None) -> None:
        self.config = config or SimulatorConfig()
        self.region = normalize_region(self.config.region) or "beijing"
        self.stats = Stats()
        self.voices: dict[str, SimVoice] = {}
        self._rng = random.Random(self.config.seed)
        self._arrival_rng = random.Random(self.config.seed)
        self._arrivals: dict[str, deque[float]] = {}
        self.sessions: set[_Session] = set()

    async def close_all(self) -> None:
        """Close every open connection (before shutting down)."""
        for session in list(self.sessions):
            session.closed = True
            await session.shutdown()
            if not session.ws.closed:
                await session.ws.close(code=1001, message=b"server shutdown")

    # rate limit: run-tasks per key in the trailing window, counted at arrival
    def over_limit(self, key: str, now: float) -> bool:
        if self.config.rate_limit <= 0:
            return False
        log = self._arrivals.setdefault(key, deque())
        while log and log[0] <= now - self.config.rate_window_s:
            log.popleft()
        return len(log) >= self.config.rate_limit

    def arrival_delay_s(self) -> float:
        jitter = self.config.arrival_jitter_s
        return self._arrival_rng.uniform(0, jitter) if jitter > 0 else 0.0

    def record_arrival(self, key: str, now: float) -> None:
        self._arrivals.setdefault(key, deque()).append(now)

    def draw_fault(self) -> str | None:
        config = self.config
        if not config.faults or config.fail_rate <= 0:
            return None
        if self._rng.random() >= config.fail_rate:
            return None
        return config.faults[self._rng.randrange(len(config.faults))]

    def app(self) -> web.Application:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.dispatch)
        app.cleanup_ctx.append(self._probe_loop)
        return app

    async def _probe_loop(self, _app: web.Application) -> AsyncIterator[None]:
        """Measure, while serving, how late the event loop wakes (see ``/stats``)."""

        async def probe() -> None:
            while True:
                asked = time.monotonic()
                await asyncio.sleep(LAG_PROBE_S)
                self.stats.record_lag(max(time.monotonic() - asked - LAG_PROBE_S, 0.0) * 1000)

        task = asyncio.create_task(probe())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    def _key(self, request: web.Request) -> str | None:
        auth = request.headers.get("Authorization", "")
        scheme, _, key = auth.partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            return None
        if self.config.api_key is not None and key != self.config.api_key:
            return None
        return key

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/")
        if request.method == "GET" and path == "/stats":
            return web.json_response(self.stats.snapshot())
        is_upgrade = request.headers.get("Upgrade", "").lower() == "websocket"
        if not is_upgrade and not (request.method == "POST" and path.endswith(ENROLLMENT_SUFFIX)):
            return web.json_response(
                {"code": "NotFound", "message": f"no such endpoint {request.path}"}, status=404
            )
        key = self._key(request)
        if key is None:
            self.stats.handshakes_rejected += 1
            present = bool(request.headers.get("Authorization", "").partition(" ")[2].strip())
            message = "Invalid API-key provided." if present else "No API-key provided."
            return web.json_response(
                {"code": "InvalidApiKey", "message": message, "request_id": uuid.uuid4().hex},
                status=401,
            )
        if not is_upgrade:
            return await self._enrollment(request)
        if self.config.throttle_mode == "handshake" and self.over_limit(key, time.monotonic()):
            self.stats.handshakes_rejected += 1
            self.stats.rejected_by_rate_limit += 1
            code, message = RATE_QUOTA
            return web.json_response({"code": code, "message": message}, status=429)
        ws = web.WebSocketResponse(autoping=True, max_msg_size=0)
        await ws.prepare(request)
        self.stats.connections += 1
        session = _Session(self, ws, key, request)
        self.sessions.add(session)
        try:
            await session.serve()
        finally:
            self.sessions.discard(session)
            await session.shutdown()
        return ws

    # --- enrollment (§8) ------------------------------------------------------------

    async def _enrollment(self, request: web.Request) -> web.Response:
        request_id = uuid.uuid4().hex
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise EnrollmentError(400, "InvalidParameter", "body must be a JSON object")
            if body.get("model") != "voice-enrollment":
                raise EnrollmentError(400, "InvalidParameter", "Model not exist.")
            data = body.get("input")
            if not isinstance(data, dict):
                raise EnrollmentError(400, "InvalidParameter", "input is required")
            output = self._enroll(data, body.get("parameters") or {})
        except json.JSONDecodeError:
            return web.json_response(
                {
                    "code": "InvalidParameter",
                    "message": "body is not JSON",
                    "request_id": request_id,
                },
                status=400,
            )
        except EnrollmentError as exc:
            return web.json_response(
                {"code": exc.code, "message": exc.message, "request_id": request_id},
                status=exc.status,
            )
        return web.json_response(
            {"output": output, "usage": {"count": 1}, "request_id": request_id}
        )

    def _enroll(self, data: dict[str, Any], parameters: dict[str, Any]) -> dict[str, Any]:
        action = data.get("action")
        now = time.monotonic()
        if action == "create_voice":
            return self._create_voice(data, parameters, now)
        if action == "list_voice":
            prefix = data.get("prefix")
            page, size = int(data.get("page_index", 0)), int(data.get("page_size", 10))
            found = [v for v in self.voices.values() if not prefix or v.prefix == prefix]
            found.sort(key=lambda v: v.created, reverse=True)
            return {
                "voice_list": [
                    {
                        "voice_id": v.voice_id,
                        "gmt_create": _stamp(v.created),
                        "gmt_modified": _stamp(v.modified or v.created),
                        "status": v.status(now),
                    }
                    for v in found[page * size : (page + 1) * size]
                ]
            }
        voice = self.voices.get(str(data.get("voice_id", "")))
        if voice is None:
            raise EnrollmentError(400, "InvalidParameter", "voice_id does not exist")
        if action == "query_voice":
            return {
                "voice_id": voice.voice_id,
                "status": voice.status(now),
                "target_model": voice.target_model,
                "resource_link": voice.source if voice.kind == "clone" else "",
                "gmt_create": _stamp(voice.created),
                "gmt_modified": _stamp(voice.modified or voice.created),
            }
        if action == "update_voice":
            url = str(data.get("url", ""))
            self._check_url(url)
            voice.source, voice.fails = url, "undeployed" in url
            voice.ready_at, voice.modified = now + self.config.voice_ready_s, time.time()
            return {}
        if action == "delete_voice":
            del self.voices[voice.voice_id]
            return {}
        raise EnrollmentError(400, "InvalidParameter", f"unknown action {action!r}")

    @staticmethod
    def _check_url(url: str) -> None:
        if not url.startswith(("http://", "https://", "oss://")):
            raise EnrollmentError(400, "InvalidParameter", "url must be a public http(s) URL")

    def _create_voice(
        self, data: dict[str, Any], parameters: dict[str, Any], now: float
    ) -> dict[str, Any]:
        target = str(data.get("target_model", ""))
        model = MODELS.get(target)
        if model is None or self.region not in model.regions:
            raise EnrollmentError(
                400, "InvalidParameter", f"target_model {target!r} is not supported"
            )
        prefix = str(data.get("prefix", ""))
        if not (1 <= len(prefix) <= 10 and prefix.replace("_", "a").isalnum() and prefix.isascii()):
            raise EnrollmentError(400, "InvalidParameter", _PREFIX_RULE)
        if len(self.voices) >= self.config.voice_quota:
            raise EnrollmentError(
                400, "Throttling.AllocationQuota", "voice quota (1000 per account) is used up"
            )
        unique = uuid.uuid4().hex[:8]
        output: dict[str, Any] = {}
        if "voice_prompt" in data:
            if not model.design:
                raise EnrollmentError(400, "InvalidParameter", f"{target} has no voice design")
            prompt = str(data["voice_prompt"])
            preview = str(data.get("preview_text", ""))
            if not prompt.strip() or len(prompt) > 500:
                raise EnrollmentError(
                    400, "InvalidParameter", "voice_prompt must be 1-500 characters"
                )
            if len(preview) > 200:
                raise EnrollmentError(
                    400, "InvalidParameter", "preview_text is over 200 characters"
                )
            voice_id = f"{target}-vd-{prefix}-{unique}"
            rate = int(parameters.get("sample_rate", 24000) or 24000)
            pcm = speak(preview or prompt[:60], sample_rate=rate).pcm
            output["preview_audio"] = {"data": base64.b64encode(_wav_header(rate) + pcm).decode()}
            kind, source, fails = "design", prompt, False
        else:
            url = str(data.get("url", ""))
            self._check_url(url)
            if self.region not in model.clone_regions:
                raise EnrollmentError(
                    400, "InvalidParameter", f"cloning for {target} is not offered here"
                )
            voice_id = f"{target}-{prefix}-{unique}"
            kind, source, fails = "clone", url, "undeployed" in url
        self.voices[voice_id] = SimVoice(
            voice_id,
            target,
            prefix,
            kind,
            source,
            time.time(),
            now + self.config.voice_ready_s,
            fails,
        )
        output["voice_id"] = voice_id
        return output


def _wav_header(sample_rate: int, data_bytes: int = 0xFFFFFFFF - 36) -> bytes:
    riff = min(0xFFFFFFFF, data_bytes + 36)
    return (
        b"RIFF"
        + riff.to_bytes(4, "little")
        + b"WAVEfmt "
        + (16).to_bytes(4, "little")
        + (1).to_bytes(2, "little")
        + (1).to_bytes(2, "little")
        + sample_rate.to_bytes(4, "little")
        + (sample_rate * 2).to_bytes(4, "little")
        + (2).to_bytes(2, "little")
        + (16).to_bytes(2, "little")
        + b"data"
        + min(data_bytes, 0xFFFFFFFF).to_bytes(4, "little")
    )


async def _encode(pcm: bytes, fmt: str, sample_rate: int, bit_rate: int) -> bytes:
    """MP3 or Ogg Opus bytes of ``pcm`` through the bundled ffmpeg."""
    from renderer.audio import ffmpeg_exe

    codec = (
        ["-c:a", "libmp3lame", "-b:a", "64k", "-f", "mp3"]
        if fmt == "mp3"
        else ["-c:a", "libopus", "-b:a", f"{bit_rate}k", "-ar", "48000", "-f", "ogg"]
    )
    process = await asyncio.create_subprocess_exec(
        ffmpeg_exe(), "-hide_banner", "-loglevel", "error",
        "-f", "s16le", "-ar", str(sample_rate), "-ac", "1", "-i", "pipe:0", *codec, "pipe:1",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    out, _ = await process.communicate(pcm)
    return out


# --- one connection -------------------------------------------------------------------


class _TaskFailed(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass
class _Item:
    text: str  # what is spoken (and billed, unless ``billed`` says otherwise)
    breaks: tuple[tuple[int, int], ...] = ()
    billed: int | None = None


_FINISH = _Item("\x00finish")


def server_sentences(
    text: str, breaks: tuple[tuple[int, int], ...]
) -> list[tuple[str, tuple[tuple[int, int], ...]]]:
    """Split SSML text into server sentences; each break goes with the text before it."""
    starts = [0] + [m.end() for m in SENTENCE_END.finditer(text) if 0 < m.end() < len(text)]
    bounds = [*sorted(set(starts)), len(text)]
    items: list[tuple[str, tuple[tuple[int, int], ...]]] = []
    for number, (start, end) in enumerate(pairwise(bounds)):
        mine = tuple(
            (offset - start, ms)
            for offset, ms in breaks
            if start < offset <= end or (number == 0 and offset == 0)
        )
        items.append((text[start:end], mine))
    return items


@dataclass
class _Task:
    task_id: str
    model: str
    voice: str
    fmt: str
    sample_rate: int
    volume: int
    rate: float
    pitch: float
    bit_rate: int
    ssml: bool
    timestamps: bool
    fault: str | None
    queue: asyncio.Queue[_Item] = field(default_factory=asyncio.Queue)
    buffer: str = ""
    received: int = 0
    billed: int = 0
    continues: int = 0
    sentences: int = 0
    tokens: int = 0
    samples: int = 0
    frames_sent: int = 0
    finishing: bool = False
    done: bool = False
    last_text: float = field(default_factory=time.monotonic)
    words: list[dict[str, Any]] = field(default_factory=list)
    worker: asyncio.Task[None] | None = None


class _Session:
    def __init__(self, sim: Simulator, ws: web.WebSocketResponse, key: str, request: web.Request):
        self.sim, self.ws, self.key, self.request = sim, ws, key, request
        self.config = sim.config
        self.task: _Task | None = None
        self.idle_since = time.monotonic()
        self.lock = asyncio.Lock()
        self.closed = False

    # plumbing
    async def _send_json(self, data: dict[str, Any]) -> None:
        async with self.lock:
            if not self.ws.closed:
                await self.ws.send_str(json.dumps(data, ensure_ascii=False))

    async def _send_bytes(self, data: bytes) -> None:
        async with self.lock:
            if not self.ws.closed:
                await self.ws.send_bytes(data)

    async def _event(self, task: _Task, event: str, payload: dict[str, Any], **attrs: Any) -> None:
        header = {"task_id": task.task_id, "event": event, "attributes": attrs}
        await self._send_json({"header": header, "payload": payload})

    async def _fail(self, task_id: str, code: str, message: str) -> None:
        header = {
            "task_id": task_id,
            "event": "task-failed",
            "error_code": code,
            "error_message": message,
            "attributes": {},
        }
        task = self.task
        if task is not None and task.task_id == task_id and not task.done:
            task.done = True
            self.sim.stats.tasks_failed += 1
            self._stop_worker(task)
        await self._send_json({"header": header, "payload": {}})
        await self._close()

    async def _close(self, code: int = 1000, message: bytes = b"") -> None:
        self.closed = True
        if not self.ws.closed:
            await self.ws.close(code=code, message=message)

    def _stop_worker(self, task: _Task) -> None:
        worker = task.worker
        if worker is not None and worker is not asyncio.current_task() and not worker.done():
            worker.cancel()

    def _drop(self) -> None:
        """Cut the TCP connection without a close frame (a socket drop mid-stream)."""
        self.closed = True
        transport = self.request.transport
        if transport is not None:
            transport.abort()

    async def shutdown(self) -> None:
        if self.task is not None:
            self._stop_worker(self.task)

    # the receive loop
    async def serve(self) -> None:
        while not self.closed and not self.ws.closed:
            try:
                message = await self.ws.receive(timeout=0.2)
            except TimeoutError:
                await self._timers()
                continue
            if message.type == WSMsgType.TEXT:
                try:
                    await self._on_text(str(message.data))
                except _TaskFailed as exc:
                    task_id = self.task.task_id if self.task else ""
                    await self._fail(task_id, exc.code, exc.message)
            elif message.type == WSMsgType.BINARY:
                await self._close(1003, b"binary frames are not accepted")
            else:
                return

    async def _timers(self) -> None:
        now = time.monotonic()
        task = self.task
        if task is not None and not task.done and not task.finishing:
            if now - task.last_text > self.config.text_gap_timeout_s:
                gap = f"{self.config.text_gap_timeout_s:g}"
                await self._fail(
                    task.task_id, "CLIENT_ERROR", f"request timeout after {gap} seconds."
                )
        elif (task is None or task.done) and now - self.idle_since > self.config.idle_timeout_s:
            await self._close(1000, b"idle timeout")

    async def _on_text(self, raw: str) -> None:
        try:
            frame = json.loads(raw)
        except json.JSONDecodeError:
            await self._close(1007, b"invalid JSON")
            return
        header = frame.get("header") if isinstance(frame, dict) else None
        payload = frame.get("payload") if isinstance(frame, dict) else None
        if not isinstance(header, dict) or not header.get("action") or not header.get("task_id"):
            await self._close(1007, b"missing header fields")
            return
        task_id, action = str(header["task_id"]), header["action"]
        if not isinstance(payload, dict) or not isinstance(payload.get("input"), dict):
            await self._fail(task_id, "InvalidParameter", "task can not be null")
            return
        if action == "run-task":
            await self._run_task(task_id, header, payload)
            return
        task = self.task
        if task is None or task.task_id != task_id or task.done:
            await self._fail(task_id, "InvalidParameter", "task is not started")
            return
        if action == "continue-task":
            await self._continue(task, payload["input"])
        elif action == "finish-task":
            await self._finish(task, payload["input"])
        else:
            await self._close(1007, b"unknown action")

    # run-task
    async def _run_task(
        self, task_id: str, header: dict[str, Any], payload: dict[str, Any]
    ) -> None:
        old = self.task
        if old is not None and not old.done:  # a new run-task aborts the old one silently
            old.done = True
            self._stop_worker(old)
        delay_s = self.sim.arrival_delay_s()
        if delay_s > 0:  # a front door that stamps arrivals late
            await asyncio.sleep(delay_s)
        now = time.monotonic()
        if self.config.throttle_mode == "task" and self.sim.over_limit(self.key, now):
            self.sim.stats.rejected_by_rate_limit += 1
            await self._fail(task_id, *RATE_QUOTA)
            return
        self.sim.record_arrival(self.key, now)
        fault = self.sim.draw_fault()
        if fault in ("throttle", "arrears"):
            self.sim.stats.faults_injected[fault] += 1
            if fault == "throttle":
                await self._fail(task_id, *RATE_QUOTA)
            else:
                await self._fail(
                    task_id,
                    "Arrearage",
                    "Access denied, please make sure your account is in good standing.",
                )
            return
        try:
            task = self._new_task(task_id, header, payload, fault)
        except _TaskFailed as exc:
            await self._fail(task_id, exc.code, exc.message)
            return
        self.task = task
        await self._event(task, "task-started", {})
        self.sim.stats.tasks_started += 1
        self.sim.stats.start_times.append(now)
        task.worker = asyncio.create_task(self._work(task))

    def _new_task(
        self, task_id: str, header: dict[str, Any], payload: dict[str, Any], fault: str | None
    ) -> _Task:
        protocol = "Please follow the protocol!"
        if header.get("streaming") != "duplex":
            raise _TaskFailed("InvalidParameter", f"streaming must be duplex! {protocol}")
        for key, value in (
            ("task_group", "audio"),
            ("task", "tts"),
            ("function", "SpeechSynthesizer"),
        ):
            if payload.get(key) != value:
                raise _TaskFailed("InvalidParameter", f"payload.{key} must be {value}! {protocol}")
        model_name = payload.get("model")
        if not model_name:
            raise _TaskFailed(
                "InvalidParameter", f"Missing required parameter 'payload.model'! {protocol}"
            )
        model = MODELS.get(str(model_name))
        if model is None or self.sim.region not in model.regions:
            raise _TaskFailed("InvalidParameter", f"Model not exist: {model_name}")
        params = payload.get("parameters") if isinstance(payload.get("parameters"), dict) else {}
        assert isinstance(params, dict)
        voice = str(params.get("voice") or "")
        if not voice:
            raise _TaskFailed("InvalidParameter", "Request voice is invalid!")
        self._check_voice(voice, model.name)
        fmt = str(params.get("format") or "Default").lower()
        fmt = "mp3" if fmt == "default" else fmt
        if fmt not in FORMATS:
            raise _TaskFailed("InvalidParameter", f"format {fmt} is not supported")
        rate_hz = int(params.get("sample_rate") or 0) or 22050
        if rate_hz not in SAMPLE_RATES:
            raise _TaskFailed("InvalidParameter", f"sample_rate {rate_hz} is not supported")

        def number(name: str, default: float, low: float, high: float) -> float:
            value = params.get(name, default)
            if not isinstance(value, int | float) or not low <= value <= high:
                raise _TaskFailed("InvalidParameter", f"{name} must be in [{low}, {high}]")
            return float(value)

        volume = int(number("volume", 50, 0, 100))
        rate = number("rate", 1.0, *RATE_RANGE)
        pitch = number("pitch", 1.0, *PITCH_RANGE)
        bit_rate = int(number("bit_rate", 32, *BIT_RATE_RANGE)) if fmt == "opus" else 32
        number("seed", 0, *SEED_RANGE)
        instruction = params.get("instruction")
        if instruction is not None and (
            not model.instruction or len(str(instruction)) > 2 * INSTRUCTION_MAX_CHARS
        ):
            raise _TaskFailed("InvalidParameter", "[tts:]Engine return error code: 428")
        return _Task(
            task_id=task_id,
            model=model.name,
            voice=voice,
            fmt=fmt,
            sample_rate=rate_hz,
            volume=volume,
            rate=rate,
            pitch=pitch,
            bit_rate=bit_rate,
            ssml=bool(params.get("enable_ssml")) or params.get("text_type") == "SSML",
            timestamps=bool(params.get("word_timestamp_enabled")),
            fault=fault,
        )

    def _check_voice(self, voice: str, model_name: str) -> None:
        model = MODELS[model_name]
        target = custom_voice_model(voice)
        if target is not None:
            found = self.sim.voices.get(voice)
            if found is None or found.target_model != model_name:
                raise _TaskFailed("InvalidParameter", ENGINE_418)
            if found.status(time.monotonic()) != "OK":
                raise _TaskFailed("InvalidParameter", ENGINE_418)
            return
        if not model.system_voices or system_voice_family(voice) != model.family:
            raise _TaskFailed("InvalidParameter", ENGINE_418)
        if voice not in SYSTEM_VOICES:  # the real service knows its voices; so do we
            raise _TaskFailed("InvalidParameter", ENGINE_418)

    # continue-task / finish-task
    async def _continue(self, task: _Task, data: dict[str, Any]) -> None:
        if task.finishing:
            raise _TaskFailed("InvalidParameter", "task is finishing")
        task.last_text = time.monotonic()
        if data.get("flush") is True and "text" not in data:
            if task.buffer:
                await task.queue.put(_Item(task.buffer))
                task.buffer = ""
            return
        text = data.get("text")
        if not isinstance(text, str) or not text:
            raise _TaskFailed("InvalidParameter", "Please ensure input text is valid.")
        if task.ssml:
            task.continues += 1
            if task.continues > 1:
                raise _TaskFailed("InvalidParameter", "Text request limit violated, expected 1.")
        breaks: tuple[tuple[int, int], ...] = ()
        spoken = shown = text
        is_ssml = task.ssml and "<speak" in text
        if is_ssml:
            try:  # bill the text (tags excluded), say the aliases
                shown = parse_ssml(text).text
                parsed = parse_ssml(text, aliases=True)
            except Exception as exc:
                raise _TaskFailed("InvalidParameter", f"SSML parse error: {exc}") from None
            spoken, breaks = parsed.text, parsed.breaks
        count = billed_chars(shown)
        if count > PER_MESSAGE_LIMIT:
            raise _TaskFailed(
                "InvalidParameter",
                f"Text length {count} exceeds the limit of {PER_MESSAGE_LIMIT} characters.",
            )
        if task.received + count > PER_TASK_LIMIT:
            raise _TaskFailed(
                "InvalidParameter",
                f"Text length exceeds the limit of {PER_TASK_LIMIT} characters per task.",
            )
        task.received += count
        marker = self.config.fault_marker
        if marker and marker in spoken and task.fault is None:
            task.fault = self.config.faults[0] if self.config.faults else "internal"
            if task.fault in ("throttle", "arrears"):
                self.sim.stats.faults_injected[task.fault] += 1
                if task.fault == "throttle":
                    raise _TaskFailed(*RATE_QUOTA)
                raise _TaskFailed(
                    "Arrearage", "Access denied, please make sure your account is in good standing."
                )
        if is_ssml:  # one message; the service still speaks (and caps) sentence by sentence
            for number, (part, part_breaks) in enumerate(server_sentences(spoken, breaks)):
                await task.queue.put(_Item(part, part_breaks, count if number == 0 else 0))
            return
        task.buffer += spoken
        end = 0
        for match in SENTENCE_END.finditer(task.buffer):
            if match.end() > end:
                await task.queue.put(_Item(task.buffer[end : match.end()]))
                end = match.end()
        task.buffer = task.buffer[end:]

    async def _finish(self, task: _Task, data: dict[str, Any]) -> None:
        if data.get("directive") == "cancel":
            task.done = True
            self._stop_worker(task)
            await self._finished(task)
            await self._close()
            return
        task.finishing = True
        if task.buffer:
            await task.queue.put(_Item(task.buffer))
            task.buffer = ""
        await task.queue.put(_FINISH)

    async def _finished(self, task: _Task) -> None:
        payload: dict[str, Any] = {"output": {}}
        attrs: dict[str, Any] = {}
        if self.config.timestamps in ("task-finished", "both") and task.timestamps:
            payload["output"] = {"sentence": {"index": 0, "words": task.words}}
        if self.config.finished_usage:
            payload["usage"] = {"characters": task.billed}
            attrs["request_uuid"] = uuid.uuid4().hex
        await self._event(task, "task-finished", payload, **attrs)
        self.sim.stats.tasks_finished += 1
        self.sim.stats.billed_characters_finished += task.billed
        self.idle_since = time.monotonic()

    # the synthesis worker (one per task)
    async def _work(self, task: _Task) -> None:
        try:
            while True:
                item = await task.queue.get()
                if item is _FINISH:
                    task.done = True
                    await self._finished(task)
                    return
                await self._sentence(task, item)
        except _TaskFailed as exc:
            await self._fail(task.task_id, exc.code, exc.message)
        except asyncio.CancelledError:
            raise
        except ConnectionError:
            self.closed = True

    async def _sentence(self, task: _Task, item: _Item) -> None:
        count = billed_chars(item.text) if item.billed is None else item.billed
        task.billed += count
        self.sim.stats.billed_characters += count
        if not item.text.strip():
            return
        rate = task.sample_rate
        index = task.sentences
        task.sentences += 1
        original = item.text.strip()
        await self._event(
            task,
            "result-generated",
            {"output": {"type": "sentence-begin", "original_text": original,
                        "sentence": {"index": index, "words": []}}},
        )  # fmt: skip
        spoken = speak(
            item.text,
            sample_rate=rate,
            rate=task.rate,
            pitch=task.pitch,
            volume=task.volume,
            breaks=item.breaks,
        )
        pcm, words = spoken.pcm, spoken.words
        cap = self.config.sentence_cap_ms * rate // 1000
        if len(pcm) // 2 > cap:
            pcm = pcm[: cap * 2]
            words = [w for w in words if w.begin < cap]
        if task.fault == "truncate" and words and len(pcm) > 0:
            self.sim.stats.faults_injected["truncate"] += 1
            task.fault = None
            pcm = pcm[: len(pcm) // 2 * 4 // 10 * 2]
        base = task.samples if self.config.time_base == "cumulative" else 0
        ordinal = task.tokens if self.config.index_base == "cumulative" else 0
        records = [
            {
                "text": w.text,
                "begin_index": ordinal + w.ordinal,
                "end_index": ordinal + w.ordinal + 1,
                "begin_time": (base + w.begin) * 1000 // rate,
                "end_time": (base + min(w.end, cap)) * 1000 // rate,
            }
            for w in words
        ]
        task.tokens += len(spoken.words)
        task.samples += len(pcm) // 2
        await self._stream(task, pcm)
        if task.timestamps:
            task.words.extend(records)
        in_sentence = task.timestamps and self.config.timestamps in ("sentence-end", "both")
        await self._event(
            task,
            "result-generated",
            {
                "output": {
                    "type": "sentence-end",
                    "original_text": original,
                    "sentence": {"index": index, "words": records if in_sentence else []},
                },
                "usage": {"characters": task.billed},
            },
        )
        if task.fault == "internal":
            self.sim.stats.faults_injected["internal"] += 1
            raise _TaskFailed("InternalError", "Internal server error!")

    async def _stream(self, task: _Task, pcm: bytes) -> None:
        rate = task.sample_rate
        if task.fmt in ("mp3", "opus"):
            data = await _encode(pcm, task.fmt, rate, task.bit_rate)
            step = max(1, len(data) * self.config.chunk_ms * rate // 1000 * 2 // max(len(pcm), 1))
        else:
            data = pcm
            step = max(2, self.config.chunk_ms * rate // 1000 * 2)
            if task.fmt == "wav" and task.frames_sent == 0:
                data = _wav_header(rate) + data
        if task.frames_sent == 0:
            delay = self.config.first_packet_s
            if task.fault == "slow":
                self.sim.stats.faults_injected["slow"] += 1
                task.fault = None
                delay += self.config.slow_first_packet_s
            if delay > 0:
                await asyncio.sleep(delay)
        for start in range(0, len(data), step):
            await self._event(
                task,
                "result-generated",
                {"output": {"type": "sentence-synthesis", "sentence": {"words": []}}},
            )
            await self._send_bytes(data[start : start + step])
            task.frames_sent += 1
            if task.fault == "drop":
                self.sim.stats.faults_injected["drop"] += 1
                task.done = True
                self.sim.stats.tasks_failed += 1
                self._drop()
                raise ConnectionError("dropped on purpose")
        if self.config.rtf > 0:
            await asyncio.sleep(len(pcm) / 2 / rate * self.config.rtf)


# --- running it -------------------------------------------------------------------------


class SimulatorThread:
    """A simulator on 127.0.0.1 in a background thread (tests, embedding)."""

    def __init__(
        self, config: SimulatorConfig | None = None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.simulator = Simulator(config)
        self.host, self.port = host, port
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._main, name="cosyvoice-simulator", daemon=True)

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}{WS_PATH}"

    @property
    def http_base(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> SimulatorThread:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the CosyVoice simulator did not start")
        return self

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._start())
        self._ready.set()
        self._loop.run_forever()

    async def _start(self) -> None:
        self._runner = web.AppRunner(self.simulator.app(), handle_signals=False, shutdown_timeout=1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = bound_port(self._runner, self.port)

    def call(self, func: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
        return asyncio.run_coroutine_threadsafe(func(), self._loop).result(10)

    def stats(self) -> dict[str, Any]:
        async def snap() -> dict[str, Any]:
            return self.simulator.stats.snapshot()

        return dict(self.call(snap))

    def stop(self) -> None:
        if self._runner is not None:
            runner = self._runner
            self.call(self.simulator.close_all)
            self.call(runner.cleanup)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def __enter__(self) -> SimulatorThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def bound_port(runner: web.AppRunner, default: int) -> int:
    for site in runner.sites:
        server = getattr(site, "_server", None)
        for sock in getattr(server, "sockets", None) or ():
            return int(sock.getsockname()[1])
    return default


def serve_forever(
    config: SimulatorConfig, host: str, port: int, on_ready: Callable[[int], None]
) -> None:
    """Run a simulator in the foreground until interrupted."""

    async def main() -> None:
        simulator = Simulator(config)
        runner = web.AppRunner(simulator.app(), shutdown_timeout=1)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        on_ready(bound_port(runner, port))
        try:
            await asyncio.Event().wait()
        finally:
            await simulator.close_all()
            await runner.cleanup()

    asyncio.run(main())
