"""Several processes starting at once on a fresh database each run the migrations (API instances and workers
of a scaled-out service do): they take turns under one lock, every one of them starts, the schema is whole."""

from __future__ import annotations

import itertools
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import create_engine, inspect, text

from service.storage.database import MIGRATIONS_DIR

PROCESSES = 6
# Each process imports the service, then waits for the same moment before migrating, so the upgrades would
# overlap. Alembic's upgrade is timed, and made 0.3 s slower, so that overlapping upgrades cannot go unseen.
MIGRATE_AT = """
import sys, time
from alembic import command
from service.storage.database import migrate
upgrade = command.upgrade
def timed_upgrade(*args, **kwargs):
    started = time.time()
    time.sleep(0.3)
    upgrade(*args, **kwargs)
    print(f"upgrade {started} {time.time()}")
command.upgrade = timed_upgrade
start_at = float(sys.argv[2])
time.sleep(max(0.0, start_at - time.time()))
migrate(sys.argv[1])
"""
REPO_ROOT = Path(__file__).resolve().parents[2]


def _head_revision() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(config).get_current_head() or ""


def _migrate_all_at_once(database_url: str) -> None:
    start_at = time.time() + 8  # every interpreter has imported the service by then, even on a loaded machine
    processes = [subprocess.Popen([sys.executable, "-c", MIGRATE_AT, database_url, str(start_at)], cwd=REPO_ROOT,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                 for _ in range(PROCESSES)]
    outputs = [process.communicate(timeout=120)[0].decode(errors="replace") for process in processes]
    failed = [(process.returncode, output[-2000:]) for process, output in zip(processes, outputs, strict=True)
              if process.returncode != 0]
    assert not failed, f"{len(failed)} of {PROCESSES} processes failed to migrate; first: {failed[0]}"
    assert time.time() > start_at, "the processes did not wait for the common start"
    spans = sorted(tuple(float(number) for number in line.split()[1:]) for output in outputs
                   for line in output.splitlines() if line.startswith("upgrade "))
    assert len(spans) == PROCESSES
    overlapping = [(earlier, later) for earlier, later in itertools.pairwise(spans) if later[0] < earlier[1]]
    assert not overlapping, f"upgrades ran at the same time: {overlapping}"


def _assert_schema_at_head(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            versions = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
            tables = set(inspect(connection).get_table_names())
    finally:
        engine.dispose()
    assert versions == [_head_revision()]
    assert {"orders", "order_events"} <= tables


def test_processes_starting_at_once_on_fresh_postgres_all_migrate(fresh_postgres_url: str) -> None:
    _migrate_all_at_once(fresh_postgres_url)
    _assert_schema_at_head(fresh_postgres_url)


def test_processes_starting_at_once_on_fresh_sqlite_all_migrate(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'volta.sqlite'}"
    _migrate_all_at_once(database_url)
    _assert_schema_at_head(database_url)
