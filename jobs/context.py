"""The per-process worker context: settings, database sessions, storage and the provider
throttle, built once at the process's edge.

``distributed`` says whether this process runs under a broker (``narrate worker``,
``narrate submit``): then follow-up work is sent as Celery messages and the throttle is
the Redis one shared by every machine. The embedded ``narrate render`` leaves the fan-in to
its parent process and throttles through a file shared by the processes of one machine.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from jobs.db import make_engine, session_factory
from jobs.storage import Storage
from jobs.throttle import DEFAULT_LIMITS, FileThrottle, limits_with_margin
from narrate.errors import ConfigurationError
from narrate.settings import Settings
from renderer.engine import Engine, RequestGate, engine_cache_dir
from renderer.engines import get_engine


@dataclass(frozen=True)
class Context:
    settings: Settings
    factory: sessionmaker[Session]
    storage: Storage
    #: what rate-limited engines ask before each provider request
    gate: RequestGate
    distributed: bool = False

    def engine(self, name: str) -> Engine:
        """This process's engine ``name``, using this context's gate, keeping derived
        files (Piper's patched models) under the storage folder."""
        return get_engine(name, self.gate, cache_dir=engine_cache_dir(self.storage.root))


_context: Context | None = None
#: the mode a lazily built context takes (a worker sets it before its pool starts)
_distributed_default = False


def use_distributed_mode() -> None:
    """Make contexts built from now on (in this process and its forked children)
    distributed: called by a worker before its pool starts."""
    global _distributed_default, _context
    _distributed_default = True
    if _context is not None:  # children build their own (no connections across fork)
        _context.factory.kw["bind"].dispose()
        _context = None


def configure(settings: Settings, *, distributed: bool = False) -> Context:
    """Build this process's context from ``settings`` (replacing any earlier one)."""
    global _context
    if _context is not None:
        _context.factory.kw["bind"].dispose()
    _context = Context(
        settings=settings,
        factory=session_factory(make_engine(settings.database_url)),
        storage=Storage(settings.storage_dir),
        gate=_gate(settings, distributed),
        distributed=distributed,
    )
    return _context


def _gate(settings: Settings, distributed: bool) -> RequestGate:
    margin_ms = settings.throttle_margin_ms
    limits = DEFAULT_LIMITS if margin_ms is None else limits_with_margin(margin_ms)
    if not distributed:
        return FileThrottle(settings.storage_dir / "throttle", limits)
    if not settings.throttle_url:
        raise ConfigurationError(
            "the distributed mode needs Redis for its broker and provider throttle",
            hint="set NARRATE_BROKER_URL, e.g. redis://127.0.0.1:6379/0",
        )
    from jobs.throttle_redis import RedisThrottle

    return RedisThrottle.from_url(settings.throttle_url, limits=limits)


def context() -> Context:
    """This process's context, built from the environment on first use."""
    if _context is not None:
        return _context
    return configure(Settings.from_env(), distributed=_distributed_default)
