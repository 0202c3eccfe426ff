"""The per-process worker context: settings, database sessions and storage, built once."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from jobs.db import make_engine, session_factory
from jobs.storage import Storage
from narrate.settings import Settings


@dataclass(frozen=True)
class Context:
    settings: Settings
    factory: sessionmaker[Session]
    storage: Storage


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
    )
    return _context


def context() -> Context:
    """This process's context, built from the environment on first use."""
    return _context if _context is not None else configure(Settings.from_env())
