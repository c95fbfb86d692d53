"""Order changes, told to the live event streams (SSE) of every process.

In one process the repository's listener wakes the streams at once. When the worker or other API instances
run in other processes, a change made there is published on Redis (`VOLTA_REDIS_URL`) and every instance
wakes its own streams; without Redis, streams fall back to asking the database ten times a second.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from typing import Any

log = logging.getLogger("volta.events")

CHANNEL = "volta:order-changes"
POLL_WITHOUT_REDIS_S = 0.1  # a change made by a worker in another process is seen this late at most
POLL_WITH_REDIS_S = 5.0  # only a safety net: a message lost while reconnecting is caught this late


class OrderChanges:
    """Wakes this process's live streams the moment an order changes here."""

    poll_interval_s = POLL_WITHOUT_REDIS_S

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self.version = 0

    def notify(self, _order: Any) -> None:
        self._wake()

    def _wake(self) -> None:
        with self._condition:
            self.version += 1
            self._condition.notify_all()

    def wait(self, seen_version: int, timeout: float) -> int:
        with self._condition:
            self._condition.wait_for(lambda: self.version != seen_version, timeout=timeout)
            return self.version

    def close(self) -> None:
        pass


class RedisOrderChanges(OrderChanges):
    """Also publishes each change made here, and wakes on changes published by any other process."""

    poll_interval_s = POLL_WITH_REDIS_S

    def __init__(self, redis_url: str) -> None:
        super().__init__()
        import redis  # only where Redis is configured: the one-process default does not need the package

        # Publishing runs in the thread that just committed a transition: a stalled Redis may cost it 1 s, no more.
        self._redis = redis.Redis.from_url(redis_url, socket_timeout=1, socket_connect_timeout=1,
                                           health_check_interval=30)
        self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        self._pubsub.subscribe(**{CHANNEL: lambda _message: self._wake()})
        self._listener = self._pubsub.run_in_thread(sleep_time=1.0, daemon=True,
                                                    exception_handler=self._listener_failed)

    def notify(self, order: Any) -> None:
        self._wake()
        try:
            self._redis.publish(CHANNEL, str(getattr(order, "id", "")))
        except Exception as exc:  # streams elsewhere then see it on their next poll; never fail the writer
            log.warning("could not publish an order change on Redis: %s", exc)

    def _listener_failed(self, exc: BaseException, _pubsub: Any, _thread: Any) -> None:
        # redis-py reconnects and subscribes again on the next read; meanwhile streams poll as a safety net.
        log.warning("Redis subscription dropped (%s); reconnecting", exc)
        time.sleep(1)

    def close(self) -> None:
        self._listener.stop()
        self._listener.join(timeout=2)  # its pending read ends within a second; then the connection can close
        self._pubsub.close()
        self._redis.close()


class StreamSlots:
    """At most `per_ip` open event streams per client address in this process, so one client cannot hold
    every connection a checkout page needs."""

    def __init__(self, per_ip: int) -> None:
        self.per_ip = per_ip
        self._open: Counter[str] = Counter()
        self._lock = threading.Lock()

    def take(self, client: str) -> bool:
        """Whether a stream may open for `client`; if so its slot is held until `give_back`."""
        with self._lock:
            if self._open[client] >= self.per_ip:
                return False
            self._open[client] += 1
            return True

    def give_back(self, client: str) -> None:
        with self._lock:
            self._open[client] -= 1
            if self._open[client] <= 0:
                del self._open[client]


def make_order_changes(redis_url: str) -> OrderChanges:
    return RedisOrderChanges(redis_url) if redis_url else OrderChanges()
