"""Database engine, sessions and schema migrations (Alembic)."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

import migrations
from narrate.errors import ConfigurationError

MIGRATIONS_DIR = Path(migrations.__file__).resolve().parent

#: what every database function of jobs takes: sessions on one database
Factory = sessionmaker[Session]


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL mode and a busy timeout for several processes."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigurationError(
            f"NARRATE_DATABASE_URL is not a database URL: {url!r}",
            hint="use e.g. sqlite:////path/narrate.db or postgresql+psycopg://user@host/db",
        ) from exc
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 60})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=60000")
    cursor.close()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session that commits when the block ends normally and rolls back otherwise."""
    with factory() as session, session.begin():
        yield session


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the schema at ``url`` up to ``revision`` (``narrate db upgrade``).

    For SQLite a lock file beside the database serialises concurrent upgrades (two
    ``narrate render`` started at once on a fresh home).
    """
    make_engine(url).dispose()  # validates the URL and creates the SQLite folder
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        lock_path = Path(str(parsed.database)).expanduser().with_suffix(".migrate.lock")
        with open(lock_path, "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            command.upgrade(alembic_config(url), revision)
        return
    command.upgrade(alembic_config(url), revision)


def ensure_schema(url: str) -> None:
    """Make sure the schema at ``url`` is current.

    The embedded SQLite database is created or migrated on the spot. A shared server
    database is only checked: migrating it is an explicit step (``narrate db upgrade``,
    a one-shot migration step in a deployment), never a side effect of a command.
    """
    if make_url(url).get_backend_name() == "sqlite":
        upgrade(url)
        return
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
    except OperationalError as exc:
        raise ConfigurationError(
            f"cannot connect to the database at {make_url(url).render_as_string()}: {exc.orig}",
            hint="check NARRATE_DATABASE_URL and that the server is running",
        ) from exc
    finally:
        engine.dispose()
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    if current != head:
        raise ConfigurationError(
            f"the database schema is at revision {current or 'none'}, narrate needs {head}",
            hint="run `narrate db upgrade`",
        )
