"""Our own client of the duplex WebSocket protocol (one connection per process, reused).

Why not the official ``dashscope`` SDK (reference §9): by default it opens one
connection per task and closes it (reuse needs its object pool and a background
reconnect thread); it never parses word timestamps, and in blocking mode returns audio
only; socket-level errors are only logged, not raised; ``call()`` forces
``enable_ssml``; it starts the task (run-task) lazily inside ``streaming_call``, so the
moment a rate-limit permit is spent is not ours to choose; and it pulls in pydantic,
aiohttp, httpx and more. The protocol is small (three client frames, five events, §2),
so a client of our own on ``websockets``' synchronous API gives us connection reuse,
the gate's permit around each ``run-task`` and its answer, timestamps, and typed errors
carrying the service's code and task id. The SDK is still used in the tests, against our simulator,
to prove the simulator speaks the protocol the official client expects.

Task flow (§2.1): connect (handshake carries the key, §1.2) and serialise ``run-task`` ->
take the gate's permit, send ``run-task``, wait for ``task-started``, leave the permit
(the service counted the task by then) -> send every ``continue-task`` (and ``flush``)
and ``finish-task`` -> read events and binary audio until ``task-finished``.
After ``task-finished`` the connection is kept for the next task (a new task id); after
``task-failed`` or any fault it is closed (the service closes it too, §2.3). A kept
connection idle for more than :data:`MAX_IDLE_S` is replaced (the service drops it after
60 s, §2.5).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI, WebSocketException
from websockets.sync.client import ClientConnection, connect

from renderer.cosyvoice import protocol
from renderer.cosyvoice.config import ServiceConfig
from renderer.cosyvoice.errors import (
    CosyVoiceRejectedError,
    CosyVoiceServiceError,
    CosyVoiceThrottledError,
    handshake_error,
    service_error,
)
from renderer.cosyvoice.text import Message
from renderer.engine import OpenGate, RequestGate

log = logging.getLogger(__name__)

#: replace a kept connection idle for longer than this (the service drops it at 60 s)
MAX_IDLE_S = 45.0


@dataclass
class SentenceAudio:
    """One sentence of the service's cut, with where its audio lies in the stream."""

    index: int
    original_text: str | None
    audio_start: int  # byte offsets into the task's audio stream
    audio_end: int
    words: tuple[dict[str, Any], ...] = ()


@dataclass
class TaskOutcome:
    task_id: str
    audio: bytes
    sentences: list[SentenceAudio] = field(default_factory=list)
    #: words found in task-finished (older docs put them only there, §4)
    finished_words: tuple[dict[str, Any], ...] = ()
    usage: int | None = None
    first_audio_s: float | None = None


Connector = Callable[[str, dict[str, str], float], ClientConnection]


def _connect(url: str, headers: dict[str, str], timeout_s: float) -> ClientConnection:
    return connect(
        url,
        additional_headers=headers,
        user_agent_header=None,
        open_timeout=timeout_s,
        close_timeout=2,
        ping_interval=None,
        max_size=None,
        compression=None,
        proxy=None,
        legacy=True,
    )


