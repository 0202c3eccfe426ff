"""Engine registry: engine names to engine instances (one per process, created lazily)."""

from __future__ import annotations

from narrate.errors import UsageError
from renderer.engine import Engine, OpenGate, RequestGate

#: engine names; "stub" makes deterministic tones (tests, dry runs); "cosyvoice" is
#: Alibaba Model Studio's cloud engine (renderer/cosyvoice)
ENGINES = ("espeak", "stub", "cosyvoice")

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
    if name == "cosyvoice":
        from renderer.cosyvoice import CosyVoiceEngine

        return CosyVoiceEngine(gate)
    raise UsageError(f"unknown engine {name!r}", hint=f"choose one of {', '.join(ENGINES)}")
