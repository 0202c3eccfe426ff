"""Fixtures: a running CosyVoice simulator on a free 127.0.0.1 port, and helpers."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from renderer.cosyvoice.config import ServiceConfig, from_env
from renderer.cosyvoice.simulator import SimulatorConfig, SimulatorThread

StartSimulator = Callable[..., SimulatorThread]


@pytest.fixture
def start_simulator() -> Iterator[StartSimulator]:
    """Start simulators with the given :class:`SimulatorConfig` fields; stopped afterwards."""
    started: list[SimulatorThread] = []

    def start(**fields: Any) -> SimulatorThread:
        simulator = SimulatorThread(SimulatorConfig(**fields)).start()
        started.append(simulator)
        return simulator

    yield start
    for simulator in started:
        simulator.stop()


@pytest.fixture
def cosyvoice_simulator(start_simulator: StartSimulator) -> SimulatorThread:
    """A simulator with the service's defaults (3 tasks/s, any key)."""
    return start_simulator()


def _service_config(simulator: SimulatorThread, **env: str) -> ServiceConfig:
    return from_env(
        {"DASHSCOPE_API_KEY": "test-key", "NARRATE_COSYVOICE_URL": simulator.url, **env}
    )


def _http_stats(simulator: SimulatorThread) -> dict[str, Any]:
    with urllib.request.urlopen(f"{simulator.http_base}/stats", timeout=5) as response:
        data: dict[str, Any] = json.loads(response.read())
    return data


@pytest.fixture
def service_config() -> Callable[..., ServiceConfig]:
    """``service_config(simulator, **env)``: engine configuration pointing at a simulator."""
    return _service_config


@pytest.fixture
def http_stats() -> Callable[[SimulatorThread], dict[str, Any]]:
    """``http_stats(simulator)``: the counters, read as a user does (GET /stats)."""
    return _http_stats
