"""Shared fixtures: isolated settings per test, the real PostgreSQL, the shared corpus."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from narrate.settings import Settings

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus"
SAMPLE = REPO / "samples" / "lighthouse.md"
IN_CI = os.environ.get("CI") == "true"
POSTGRES_ADMIN_URL = os.environ.get(
    "NARRATE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def need(condition: bool, reason: str) -> None:
    """Skip when a service or file is missing on a developer machine; fail in CI."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: required)")
    pytest.skip(reason)


@pytest.fixture
def corpus() -> Path:
    need(CORPUS.is_dir(), f"the shared corpus is not at {CORPUS}")
    return CORPUS


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    home = tmp_path / "home"
    return Settings(
        database_url=f"sqlite:///{home / 'narrate.db'}",
        storage_dir=home / "storage",
        broker_url=None,
        workers=2,
    )


@pytest.fixture
def env(settings: Settings, tmp_path: Path) -> dict[str, str]:
    """Environment for running the ``narrate`` command against ``settings``."""
    return {
        **os.environ,
        "NARRATE_HOME": str(tmp_path / "home"),
        "NARRATE_DATABASE_URL": settings.database_url,
        "NARRATE_STORAGE_DIR": str(settings.storage_dir),
    }


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import OperationalError

    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"narrate_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        admin.dispose()
        need(False, f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL}: {exc.orig}")
    url = make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, settings: Settings) -> str:
    """Each test using this runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return settings.database_url
    return str(request.getfixturevalue("postgres_url"))
