"""The VOLTA service as processes of the network, so tests can kill them mid-order and restart them:
`python -m service` (API and worker in one process), an API instance alone (gunicorn with one gevent worker,
VOLTA_RUN_WORKER=false, as in production) and `python -m service.worker` (the worker alone)."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import sys
from pathlib import Path

import httpx

from harness.process import ManagedProcess
from harness.util import Timeouts, free_port

REPO_ROOT = Path(__file__).resolve().parent.parent


class ServiceProcess(ManagedProcess):
    """What every service process shares: the network's state file, a database, the regtest settings."""

    def __init__(self, name: str, workdir: Path, state_file: Path, *, database_url: str | None = None,
                 shared_env: dict[str, str] | None = None, inbound_webhook_secret: str | None = None) -> None:
        """`database_url`: default, a SQLite file of this process's own. `shared_env`: VOLTA_* settings every
        process of a scaled-out service gets alike (database, redis, preimage key); kept across restarts."""
        super().__init__(name, workdir)
        self.state_file = state_file
        self.database_url = database_url or f"sqlite:///{self.workdir / 'volta.sqlite'}"
        self.shared_env = dict(shared_env or {})
        self.extra_env: dict[str, str] = {}  # this run's own settings, replaced by `restart(extra_env)`
        # Payment notices from "a hosted node" are signed with this; tests sign with it too.
        self.inbound_webhook_secret = inbound_webhook_secret or secrets.token_hex(16)

    def environment(self) -> dict[str, str]:
        return {
            **os.environ,
            "PYTHONPATH": str(REPO_ROOT),
            "VOLTA_REGTEST_STATE": str(self.state_file),
            "VOLTA_DATABASE_URL": self.database_url,
            # Tests and benchmarks send hundreds of requests from one address; a test of a limit lowers it again.
            "VOLTA_RATE_LIMIT_ORDERS_PER_IP": "100000/minute",
            "VOLTA_RATE_LIMIT_ORDERS_PER_ADDRESS": "100000/minute",
            "VOLTA_RATE_LIMIT_READS_PER_IP": "100000/minute",
            "VOLTA_RATE_LIMIT_HISTORY_PER_IP": "100000/minute",
            "VOLTA_MAX_EVENT_STREAMS_PER_IP": "100000",  # benchmarks follow hundreds of orders at once
            "VOLTA_MAX_VUSD_PER_ADDRESS_PER_DAY": "100000000",
            # The regtest oracle is set by hand, not by a publisher every few seconds: its price is as old as
            # the last scenario step that moved it. A test of staleness lowers this again.
            "VOLTA_MAX_PRICE_AGE_S": "86400",
            "VOLTA_INBOUND_WEBHOOK_SECRET": self.inbound_webhook_secret,
            **self.shared_env,
            **self.extra_env,
        }

    def restart(self, extra_env: dict[str, str] | None = None) -> None:
        self.stop()
        self.extra_env = extra_env or {}
        self.start()


# An API instance's one gevent worker serves this many connections at once (gunicorn's default is 1,000): each
# open checkout page holds one for its event stream, as a greenlet rather than a thread.
API_WORKER_CONNECTIONS = 10_000
# On SIGTERM gunicorn lets requests finish this long: event streams never do, so they are cut after it.
API_GRACEFUL_TIMEOUT_S = 2


