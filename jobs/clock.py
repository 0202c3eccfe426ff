"""The application clock."""

from __future__ import annotations

import time


def clock_ms() -> int:
    """The application clock, epoch milliseconds (called at the edges only)."""
    return int(time.time() * 1000)
