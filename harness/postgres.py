"""PostgreSQL as a harness process: a throwaway cluster in its own directory of the run, on 127.0.0.1 at a free
port, with one database for the service. The system of record whenever more than one service process runs.

The server is Debian's `postgresql` package (`make postgres`), started as `postgres` itself (not through
pg_ctl), so the harness holds its pid, its log and its exit code like any other process. PostgreSQL refuses to
run as root: when we are root it runs as the `postgres` account, and its cluster (data and socket) lives in a
directory of that account's own under /tmp, linked from the run directory as `cluster` and removed when the
network stops (`discard`; the server's log stays in the run directory). The run directory may sit where no
other account can enter and we cannot reliably open it up: pytest's /tmp/pytest-of-root is put back to mode
0700 by every pytest session that starts, under a server already running there too.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import psycopg
from psycopg import sql

from harness.process import ManagedProcess, ProcessError
from harness.util import Timeouts, free_port, system_binary, tail

# The account the server runs as when we are root: Debian's package creates it.
SERVER_ACCOUNT = "postgres"
# The role the service connects as (trust on loopback, no password: nothing secret in the URL).
ROLE = "volta"


def postgres_binary(name: str) -> Path:
    """`initdb`, `postgres`, … from PATH, else from the newest /usr/lib/postgresql/<version>/bin (Debian keeps
    the server's programs off PATH)."""
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda path: _version(path.parent.name),
                      reverse=True)
    return system_binary(name, "postgres", *(bin_dir / name for bin_dir in versions))


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".") if part.isdigit())


class Postgres(ManagedProcess):
    """A PostgreSQL cluster in `workdir/cluster` (data/ and the unix socket's socket/), TCP on 127.0.0.1 only."""

    # SIGTERM is PostgreSQL's "smart" shutdown, which waits for every client to disconnect (a service's pool
    # never does); SIGINT is the "fast" one: clients disconnected, a checkpoint written, exit 0 (measured, 15).
    STOP_SIGNAL = signal.SIGINT
    CLEAN_STOP_EXIT_CODES = frozenset({0})

    def __init__(self, workdir: Path, name: str = "postgres", database: str = "volta") -> None:
        super().__init__(name, workdir)
        self.database = database
        self.port = free_port()
        self.binary = postgres_binary("postgres")
        self._account = pwd.getpwnam(SERVER_ACCOUNT) if os.geteuid() == 0 else None
        self.cluster_dir = self._make_cluster_dir()

    def _make_cluster_dir(self) -> Path:
        link = self.workdir / "cluster"
        if self._account is None:
            link.mkdir(exist_ok=True)
            return link
        if link.is_symlink():  # the same run directory again
            return link.resolve()
        cluster = Path(tempfile.mkdtemp(prefix=f"volta-{self.name}-"))
        os.chown(cluster, self._account.pw_uid, self._account.pw_gid)
        link.symlink_to(cluster, target_is_directory=True)
        return cluster

    @property
    def data_dir(self) -> Path:
        return self.cluster_dir / "data"

    @property
    def socket_dir(self) -> Path:
        return self.cluster_dir / "socket"

    @property
    def url(self) -> str:
        """SQLAlchemy's URL for the service's database (no password: trust on loopback)."""
        return f"postgresql+psycopg://{ROLE}@127.0.0.1:{self.port}/{self.database}"

    def os_user(self) -> pwd.struct_passwd | None:
        return self._account

    def command(self) -> list[str]:
        return [
            str(self.binary), "-D", str(self.data_dir), "-p", str(self.port), "-k", str(self.socket_dir),
            "-c", "listen_addresses=127.0.0.1",
            # A throwaway cluster: a crash of the machine may lose it; a crash of any process may not (the WAL
            # is still written before each commit returns).
            "-c", "fsync=off", "-c", "full_page_writes=off",
            # Every API instance and worker keeps a pool (SQLAlchemy's 5 + 10 overflow), tests add their own.
            "-c", "max_connections=300",
        ]

    def spawn(self) -> None:
        """Create the cluster on the first start (initdb), then launch the server on it."""
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        super().spawn()

    def _initdb(self) -> None:
        self.socket_dir.mkdir(exist_ok=True)
        if self._account is not None:
            os.chown(self.socket_dir, self._account.pw_uid, self._account.pw_gid)
        log_path = self.workdir / "initdb.log"
        command = [str(postgres_binary("initdb")), "-D", str(self.data_dir), "-U", ROLE, "--auth=trust",
                   "--no-sync", "--encoding=UTF8", "--locale=C"]
        account = self._account
        with log_path.open("wb") as log:
            code = subprocess.run(command, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, check=False, timeout=Timeouts.PROCESS_START,
                                  user=None if account is None else account.pw_uid,
                                  group=None if account is None else account.pw_gid,
                                  extra_groups=None if account is None else []).returncode
        if code != 0:
            raise ProcessError(f"[{self.name}] initdb exited with code {code}; {log_path}:\n{tail(log_path, 20)}")

    def wait_ready(self, *, timeout: float = Timeouts.PROCESS_START) -> None:
        """Wait until the server accepts connections, then create the service's database (once)."""
        self.wait_answering(self._create_database, f"connections on 127.0.0.1:{self.port}",
                            transient=(psycopg.OperationalError,), timeout=timeout)

    def connect(self, database: str = "postgres") -> psycopg.Connection:
        return psycopg.connect(host="127.0.0.1", port=self.port, user=ROLE, dbname=database, connect_timeout=5,
                               autocommit=True)

    def _create_database(self) -> bool:
        with self.connect() as connection:
            exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.database,)).fetchone()
            if not exists:
                connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.database)))
        return True

    def discard(self) -> None:
        """Remove the cluster when it lives outside the run directory; the server must have stopped."""
        if self.cluster_dir.parent != self.workdir and not self.is_running():
            shutil.rmtree(self.cluster_dir, ignore_errors=True)

    def state(self) -> dict[str, str | int | None]:
        return {"url": self.url, "port": self.port, "data_dir": str(self.data_dir), "pid": self.pid}
