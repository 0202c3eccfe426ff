"""Alibaba Model Studio CosyVoice: engine, protocol client, voices, costs and a simulator.

See :mod:`renderer.cosyvoice.engine` for the engine and the map of the package.
"""

from renderer.cosyvoice.engine import CosyVoiceEngine

__all__ = ["CosyVoiceEngine"]
