"""The background thread that renews a process's leases (order claims, mint lanes) until it is closed."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable


class LeaseHeartbeat:
    """Calls `renew` every `every_s` seconds on a daemon thread, from the first `start` until `close`.

    A failed renewal is logged and the next beat tries again: while the database is away the leases may run
    out, and the stores' conditional writes refuse whatever was done under a lost lease.
    """

    def __init__(self, renew: Callable[[], object], every_s: float, leases: str, thread_name: str,
                 log: logging.Logger) -> None:
        self._renew = renew
        self.every_s = every_s
        self._leases = leases
        self._thread_name = thread_name
        self._log = log
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start beating unless already beating or closed; safe to call on every lease taken."""
        with self._lock:
            # is_alive, not `is not None`: a forked child copies the object but not the thread.
            if (self._thread is not None and self._thread.is_alive()) or self._closed.is_set():
                return
            self._thread = threading.Thread(target=self._beat, name=self._thread_name, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._closed.set()

    def _beat(self) -> None:
        while not self._closed.wait(self.every_s):
            try:
                self._renew()
            except Exception:  # the database is away: the next beat tries again
                self._log.warning("renewing %s failed", self._leases, exc_info=True)
