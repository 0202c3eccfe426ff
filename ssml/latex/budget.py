"""One CPU-time budget for reading one formula, shared by every stage that reads it.

A :class:`Budget` is a deadline on this thread's CPU clock (``time.thread_time``), so a
stall of a busy machine (other processes, a paused VM) never changes what a formula reads
as: only the work done for the formula counts. The stages (finding the formula's end,
parsing, speech, caption text, the alias) take it in turn and look at the clock through
:meth:`Budget.tick`, which is cheap enough to call once per node.

:func:`gc_paused` holds the garbage collector for the duration of a read: a full
collection of a large heap (a long-lived worker, a long test run, 6M objects: 0.5 s of
CPU) inside one read made a plain 300-term sum "too complex to read". What a formula
reads as must depend on the formula, not on the process's state or load; a read
allocates a bounded amount (the source is capped), so pausing is safe.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator
from contextlib import contextmanager

#: look at the clock on every this-many ticks (a clock read costs about 0.2 microseconds)
_TICKS_PER_CHECK = 16


class OutOfTime(Exception):
    """A stage ran past the formula's budget; the caller falls back to a plainer reading."""


class Budget:
    """A deadline ``seconds`` of this thread's CPU time from now."""

    __slots__ = ("_ticks", "deadline")

    def __init__(self, seconds: float) -> None:
        self.deadline = time.thread_time() + seconds
        self._ticks = 0

    def expired(self) -> bool:
        """Whether the deadline has passed (reads the clock)."""
        return time.thread_time() > self.deadline

    def tick(self) -> None:
        """Count one step of work; raise :class:`OutOfTime` once the deadline has passed.

        The clock is read on every 16th call only, so a stage may overrun by 16 steps.
        """
        self._ticks += 1
        if self._ticks % _TICKS_PER_CHECK == 0 and time.thread_time() > self.deadline:
            raise OutOfTime

    def check(self) -> None:
        """Raise :class:`OutOfTime` if the deadline has passed (reads the clock)."""
        if time.thread_time() > self.deadline:
            raise OutOfTime


@contextmanager
def gc_paused() -> Iterator[None]:
    """Hold the garbage collector for the block (see the module docstring); nests."""
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


__all__ = ["Budget", "OutOfTime", "gc_paused"]
