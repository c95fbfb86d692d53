"""Engine and sessions: SQLite with WAL by default, PostgreSQL (or anything SQLAlchemy speaks) by URL."""

from __future__ import annotations

import fcntl
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, create_engine, event, make_url, pool, text
from sqlalchemy.orm import Session, sessionmaker

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
POOL_SIZE, POOL_OVERFLOW = 10, 40


def make_engine(database_url: str) -> Engine:
    if database_url.startswith("sqlite"):
        engine = create_engine(database_url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # A server database's pool: an API instance under gevent serves as many requests at once as arrive (no
    # thread pool bounds them), and creating an order holds two connections (the per-address advisory lock's
    # and its session's): SQLAlchemy's default 5 + 10 ran dry at 16 orders at once, each waiting 30 s for a
    # second connection while holding its first. Connections are opened only when needed, so an idle process
    # still holds few.
    return create_engine(database_url, pool_pre_ping=True, pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW)


def _sqlite_pragmas(connection, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = connection.cursor()
    # WAL lets the API read while the worker writes; FULL sync so a committed transition survives a crash.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


# The advisory lock every process takes around Alembic's upgrade (a key of our own: the CRC-32 of a fixed name).
MIGRATION_LOCK_KEY = zlib.crc32(b"volta:migrate")


def migrate(database_url: str) -> None:
    """Bring the schema to the newest Alembic revision. Several processes starting at once (API instances and
    workers on a fresh PostgreSQL) take turns: each upgrades under one lock, and those after the first find the
    schema at head already. Without it two of them create the same tables at once and one fails to start."""
    from alembic import command

    with _migration_lock(database_url):
        command.upgrade(alembic_config(database_url), "head")


def alembic_config(database_url: str) -> Config:
    """Alembic's configuration for our migrations on `database_url`."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", database_url)
    return config


@contextmanager
def _migration_lock(database_url: str) -> Iterator[None]:
    """PostgreSQL: a session advisory lock, held on a connection of its own while Alembic upgrades on another
    (released when that connection closes, so a process that dies mid-upgrade frees it). SQLite: an exclusive
    lock on a file beside the database. Other databases, or SQLite in memory: no lock (one process only)."""
    url = make_url(database_url)
    if url.get_backend_name() == "postgresql":
        engine = create_engine(database_url, poolclass=pool.NullPool)
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
                connection.commit()  # a session lock: it outlives this transaction, not the connection
                try:
                    yield
                finally:
                    connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
                    connection.commit()
        finally:
            engine.dispose()
        return
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        lock_path = Path(url.database).with_name(Path(url.database).name + ".migrate-lock")
        with lock_path.open("a") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)  # released when the file closes, or the process dies
            yield
        return
    yield