class VoltaService(ServiceProcess):
    """The API on 127.0.0.1: `python -m service` (Flask's server, with the worker), or with `run_worker=False`
    an API instance of a scaled-out service behind nginx, served as in production by gunicorn with one gevent
    worker (`-k gevent`), so thousands of open event streams cost a greenlet each, not a thread."""

    # `python -m service` (Flask's development server) keeps Python's default SIGTERM action and dies by the
    # signal (measured); the orders it was working on are the database's and the recovery's business.
    CLEAN_STOP_EXIT_CODES = frozenset({-signal.SIGTERM})

    def __init__(self, workdir: Path, state_file: Path, name: str = "service", *, run_worker: bool = True,
                 database_url: str | None = None, shared_env: dict[str, str] | None = None,
                 inbound_webhook_secret: str | None = None) -> None:
        super().__init__(name, workdir, state_file, database_url=database_url, shared_env=shared_env,
                         inbound_webhook_secret=inbound_webhook_secret)
        self.run_worker = run_worker
        self.port = free_port()
        if not run_worker:  # gunicorn stops gracefully on SIGTERM and exits 0 (measured, 27.0)
            self.CLEAN_STOP_EXIT_CODES = frozenset({0})

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        if self.run_worker:
            return [sys.executable, "-m", "service", "--host", "127.0.0.1", "--port", str(self.port)]
        return [sys.executable, "-m", "gunicorn", "--worker-class", "gevent", "--workers", "1",
                "--worker-connections", str(API_WORKER_CONNECTIONS), "--bind", f"127.0.0.1:{self.port}",
                "--graceful-timeout", str(API_GRACEFUL_TIMEOUT_S), "--error-logfile", "-",
                *_no_control_socket(), "service.wsgi:app"]

    def kill(self) -> None:
        """SIGKILL to gunicorn's master and its worker alike (their own process group): a worker whose master
        was killed would otherwise serve on for a while, holding the port a restart needs."""
        if self.run_worker or self._popen is None or self._popen.poll() is not None:
            super().kill()
            return
        self._killed = True
        with contextlib.suppress(ProcessLookupError):  # already gone
            os.killpg(self._popen.pid, signal.SIGKILL)
        self._popen.wait(timeout=Timeouts.PROCESS_STOP)

    def environment(self) -> dict[str, str]:
        worker = {} if self.run_worker else {"VOLTA_RUN_WORKER": "false"}
        return {**super().environment(), **worker}

    def wait_ready(self, *, timeout: float = Timeouts.PROCESS_START) -> None:
        self.wait_answering(lambda: httpx.get(f"{self.url}/api/v1/health", timeout=5).status_code == 200,
                            f"{self.url}/api/v1/health", transient=(httpx.TransportError,), timeout=timeout)


def _no_control_socket() -> list[str]:
    """gunicorn 25+ opens a control socket at one path per account (~/.gunicorn/gunicorn.ctl): API instances
    side by side would take it from each other. The harness does not use it."""
    from gunicorn.config import KNOWN_SETTINGS

    supported = any(setting.name == "control_socket_disable" for setting in KNOWN_SETTINGS)
    return ["--no-control-socket"] if supported else []


# What `python -m service.worker` logs once its threads run (service/worker/__main__.py).
WORKER_RUNNING = "worker running"


class VoltaWorker(ServiceProcess):
    """`python -m service.worker`: settles the orders API instances take, on the same database. It serves no
    HTTP: it is ready when it says so in its log."""

    # Like `python -m service`, it keeps Python's default SIGTERM action and dies by the signal (measured).
    CLEAN_STOP_EXIT_CODES = frozenset({-signal.SIGTERM})

    def __init__(self, workdir: Path, state_file: Path, name: str = "worker", *, database_url: str | None = None,
                 shared_env: dict[str, str] | None = None, inbound_webhook_secret: str | None = None) -> None:
        super().__init__(name, workdir, state_file, database_url=database_url, shared_env=shared_env,
                         inbound_webhook_secret=inbound_webhook_secret)
        self._log_size_at_spawn = 0  # readiness is read from the log this run wrote, not an earlier run's

    def command(self) -> list[str]:
        return [sys.executable, "-m", "service.worker"]

    def wait_ready(self, *, timeout: float = Timeouts.PROCESS_START) -> None:
        started_at = self._log_size_at_spawn
        self.wait_answering(lambda: WORKER_RUNNING in self._log_since(started_at), f"{WORKER_RUNNING!r} in its log",
                            timeout=timeout)

    def spawn(self) -> None:
        self._log_size_at_spawn = self.log_path.stat().st_size if self.log_path.exists() else 0
        super().spawn()

    def _log_since(self, offset: int) -> str:
        with self.log_path.open("rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")
