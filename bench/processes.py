"""Helpers the benchmarks share: stopping the process groups they started."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time


def stop(processes: list[subprocess.Popen[bytes]], grace_s: float) -> None:
    """SIGTERM each process's group (each was started in a session of its own), SIGKILL
    the groups still there after ``grace_s``."""
    for process in processes:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for process in processes:
        try:
            process.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)
