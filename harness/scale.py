"""How many processes serve VOLTA in the regtest network, and on which database.

The default is today's: one `python -m service` (API and worker together) on a SQLite file. Scaled out
(`api_instances > 1` or `workers > 0`): that many API instances (`python -m service`, VOLTA_RUN_WORKER=false)
behind nginx and that many `python -m service.worker` processes, all on one PostgreSQL database and one Redis.
More than one process always means PostgreSQL: SQLite is the system of record of a single process only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from harness.postgres import postgres_binary
from harness.util import system_binary

Database = Literal["sqlite", "postgres"]
DATABASES: tuple[Database, ...] = get_args(Database)


@dataclass(frozen=True)
class ServiceScale:
    api_instances: int = 1
    workers: int = 0
    database: Database = "sqlite"

    def __post_init__(self) -> None:
        if self.database not in DATABASES:
            raise ValueError(f"database must be one of {', '.join(DATABASES)}, not {self.database!r}")
        if self.api_instances < 1:
            raise ValueError(f"at least one API instance is needed, not {self.api_instances}")
        if self.workers < 0:
            raise ValueError(f"workers cannot be negative ({self.workers})")
        if self.scaled and self.database != "postgres":
            raise ValueError(f"{self.describe()} share one database: use PostgreSQL (database 'postgres', "
                             "`--db postgres`); SQLite serves a single process")
        if self.scaled and self.workers == 0:
            raise ValueError(f"{self.api_instances} API instances run no worker, so no order would settle: "
                             "add workers (at least 1)")

    @property
    def scaled(self) -> bool:
        """Several processes (API instances apart from workers, behind nginx) rather than one that does both."""
        return self.api_instances > 1 or self.workers > 0

    @property
    def api_names(self) -> list[str]:
        """api, api2, api3, … (as payer, payer2, … in the topology)."""
        return [_numbered("api", index) for index in range(self.api_instances)]

    @property
    def worker_names(self) -> list[str]:
        return [_numbered("worker", index) for index in range(self.workers)]

    def describe(self) -> str:
        if not self.scaled:
            return f"one service process on {self.database}"
        return f"{self.api_instances} API instance(s) behind nginx and {self.workers} worker(s)"

    def programs(self) -> dict[str, Path]:
        """The system programs this scale needs, located now: a missing one fails before anything starts,
        naming the `make` target that installs it."""
        programs: dict[str, Path] = {}
        if self.database == "postgres":
            programs |= {"initdb": postgres_binary("initdb"), "postgres": postgres_binary("postgres"),
                         "redis-server": system_binary("redis-server", "redis", Path("/usr/bin/redis-server"))}
        if self.scaled:
            programs["nginx"] = system_binary("nginx", "nginx", Path("/usr/sbin/nginx"))
        return programs

    def state(self) -> dict[str, object]:
        return {"api_instances": self.api_instances, "workers": self.workers, "database": self.database}


def _numbered(stem: str, index: int) -> str:
    return stem if index == 0 else f"{stem}{index + 1}"
