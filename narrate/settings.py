"""Configuration, read from the environment once at the edge (the CLI or a worker's start).

* ``NARRATE_HOME``: where the embedded database and storage live
  (default ``$XDG_DATA_HOME/narrate``, else ``~/.local/share/narrate``).
* ``NARRATE_DATABASE_URL``: any SQLAlchemy URL (default ``sqlite:///$NARRATE_HOME/narrate.db``);
  PostgreSQL through ``postgresql+psycopg://user@host/db`` (psycopg 3 is installed).
* ``NARRATE_STORAGE_DIR``: segment and chapter audio (default ``$NARRATE_HOME/storage``);
  workers on several machines must share it.
* ``NARRATE_BROKER_URL``: the Celery broker (Redis) for distributed mode.
* ``NARRATE_THROTTLE_URL``: the Redis of the provider throttle (default: the broker's).
* ``NARRATE_THROTTLE_MARGIN_MS``: the floor of the margin added to a provider's rate
  window (default 25); each account's margin widens from it on a "throttled" answer and
  narrows back on a clean run (see :mod:`jobs.throttle`).
* ``NARRATE_WORKERS``: processes the embedded mode renders on (default: CPU cores).

Distributed-mode tuning (seconds unless named otherwise):

* ``NARRATE_LEASE_S`` (60): how long a worker holds a segment without renewing its lease
  (it renews every third of it); a dead worker's segment is re-queued after this.
* ``NARRATE_REQUEUE_AFTER_S`` (120): a queued segment or stitch not started by then is sent
  again (its message was lost, e.g. a broker restart without persistence).
* ``NARRATE_MAX_INFLIGHT`` (32): segments queued or running at once, all jobs together;
  ``NARRATE_JOB_INFLIGHT`` (same): at once for one job.
* ``NARRATE_FEED_INTERVAL_S`` (2) and ``NARRATE_REAP_INTERVAL_S`` (15): beat's periods.

Bulletins: ``NARRATE_FEED_TIMEOUT_S`` (10) a feed's connect/read timeout,
``NARRATE_FEED_DEADLINE_S`` (30) the longest a feed may take to arrive.

The web page (``narrate serve``): ``NARRATE_SERVE_TOKEN`` the token every request must
carry (required to serve on an address other than loopback; at least 16 characters;
never logged or shown), ``NARRATE_SERVE_MAX_UPLOAD_MB`` (50) the largest upload,
``NARRATE_SERVE_MAX_EXPORTS_MB`` (2048) how much the finished jobs' download folders may
hold (the least recently used are removed beyond it, and made again when asked for).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from narrate.errors import ConfigurationError


@dataclass(frozen=True)
class Settings:
    database_url: str
    storage_dir: Path
    broker_url: str | None
    workers: int
    throttle_url: str | None = None
    #: the adaptive margin's floor; None: the default of jobs.throttle (DEFAULT_MARGIN_MS)
    throttle_margin_ms: int | None = None
    lease_s: float = 60.0
    requeue_after_s: float = 120.0
    max_inflight: int = 32
    job_inflight: int = 32
    feed_interval_s: float = 2.0
    reap_interval_s: float = 15.0
    #: a bulletin's feed fetch: connect/read timeout, and the whole fetch's deadline
    feed_timeout_s: float = 10.0
    feed_deadline_s: float = 30.0
    #: ``narrate serve``: the token every request must carry (None: none; loopback only);
    #: a secret, so out of the repr
    serve_token: str | None = field(default=None, repr=False)
    serve_max_upload_mb: int = 50
    serve_max_exports_mb: int = 2048

    @property
    def lease_ms(self) -> int:
        return int(self.lease_s * 1000)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        home = _home(env)
        database_url = env.get("NARRATE_DATABASE_URL") or f"sqlite:///{home / 'narrate.db'}"
        storage_dir = Path(env.get("NARRATE_STORAGE_DIR") or home / "storage").expanduser()
        broker_url = env.get("NARRATE_BROKER_URL") or None
        max_inflight = int(_number(env, "NARRATE_MAX_INFLIGHT", 32, whole=True))
        return cls(
            database_url=database_url,
            storage_dir=storage_dir,
            broker_url=broker_url,
            workers=int(_number(env, "NARRATE_WORKERS", os.cpu_count() or 1, whole=True)),
            throttle_url=env.get("NARRATE_THROTTLE_URL") or broker_url,
            throttle_margin_ms=_optional_whole(env, "NARRATE_THROTTLE_MARGIN_MS"),
            lease_s=_number(env, "NARRATE_LEASE_S", 60),
            requeue_after_s=_number(env, "NARRATE_REQUEUE_AFTER_S", 120),
            max_inflight=max_inflight,
            job_inflight=int(_number(env, "NARRATE_JOB_INFLIGHT", max_inflight, whole=True)),
            feed_interval_s=_number(env, "NARRATE_FEED_INTERVAL_S", 2),
            reap_interval_s=_number(env, "NARRATE_REAP_INTERVAL_S", 15),
            feed_timeout_s=_number(env, "NARRATE_FEED_TIMEOUT_S", 10),
            feed_deadline_s=_number(env, "NARRATE_FEED_DEADLINE_S", 30),
            serve_token=_token(env, "NARRATE_SERVE_TOKEN"),
            serve_max_upload_mb=int(_number(env, "NARRATE_SERVE_MAX_UPLOAD_MB", 50, whole=True)),
            serve_max_exports_mb=int(
                _number(env, "NARRATE_SERVE_MAX_EXPORTS_MB", 2048, whole=True)
            ),
        )


def _number(env: Mapping[str, str], name: str, default: float, *, whole: bool = False) -> float:
    text = env.get(name)
    if not text:
        return default
    try:
        value = int(text) if whole else float(text)
    except ValueError:
        value = 0
    if value <= 0:
        kind = "whole number" if whole else "number"
        raise ConfigurationError(
            f"{name} must be a positive {kind}, not {text!r}",
            hint=f"unset it for the default ({default:g})",
        )
    return value


def _optional_whole(env: Mapping[str, str], name: str) -> int | None:
    """A positive whole number, or None (unset) for the default of the module that uses it."""
    text = env.get(name)
    if not text:
        return None
    if not text.isdigit() or int(text) <= 0:
        raise ConfigurationError(
            f"{name} must be a positive whole number, not {text!r}",
            hint="unset it for narrate's default",
        )
    return int(text)


def _token(env: Mapping[str, str], name: str) -> str | None:
    """A secret, or None when unset (``narrate serve`` checks its length)."""
    return (env.get(name) or "").strip() or None


def _home(env: Mapping[str, str]) -> Path:
    if env.get("NARRATE_HOME"):
        return Path(env["NARRATE_HOME"]).expanduser()
    xdg = env.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base / "narrate"
