"""Databases for storage tests: SQLite (the default) and a throwaway PostgreSQL cluster on loopback (the
harness's own Postgres process: initdb, then the server on a free port, as `postgres` when we are root)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.postgres import Postgres


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    # Not under pytest's 0700 tmp_path: the server's account must be able to reach its directory.
    workdir = Path(tempfile.mkdtemp(prefix="volta-pg-"))
    postgres = Postgres(workdir / "postgres")  # a missing PostgreSQL fails here, naming `make postgres`
    try:
        postgres.start()
        yield postgres.url
    finally:
        postgres.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'volta.sqlite'}"
    return request.getfixturevalue("postgres_url")
