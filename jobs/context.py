"""The per-process worker context: settings, database sessions and storage, built once."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from jobs.db import make_engine, session_factory
from jobs.storage import Storage
from jobs.throttle import FileThrottle
from narrate.settings import Settings
from renderer.engine import Engine, RequestGate
from renderer.engines import get_engine


@dataclass(frozen=True)
class Context:
    settings: Settings
    factory: sessionmaker[Session]
    storage: Storage
    #: what rate-limited engines ask before each provider request
    gate: RequestGate

    def engine(self, name: str) -> Engine:
        """This process's engine ``name``, using this context's gate."""
        return get_engine(name, self.gate)


_context: Context | None = None


def configure(settings: Settings) -> Context:
    """Build this process's context from ``settings`` (replacing any earlier one)."""
    global _context
    if _context is not None:
        _context.factory.kw["bind"].dispose()
    _context = Context(
        settings=settings,
        factory=session_factory(make_engine(settings.database_url)),
        storage=Storage(settings.storage_dir),
        gate=FileThrottle(settings.storage_dir / "throttle"),
    )
    return _context


def context() -> Context:
    """This process's context, built from the environment on first use."""
    return _context if _context is not None else configure(Settings.from_env())
