"""Engine registry: engine names to engine instances (one per process, created lazily)."""

from __future__ import annotations

from narrate.errors import UsageError
from renderer.engine import Engine, OpenGate, RequestGate

#: engine names; "stub" makes deterministic tones (tests, dry runs)
ENGINES = ("espeak", "stub")

_instances: dict[str, Engine] = {}


def get_engine(name: str, gate: RequestGate | None = None) -> Engine:
    """The process-wide instance of engine ``name``.

    ``gate`` is what a rate-limited engine asks before each provider request; it is
    taken on first creation (one gate per process).
    """
    engine = _instances.get(name)
    if engine is None:
        engine = _instances[name] = _create(name, gate or OpenGate())
    return engine


def _create(name: str, gate: RequestGate) -> Engine:
    if name == "espeak":
        from renderer.espeak import EspeakEngine

        return EspeakEngine()
    if name == "stub":
        from renderer.stub import StubEngine

        return StubEngine()
    raise UsageError(f"unknown engine {name!r}", hint=f"choose one of {', '.join(ENGINES)}")
