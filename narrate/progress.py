"""A progress line on stderr for the embedded render."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO


class ProgressPrinter:
    """Draws ``[#####.....] 45/180 segments, 3/13 chapters`` on stderr.

    On a terminal the line is redrawn in place; otherwise a line is printed at most every
    few seconds so logs stay short.
    """

    def __init__(self, *, enabled: bool = True, stream: TextIO | None = None) -> None:
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self._last = 0.0
        self._drawn = False

    def start(self, summary: Any) -> None:
        if not self.enabled:
            return
        skipped = f"; skipped {', '.join(summary.skipped)}" if summary.skipped else ""
        self.stream.write(
            f"job {summary.job_id}: {summary.chapters} chapters, "
            f"{summary.segments_total} segments ({summary.segments_reused} already rendered)"
            f"{skipped}\n"
        )
        if summary.cost is not None:
            self.stream.write(f"against what is rendered: {summary.cost.summary()}\n")
        for warning in summary.warnings:
            self.stream.write(f"warning: {warning}\n")

    def update(self, progress: Any) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        finished = progress.chapters_done == progress.chapters_total
        if not self.tty and now - self._last < 5 and not finished:
            return
        self._last = now
        total = max(progress.segments_total, 1)
        filled = 30 * progress.segments_done // total
        line = (
            f"[{'#' * filled}{'.' * (30 - filled)}] {progress.segments_done}/"
            f"{progress.segments_total} segments, {progress.chapters_done}/"
            f"{progress.chapters_total} chapters"
        )
        self.stream.write(f"\r{line}" if self.tty else f"{line}\n")
        self._drawn = True
        self.stream.flush()

    def note(self, message: str) -> None:
        """A line of its own (on a terminal, below the progress line it interrupts)."""
        if not self.enabled:
            return
        if self.tty and self._drawn:
            self.stream.write("\n")
        self.stream.write(f"{message}\n")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.tty and self._drawn:
            self.stream.write("\n")
