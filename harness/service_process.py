"""The VOLTA service as a process of the network, so tests can kill it mid-order and restart it."""

from __future__ import annotations

import os
import secrets
import signal
import sys
from pathlib import Path

import httpx

from harness.process import ManagedProcess
from harness.util import Timeouts, free_port

REPO_ROOT = Path(__file__).resolve().parent.parent


class VoltaService(ManagedProcess):
    # `python -m service` (Flask's development server) keeps Python's default SIGTERM action and dies by the
    # signal (measured); the orders it was working on are the database's and the recovery's business.
    CLEAN_STOP_EXIT_CODES = frozenset({-signal.SIGTERM})

    def __init__(self, workdir: Path, state_file: Path, name: str = "service") -> None:
        super().__init__(name, workdir)
        self.state_file = state_file
        self.port = free_port()
        self.extra_env: dict[str, str] = {}
        # Payment notices from "a hosted node" are signed with this; tests sign with it too.
        self.inbound_webhook_secret = secrets.token_hex(16)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.workdir / 'volta.sqlite'}"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "service", "--host", "127.0.0.1", "--port", str(self.port)]

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
            "VOLTA_MAX_VUSD_PER_ADDRESS_PER_DAY": "100000000",
            # The regtest oracle is set by hand, not by a publisher every few seconds: its price is as old as
            # the last scenario step that moved it. A test of staleness lowers this again.
            "VOLTA_MAX_PRICE_AGE_S": "86400",
            "VOLTA_INBOUND_WEBHOOK_SECRET": self.inbound_webhook_secret,
            **self.extra_env,
        }

    def wait_ready(self, *, timeout: float = Timeouts.PROCESS_START) -> None:
        self.wait_answering(lambda: httpx.get(f"{self.url}/api/v1/health", timeout=5).status_code == 200,
                            f"{self.url}/api/v1/health", transient=(httpx.TransportError,), timeout=timeout)

    def restart(self, extra_env: dict[str, str] | None = None) -> None:
        self.stop()
        self.extra_env = extra_env or {}
        self.start()
