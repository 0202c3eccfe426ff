"""A local simulator of the CosyVoice service: the duplex WebSocket protocol, the voice
enrollment API and a JSON counter page, on one port (reference §10).

``narrate simulate cosyvoice --port P`` runs it in the foreground; tests use
:class:`SimulatorThread` (the pytest fixture in ``tests/renderer/cosyvoice``).
"""

from renderer.cosyvoice.simulator.config import FAULTS, TRANSIENT_FAULTS, SimulatorConfig
from renderer.cosyvoice.simulator.server import Simulator, SimulatorThread, serve_forever

__all__ = [
    "FAULTS",
    "TRANSIENT_FAULTS",
    "Simulator",
    "SimulatorConfig",
    "SimulatorThread",
    "serve_forever",
]
