"""Databases for storage tests: SQLite (the default) and a throwaway PostgreSQL cluster on loopback."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.util import free_port


def _as_postgres_user(*command: str) -> list[str]:
    # initdb refuses to run as root; CI runs as root, a developer usually does not.
    return ["runuser", "-u", "nobody", "--", *command] if os.geteuid() == 0 else list(command)


def postgres_binary(name: str) -> str:
    """`initdb`/`pg_ctl` from PATH, else where Debian's `postgresql` package puts them (not on PATH)."""
    found = shutil.which(name) or next((str(path) for path in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"),
                                                                    reverse=True)), None)
    if found is None:  # `make test` installs the package: never skip for want of it
        pytest.fail(f"PostgreSQL's {name} not found: run `make postgres` (apt-get install postgresql)")
    return found


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    initdb, pg_ctl = postgres_binary("initdb"), postgres_binary("pg_ctl")
    data = Path(tempfile.mkdtemp(prefix="volta-pg-"))
    data.chmod(0o777)
    port = free_port()
    subprocess.run(_as_postgres_user(initdb, "-D", str(data / "db"), "-U", "volta", "--auth=trust"),
                   check=True, capture_output=True)
    options = f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(_as_postgres_user(pg_ctl, "-D", str(data / "db"), "-o", options, "-l", str(data / "log"),
                                     "-w", "start"), check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg://volta@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(_as_postgres_user(pg_ctl, "-D", str(data / "db"), "-m", "immediate", "stop"),
                       capture_output=True)
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'volta.sqlite'}"
    return request.getfixturevalue("postgres_url")
