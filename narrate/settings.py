"""Configuration, read from the environment once at the edge (the CLI or a worker's start).

* ``NARRATE_HOME``: where the embedded database and storage live
  (default ``$XDG_DATA_HOME/narrate``, else ``~/.local/share/narrate``).
* ``NARRATE_DATABASE_URL``: any SQLAlchemy URL (default ``sqlite:///$NARRATE_HOME/narrate.db``);
  PostgreSQL through ``postgresql+psycopg://user@host/db`` (psycopg 3 is installed).
* ``NARRATE_STORAGE_DIR``: segment and chapter audio (default ``$NARRATE_HOME/storage``);
  workers on several machines must share it.
* ``NARRATE_BROKER_URL``: the Celery broker (Redis) for distributed mode.
* ``NARRATE_WORKERS``: processes the embedded mode renders on (default: CPU cores).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from narrate.errors import ConfigurationError


@dataclass(frozen=True)
class Settings:
    database_url: str
    storage_dir: Path
    broker_url: str | None
    workers: int

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        home = _home(env)
        database_url = env.get("NARRATE_DATABASE_URL") or f"sqlite:///{home / 'narrate.db'}"
        storage_dir = Path(env.get("NARRATE_STORAGE_DIR") or home / "storage").expanduser()
        workers_text = env.get("NARRATE_WORKERS") or str(os.cpu_count() or 1)
        try:
            workers = int(workers_text)
        except ValueError:
            workers = 0
        if workers < 1:
            raise ConfigurationError(
                f"NARRATE_WORKERS must be a positive whole number, not {workers_text!r}",
                hint="unset it to use one process per CPU core",
            )
        return cls(
            database_url=database_url,
            storage_dir=storage_dir,
            broker_url=env.get("NARRATE_BROKER_URL") or None,
            workers=workers,
        )


def _home(env: Mapping[str, str]) -> Path:
    if env.get("NARRATE_HOME"):
        return Path(env["NARRATE_HOME"]).expanduser()
    xdg = env.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base / "narrate"
