"""Priority classes of jobs: urgent (a nightly bulletin) > normal > bulk (a back catalogue).

A job's class orders everything it waits for: the feeder releases urgent segments first,
workers poll the urgent broker queue first, and the provider throttle grants an urgent
ticket before any normal or bulk ticket that is waiting.

The class of the work a process is doing *right now* travels in a context variable, so
that an engine deep in ``renderer`` asks its :class:`~renderer.engine.RequestGate` for a
permit without knowing about jobs: the task sets it with :func:`using_priority`, the gate
reads it with :func:`current_priority`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from enum import IntEnum

from narrate.errors import UsageError


class Priority(IntEnum):
    """Lower value = served first."""

    URGENT = 0
    NORMAL = 1
    BULK = 2

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Priority:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            names = ", ".join(p.label for p in cls)
            raise UsageError(f"unknown priority {text!r}", hint=f"choose one of {names}") from None


@dataclass(frozen=True, order=True)
class Work:
    """A segment or a chapter stitch to send to the broker, on its job's class's queue."""

    item_id: int
    priority: Priority


_current: ContextVar[tuple[Priority, str | None]] = ContextVar(
    "narrate_priority", default=(Priority.NORMAL, None)
)


def current_priority() -> tuple[Priority, str | None]:
    """``(class, job id)`` of the work this thread is doing (normal, None outside a task)."""
    return _current.get()


@contextmanager
def using_priority(priority: Priority, job_id: str | None = None) -> Iterator[None]:
    """Run the block as work of class ``priority`` for job ``job_id``."""
    token = _current.set((priority, job_id))
    try:
        yield
    finally:
        _current.reset(token)
