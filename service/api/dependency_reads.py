"""Reads of lnd, the devnet and the database made for GET requests (/rate, /health, /balance).

Each runs on a small pool of its own and is awaited for a bounded time, so a flood of GETs, or a dependency that
has stopped answering, holds a few threads here and never queues work ahead of the settlement's. What can be
shared is shared for a short while: every caller in that time gets the one answer, failures too, so a dependency
that is down is asked once per period rather than once per request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from typing import Generic, TypeVar

T = TypeVar("T")


class NoAnswer(Exception):
    """The dependency did not answer within the bound; the call may still be running on its pool."""


class BoundedCalls:
    """Calls run on at most `threads` threads; a caller waits at most `timeout_s` for its answer."""

    def __init__(self, name: str, threads: int, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name)

    def submit(self, call: Callable[[], T]) -> Future[T]:
        return self._pool.submit(call)

    def call(self, call: Callable[[], T]) -> T:
        """The call's answer or its exception, or NoAnswer after `timeout_s` (a call still queued is dropped)."""
        future = self.submit(call)
        try:
            return self.wait(future)
        except NoAnswer:
            future.cancel()  # only succeeds while it waits in the queue: then nobody runs it for nothing
            raise

    def wait(self, future: Future[T]) -> T:
        try:
            return future.result(timeout=self.timeout_s)
        except (TimeoutError, CancelledError) as exc:
            raise NoAnswer(f"no answer within {self.timeout_s:g} s") from exc


class SharedAnswer(Generic[T]):
    """The answer of one call to `fetch`, shared by every caller for `ttl_s` seconds after it came (an exception
    too). Callers that arrive while the call runs wait for that same call: one call at a time, at most one per
    `ttl_s` while it answers quickly."""

    def __init__(self, fetch: Callable[[], T], ttl_s: float, calls: BoundedCalls,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self._fetch = fetch
        self._calls = calls
        self._clock = clock
        self._lock = threading.Lock()
        self._future: Future[T] | None = None
        self._answered_at = float("-inf")

    def future(self) -> Future[T]:
        """The call in flight, or the last answer while it is fresh, or a new call."""
        with self._lock:
            current = self._future
            if current is None or (current.done() and self._clock() - self._answered_at >= self.ttl_s):
                current = self._future = self._calls.submit(self._fetch_and_stamp)
            return current

    def get(self) -> T:
        """The shared answer (or its exception), or NoAnswer if it does not come within the calls' bound."""
        return self._calls.wait(self.future())  # never cancelled here: other callers wait for it too

    def _fetch_and_stamp(self) -> T:
        try:
            return self._fetch()
        finally:
            self._answered_at = self._clock()  # before the future is done, so a fresh answer is never re-fetched
