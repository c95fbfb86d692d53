"""Databases for storage tests: SQLite (the default) and a throwaway PostgreSQL cluster on loopback (the
harness's own Postgres process: initdb, then the server on a free port, as `postgres` when we are root)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import make_url
from sqlalchemy.orm import Session, sessionmaker

from harness.postgres import Postgres
from service.storage.database import make_engine, make_session_factory, migrate


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    postgres = Postgres(tmp_path_factory.mktemp("postgres"))  # a missing PostgreSQL fails here: `make postgres`
    try:
        postgres.start()
        yield postgres.url
    finally:
        postgres.stop()
        postgres.discard()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'volta.sqlite'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def fresh_postgres_url(postgres_url: str) -> str:
    """A new, empty database on the session's PostgreSQL cluster."""
    url = make_url(postgres_url)
    name = f"fresh_{secrets.token_hex(4)}"
    with psycopg.connect(host=url.host, port=url.port, user=url.username, dbname=url.database,
                         autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")
    return url.set(database=name).render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new, empty database of each kind (not migrated)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'fresh.sqlite'}"
    return request.getfixturevalue("fresh_postgres_url")


@pytest.fixture
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    """Sessions on a migrated database of each kind."""
    migrate(database_url)
    engine = make_engine(database_url)
    yield make_session_factory(engine)
    engine.dispose()
