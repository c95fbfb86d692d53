"""Small helpers shared by every harness process: named timeouts, waiting, ports."""

from __future__ import annotations

import errno
import os
import random
import shutil
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

# One knob for slow machines, as lnd's lntest and Bitcoin Core's timeout_factor do.
TIMEOUT_SCALE = float(os.environ.get("VOLTA_TIMEOUT_SCALE", "1"))


class Timeouts:
    """Named upper bounds, in seconds, for the operations the harness waits on."""

    PROCESS_START = 120 * TIMEOUT_SCALE
    PROCESS_STOP = 30 * TIMEOUT_SCALE
    RPC = 30 * TIMEOUT_SCALE
    CHAIN_SYNC = 60 * TIMEOUT_SCALE
    CHANNEL_OPEN = 90 * TIMEOUT_SCALE
    GRAPH_SYNC = 90 * TIMEOUT_SCALE
    PAYMENT = 60 * TIMEOUT_SCALE
    INVOICE_STATE = 30 * TIMEOUT_SCALE


T = TypeVar("T")


class WaitTimeout(TimeoutError):
    pass


def wait_until(
    predicate: Callable[[], T],
    *,
    timeout: float,
    what: str,
    interval: float = 0.1,
    transient: tuple[type[BaseException], ...] = (),
) -> T:
    """Poll `predicate` until it returns something truthy and return that.

    Exceptions listed in `transient` count as "not yet"; the last one is reported on timeout,
    so the message says what was awaited and why it never came.
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            result = predicate()
            if result:
                return result
        except transient as exc:
            last_error = exc
        if time.monotonic() >= deadline:
            detail = f"; last error: {last_error!r}" if last_error else ""
            raise WaitTimeout(f"timed out after {timeout:.0f}s waiting for {what}{detail}")
        time.sleep(interval)


_PORT_LOCK_DIR = Path(tempfile.gettempdir()) / "volta-ports"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno == errno.EPERM
    return True


def _claim_port_lock(port: int) -> bool:
    lock = _PORT_LOCK_DIR / f"{port}.lock"
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        try:
            owner = int(lock.read_text() or "0")
        except (OSError, ValueError):
            return False
        if owner and _pid_alive(owner):
            return False
        lock.unlink(missing_ok=True)
        return _claim_port_lock(port)
    with os.fdopen(fd, "w") as handle:
        handle.write(str(os.getpid()))
    return True


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


EPHEMERAL_PORTS_START = 32768


def free_port() -> int:
    """A loopback port that is free now and that no other live harness process has claimed.

    A bind test alone races with parallel runs; a lock file per port (owned by our pid) does not,
    as in lnd's lntest/port. Ports come from below Linux's ephemeral range (32768-60999): a process
    restarted on its port (a killed service) must not find it taken by some client's outgoing connection.
    """
    _PORT_LOCK_DIR.mkdir(parents=True, exist_ok=True)
    for _ in range(200):
        port = random.randint(20000, EPHEMERAL_PORTS_START - 1)
        if _port_is_free(port) and _claim_port_lock(port):
            return port
    raise RuntimeError("no free loopback port found in 200 tries")


def tail(path: Path, lines: int = 30) -> str:
    """The last lines of a log file, for error messages."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


def system_binary(name: str, make_target: str, *elsewhere: Path) -> Path:
    """A program from a Debian package: on PATH, else at one of `elsewhere` (the package's own place, e.g.
    /usr/sbin/nginx or /usr/lib/postgresql/15/bin/initdb, which a user's PATH may lack)."""
    found = shutil.which(name)
    if found:
        return Path(found)
    for path in elsewhere:
        if os.access(path, os.X_OK):
            return path
    raise FileNotFoundError(f"{name} not found on PATH nor in {', '.join(map(str, elsewhere)) or '-'}: "
                            f"run `make {make_target}` (it installs Debian's package with apt-get)")
