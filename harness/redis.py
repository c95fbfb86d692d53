"""Redis as a harness process: Debian's redis-server (`make redis`) with a config file of its own in the run
directory, on 127.0.0.1 at a free port, keeping nothing on disk. The scaled-out service processes share their
rate-limit counts (and the history sign-in's used challenges) in it, and later their order events."""

from __future__ import annotations

from pathlib import Path

import redis

from harness.process import ManagedProcess
from harness.util import Timeouts, free_port, system_binary


class Redis(ManagedProcess):
    """redis-server in the foreground, configured by `workdir/redis.conf` (written at each start)."""

    CLEAN_STOP_EXIT_CODES = frozenset({0})  # redis-server catches SIGTERM, shuts down and exits 0 (measured, 7.0)

    def __init__(self, workdir: Path, name: str = "redis") -> None:
        super().__init__(name, workdir)
        self.binary = system_binary("redis-server", "redis", Path("/usr/bin/redis-server"))
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def config_path(self) -> Path:
        return self.workdir / "redis.conf"

    def config(self) -> str:
        return "\n".join([
            "bind 127.0.0.1",
            f"port {self.port}",
            "protected-mode yes",
            "daemonize no",
            "supervised no",
            'logfile ""',  # to stdout: the process log
            "loglevel notice",
            f"dir {self.workdir}",
            # Counters and events live as long as the network: no snapshots, no append-only file.
            'save ""',
            "appendonly no",
            "",
        ])

    def command(self) -> list[str]:
        return [str(self.binary), str(self.config_path)]

    def spawn(self) -> None:
        self.config_path.write_text(self.config())
        super().spawn()

    def wait_ready(self, *, timeout: float = Timeouts.PROCESS_START) -> None:
        self.wait_answering(self._ping, f"PING on 127.0.0.1:{self.port}",
                            transient=(redis.ConnectionError, redis.BusyLoadingError, redis.TimeoutError),
                            timeout=timeout)

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5, socket_connect_timeout=5)

    def _ping(self) -> bool:
        with self.client() as client:
            return bool(client.ping())

    def state(self) -> dict[str, str | int | None]:
        return {"url": self.url, "pid": self.pid}
