"""The duplex WebSocket protocol's frames (pure): building client frames, reading events.

Reference §2.2 (client frames) and §2.3 (server events). Every frame of a task carries
the same ``task_id`` (32 hex digits, like the SDK's ``uuid4().hex``). ``payload.input``
is always present (``{}`` when empty): leaving it out gets "task can not be null".
Audio arrives as binary frames, never inside JSON (§2.4).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any


def new_task_id() -> str:
    return uuid.uuid4().hex


def _frame(action: str, task_id: str, payload: dict[str, Any]) -> str:
    header = {"action": action, "task_id": task_id, "streaming": "duplex"}
    return json.dumps({"header": header, "payload": payload}, ensure_ascii=False)


def run_task(task_id: str, model: str, parameters: dict[str, Any]) -> str:
    return _frame(
        "run-task",
        task_id,
        {
            "task_group": "audio",
            "task": "tts",
            "function": "SpeechSynthesizer",
            "model": model,
            "parameters": parameters,
            "input": {},
        },
    )


def continue_task(task_id: str, text: str) -> str:
    return _frame("continue-task", task_id, {"input": {"text": text}})


def flush_task(task_id: str) -> str:
    return _frame("continue-task", task_id, {"input": {"flush": True}})


def finish_task(task_id: str) -> str:
    return _frame("finish-task", task_id, {"input": {}})


@dataclass(frozen=True)
class Event:
    """A server event: ``kind`` is the event name, or the output type for results."""

    kind: str  # task-started | sentence-begin | sentence-synthesis | sentence-end |
    #            task-finished | task-failed | (anything else the server may add)
    task_id: str | None
    sentence_index: int | None = None
    original_text: str | None = None
    words: tuple[dict[str, Any], ...] = ()
    usage: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)


class ProtocolError(ValueError):
    """A frame that does not follow the protocol."""


def _usage(payload: dict[str, Any]) -> int | None:
    usage = payload.get("usage")
    if isinstance(usage, dict) and isinstance(usage.get("characters"), int):
        return int(usage["characters"])
    return None


def parse_event(raw: str) -> Event:
    """Read one JSON event; raises :class:`ProtocolError` when it is not one."""
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ProtocolError(f"the service sent text that is not JSON: {raw[:80]!r}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("header"), dict):
        raise ProtocolError(f"the service sent a frame without header: {raw[:80]!r}")
    header: dict[str, Any] = data["header"]
    payload = data.get("payload") if isinstance(data.get("payload"), dict) else {}
    assert isinstance(payload, dict)
    event = str(header.get("event", ""))
    task_id = header.get("task_id")
    attributes = header.get("attributes") if isinstance(header.get("attributes"), dict) else {}
    assert isinstance(attributes, dict)
    if event == "task-failed":
        return Event(
            "task-failed",
            task_id,
            error_code=header.get("error_code"),
            error_message=str(header.get("error_message") or ""),
            attributes=attributes,
        )
    output = payload.get("output") if isinstance(payload.get("output"), dict) else {}
    assert isinstance(output, dict)
    sentence = output.get("sentence") if isinstance(output.get("sentence"), dict) else {}
    assert isinstance(sentence, dict)
    raw_words = sentence.get("words")
    words = (
        tuple(w for w in raw_words if isinstance(w, dict)) if isinstance(raw_words, list) else ()
    )
    index = sentence.get("index")
    original = output.get("original_text")
    common: dict[str, Any] = {
        "task_id": task_id,
        "sentence_index": index if isinstance(index, int) else None,
        "original_text": original if isinstance(original, str) else None,
        "words": words,
        "usage": _usage(payload),
        "attributes": attributes,
    }
    if event == "result-generated":
        return Event(str(output.get("type", "")), **common)
    return Event(event, **common)
