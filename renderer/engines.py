"""Engine registry: a table of engine modules, and one instance per engine per process.

Each engine is one module that declares ``SPEC`` (:class:`~renderer.engine.EngineSpec`:
name, factory, dialect, capabilities); :data:`_MODULES` is the only list of them. A
module is imported when its engine is first asked for, so the CLI starts without loading
any engine, and an engine whose optional dependencies are missing fails only when it is
chosen, with its install hint. Adding an engine is one new module plus one line here.

Instances are created lazily and kept per process. An engine that uses the request gate
(``spec.uses_gate``) gets one instance per gate, and one that keeps derived files
(``spec.uses_cache``) one per cache folder: asking with another gate or folder never
silently hands back an instance wired to a different one.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from narrate.errors import UsageError
from renderer.engine import Engine, EngineSetup, EngineSpec, OpenGate, RequestGate

#: engine name -> the module declaring it (its ``SPEC``)
_MODULES = {
    "espeak": "renderer.espeak",
    "stub": "renderer.stub",
    "cosyvoice": "renderer.cosyvoice.engine",
    "piper": "renderer.piper.spec",
}
#: engine names, in the order ``--engine`` lists them
ENGINES = tuple(_MODULES)

#: (name, gate identity, cache folder) -> (instance, the gate it holds)
_instances: dict[tuple[str, int, Path | None], tuple[Engine, RequestGate | None]] = {}


def engine_spec(name: str) -> EngineSpec:
    """The declaration of engine ``name`` (imports its module, not its dependencies)."""
    module = _MODULES.get(name)
    if module is None:
        raise UsageError(f"unknown engine {name!r}", hint=f"choose one of {', '.join(ENGINES)}")
    spec: EngineSpec = importlib.import_module(module).SPEC
    if spec.name != name:  # a registry entry pointing at the wrong module
        raise RuntimeError(f"{module} declares engine {spec.name!r}, not {name!r}")
    return spec


def get_engine(
    name: str, gate: RequestGate | None = None, *, cache_dir: Path | None = None
) -> Engine:
    """The process-wide instance of engine ``name`` for this gate and cache folder.

    ``gate`` is what a rate-limited engine asks before each provider request (None: any
    instance this process already has, else one that never waits); ``cache_dir`` is
    where an engine keeps derived files (None: the default under
    ``NARRATE_STORAGE_DIR``). Engines that use neither have one instance per process.
    """
    spec = engine_spec(name)
    if spec.uses_gate and gate is None:
        for (other, _gate_id, folder), (engine, _held) in _instances.items():
            if other == name and folder == (cache_dir if spec.uses_cache else None):
                return engine
    key = (
        name,
        id(gate) if spec.uses_gate else 0,
        cache_dir if spec.uses_cache else None,
    )
    found = _instances.get(key)
    if found is not None:
        return found[0]
    setup = EngineSetup(gate=gate or OpenGate(), cache_dir=cache_dir)
    engine = spec.factory(setup)
    # the gate is kept with the instance, so its id is never reused while the key lives
    _instances[key] = (engine, gate if spec.uses_gate else None)
    return engine