class CosyVoiceClient:
    """Runs synthesis tasks over one kept connection; thread-safe (one task at a time)."""

    def __init__(
        self,
        config: ServiceConfig,
        gate: RequestGate | None = None,
        connector: Connector = _connect,
    ) -> None:
        self.config = config
        self.gate = gate or OpenGate()
        self._connector = connector
        self._ws: ClientConnection | None = None
        self._idle_since = 0.0
        self._lock = threading.Lock()
        #: tasks started and connections opened by this client (for reports and tests)
        self.tasks_started = 0
        self.connections_opened = 0

    def close(self) -> None:
        with self._lock:
            self._drop()

    def run(
        self, model: str, parameters: dict[str, Any], messages: Sequence[Message]
    ) -> TaskOutcome:
        """Run one task; raises a retryable or fatal error from :mod:`.errors`."""
        with self._lock:
            for attempt in (1, 2):
                ws = self._connection()
                task_id = protocol.new_task_id()
                try:
                    return self._run(ws, task_id, model, parameters, messages)
                except _StaleConnection:
                    # a reused connection, or a fresh one that waited in the rate gate past
                    # the service's idle timeout: once more on a new connection (new permit)
                    self._drop()
                    if attempt == 2:
                        raise CosyVoiceServiceError(
                            f"CosyVoice closed the connection before task {task_id} started",
                            hint="a network or service fault; the segment is retried",
                        ) from None
                except BaseException:
                    self._drop()
                    raise
            raise AssertionError("unreachable")  # pragma: no cover

    # --- connection -------------------------------------------------------------------

    def _connection(self) -> ClientConnection:
        ws = self._ws
        if ws is not None and time.monotonic() - self._idle_since > MAX_IDLE_S:
            self._drop()
            ws = None
        if ws is not None:
            return ws
        url = self.config.ws_url
        try:
            ws = self._connector(url, self.config.headers(), self.config.timeout_s)
        except InvalidStatus as exc:
            body = exc.response.body.decode("utf-8", "replace") if exc.response.body else ""
            error = handshake_error(exc.response.status_code, body, url)
            if isinstance(error, CosyVoiceThrottledError):
                self.gate.pause(self.config.account, error.pause_s)
            raise error from None
        except InvalidURI as exc:
            raise CosyVoiceRejectedError(f"{url} is not a WebSocket URL: {exc}") from None
        except (OSError, TimeoutError, WebSocketException) as exc:
            raise CosyVoiceServiceError(
                f"cannot connect to CosyVoice at {url}: {type(exc).__name__}: {exc}",
                hint="check the network (and NARRATE_COSYVOICE_URL); the segment is retried",
            ) from None
        self.connections_opened += 1
        self._ws = ws
        return ws

    def _drop(self) -> None:
        if self._ws is not None:
            with contextlib.suppress(Exception):
                self._ws.close()
            self._ws = None

    # --- one task ---------------------------------------------------------------------

    def _send(self, ws: ClientConnection, frame: str, task_id: str, started: bool) -> None:
        try:
            ws.send(frame)
        except ConnectionClosed as exc:
            if not started:
                raise _StaleConnection from exc
            raise self._closed_error(exc, task_id) from None

    def _recv(self, ws: ClientConnection, task_id: str, started: bool) -> str | bytes:
        try:
            return ws.recv(timeout=self.config.timeout_s)
        except TimeoutError:
            what = "audio" if started else "task-started"
            raise CosyVoiceServiceError(
                f"CosyVoice sent nothing for {self.config.timeout_s:g} s while narrate "
                f"waited for {what} (task {task_id})",
                hint="the service is slow or the network stalls; the segment is retried "
                "(NARRATE_COSYVOICE_TIMEOUT_S sets the wait)",
            ) from None
        except ConnectionClosed as exc:
            if not started:
                raise _StaleConnection from exc
            raise self._closed_error(exc, task_id) from None

    def _closed_error(self, exc: ConnectionClosed, task_id: str) -> Exception:
        code = exc.rcvd.code if exc.rcvd is not None else None
        if code == 1007:
            return CosyVoiceRejectedError(
                f"CosyVoice closed the connection with code 1007 (invalid frame) during task "
                f"{task_id}",
                hint="a protocol fault in narrate: report it",
                code="1007",
            )
        return CosyVoiceServiceError(
            f"the connection to CosyVoice dropped during task {task_id} "
            f"(close code {code if code is not None else 'none'})",
            hint="a network or service fault; the partial audio is discarded and the "
            "segment retried",
        )

    def _run(
        self,
        ws: ClientConnection,
        task_id: str,
        model: str,
        parameters: dict[str, Any],
        messages: Sequence[Message],
    ) -> TaskOutcome:
        # the connection is open and the frame serialised before the permit: nothing but
        # the send lies between them. The permit is held until the service answers the
        # run-task (task-started or task-failed): the service counted the task by then,
        # so the gate logs it at an upper bound of its arrival (renderer.engine.RequestGate)
        start_frame = protocol.run_task(task_id, model, parameters)
        with self.gate.permit(self.config.account):
            began = time.monotonic()
            self._send(ws, start_frame, task_id, started=False)
            self.tasks_started += 1
            self._await_started(ws, task_id)
        for message in messages:
            self._send(ws, protocol.continue_task(task_id, message.text), task_id, True)
            if message.flush_after:
                self._send(ws, protocol.flush_task(task_id), task_id, True)
        self._send(ws, protocol.finish_task(task_id), task_id, True)
        return self._collect(ws, task_id, began)

    def _await_started(self, ws: ClientConnection, task_id: str) -> None:
        """Wait for task-started (a continue-task before it fails the task, §2.1)."""
        while True:
            raw = self._recv(ws, task_id, started=False)
            if isinstance(raw, bytes):
                continue
            event = self._event(raw)
            if event.kind == "task-started":
                return
            if event.kind == "task-failed":
                raise self._failed(event, task_id)

    def _collect(self, ws: ClientConnection, task_id: str, began: float) -> TaskOutcome:
        audio = bytearray()
        outcome = TaskOutcome(task_id, b"")
        current: SentenceAudio | None = None
        while True:
            raw = self._recv(ws, task_id, started=True)
            if isinstance(raw, bytes):
                if outcome.first_audio_s is None:
                    outcome.first_audio_s = time.monotonic() - began
                audio += raw
                continue
            event = self._event(raw)
            if event.usage is not None:
                outcome.usage = event.usage
            if event.kind == "sentence-begin":
                index = event.sentence_index
                current = SentenceAudio(
                    index if index is not None else len(outcome.sentences),
                    event.original_text,
                    len(audio),
                    len(audio),
                )
                outcome.sentences.append(current)
            elif event.kind == "sentence-end":
                if current is None:  # a server that skips sentence-begin
                    current = SentenceAudio(len(outcome.sentences), None, len(audio), len(audio))
                    outcome.sentences.append(current)
                current.audio_end = len(audio)
                if event.original_text and not current.original_text:
                    current.original_text = event.original_text
                if event.words:
                    current.words = event.words
                current = None
            elif event.kind == "task-finished":
                outcome.finished_words = event.words
                outcome.audio = bytes(audio)
                if current is not None:
                    current.audio_end = len(audio)
                self._idle_since = time.monotonic()
                return outcome
            elif event.kind == "task-failed":
                raise self._failed(event, task_id)

    @staticmethod
    def _event(raw: str) -> protocol.Event:
        try:
            return protocol.parse_event(raw)
        except protocol.ProtocolError as exc:
            raise CosyVoiceServiceError(str(exc), hint="retried with a new connection") from None

    def _failed(self, event: protocol.Event, task_id: str) -> Exception:
        error = service_error(event.error_code, event.error_message or "", event.task_id or task_id)
        if isinstance(error, CosyVoiceThrottledError):
            self.gate.pause(self.config.account, error.pause_s)
        return error


class _StaleConnection(Exception):
    """A kept connection turned out closed before the task started."""
