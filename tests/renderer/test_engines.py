"""The engine registry: one declaration per engine, instances per process and gate, and no
switches on engine names anywhere else."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from narrate.errors import UsageError
from renderer import engines
from renderer.engine import OpenGate
from renderer.engines import ENGINES, engine_spec, get_engine
from ssml.dialects import DIALECTS

REPO = Path(__file__).resolve().parents[2]
#: engine modules and the registry: the only places that may name engines in switches
ENGINE_MODULES = ("renderer/engines.py", "renderer/espeak.py", "renderer/stub.py")
ENGINE_PACKAGES = ("renderer/cosyvoice/", "renderer/piper/")
SWITCH_RE = re.compile(r'[!=]= "(espeak|cosyvoice|stub|piper)"')


def test_every_engine_declares_itself() -> None:
    assert ENGINES[0] == "espeak" and set(ENGINES) >= {"espeak", "stub", "cosyvoice", "piper"}
    for name in ENGINES:
        spec = engine_spec(name)
        assert spec.name == name
        assert DIALECTS[spec.dialect.name] is spec.dialect
        assert spec.max_segment_chars >= 100 and spec.display_name


def test_capabilities_are_declared_not_switched_on() -> None:
    assert engine_spec("cosyvoice").billing and engine_spec("cosyvoice").uses_gate
    assert not engine_spec("espeak").billing and not engine_spec("espeak").uses_gate
    assert engine_spec("espeak").pitch and not engine_spec("piper").pitch
    assert engine_spec("stub").dialect is engine_spec("espeak").dialect


def test_unknown_engine_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown engine 'nope'"):
        get_engine("nope")


def test_one_instance_per_process_for_ungated_engines() -> None:
    assert get_engine("stub") is get_engine("stub") is get_engine("stub", OpenGate())


def test_a_gated_engine_is_never_handed_out_with_another_gate() -> None:
    first, second = OpenGate(), OpenGate()
    a = get_engine("cosyvoice", first)
    assert get_engine("cosyvoice", first) is a
    b = get_engine("cosyvoice", second)
    assert b is not a
    assert a.client.gate is first and b.client.gate is second  # type: ignore[attr-defined]
    made = [e for (n, _g, _f), (e, _h) in engines._instances.items() if n == "cosyvoice"]
    assert get_engine("cosyvoice") in made  # no gate asked for: any instance made will do


def test_no_engine_name_switches_outside_engine_modules() -> None:
    found = []
    for folder in ("narrate", "jobs", "renderer", "ssml"):
        for path in sorted((REPO / folder).rglob("*.py")):
            relative = path.relative_to(REPO).as_posix()
            if relative in ENGINE_MODULES or relative.startswith(ENGINE_PACKAGES):
                continue
            for number, line in enumerate(path.read_text().splitlines(), start=1):
                if SWITCH_RE.search(line):
                    found.append(f"{relative}:{number}: {line.strip()}")
    assert found == []
