"""Engine registry: engine names to engine instances (one per process, created lazily)."""

from __future__ import annotations

from functools import cache

from narrate.errors import UsageError
from renderer.engine import Engine

#: engine names; "stub" makes deterministic tones (tests, dry runs)
ENGINES = ("espeak", "stub")


@cache
def get_engine(name: str) -> Engine:
    """The process-wide instance of engine ``name``."""
    if name == "espeak":
        from renderer.espeak import EspeakEngine

        return EspeakEngine()
    if name == "stub":
        from renderer.stub import StubEngine

        return StubEngine()
    raise UsageError(f"unknown engine {name!r}", hint=f"choose one of {', '.join(ENGINES)}")
