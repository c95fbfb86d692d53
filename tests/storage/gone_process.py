"""Worker ids of processes of this host that are gone, and of ones still running, for the takeover tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys


def ended_process_id() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # reaped: its pid names no process any more
    return child.pid


def gone_worker_id() -> str:
    """The id a worker of this host whose process has ended had."""
    return f"{socket.gethostname()}:{ended_process_id()}:0dead"


def running_worker_id() -> str:
    """The id of a worker of this host that still runs (this test's parent process)."""
    return f"{socket.gethostname()}:{os.getppid()}:a11ve"
