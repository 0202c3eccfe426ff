"""The Piper engine's declaration: imported by the registry without loading Piper."""

from __future__ import annotations

from renderer.engine import Engine, EngineSetup, EngineSpec
from ssml.dialects import PIPER

INSTALL_HINT = "install the Piper extra: pip install 'narrate[piper]'"


def _create(setup: EngineSetup) -> Engine:
    from renderer.piper.engine import PiperEngine

    return PiperEngine(cache_dir=setup.cache_dir)


#: the engine's declaration (see renderer.engines). A segment of 1000 characters is
#: about a minute of speech and 5-7 s of one core's time; one sentence is synthesized
#: at a time (long ones in clause-sized pieces), so memory does not grow with it.
SPEC = EngineSpec(
    name="piper",
    display_name="Piper",
    factory=_create,
    dialect=PIPER,
    max_segment_chars=1000,
    pitch=False,
    uses_cache=True,
    install_hint=INSTALL_HINT,
    # measured on chapters I-III of the novel with the bundled voice (39,989 characters,
    # 2195 s of audio with narrate's pauses), one inference thread: 0.063-0.070
    chars_per_audio_s=18.2,
    cpu_s_per_audio_s=0.067,
)
