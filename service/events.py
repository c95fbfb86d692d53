"""Order changes, told to the live event streams (SSE) of every process.

In one process the repository's listener wakes the streams at once. When the worker or other API instances
run in other processes, a change made there is published on Redis (`VOLTA_REDIS_URL`) with the order's id, and
every instance wakes its own streams of that order (only those: thousands of open checkout pages must not all
read the database on every change); without Redis, streams fall back to asking the database ten times a second.
A stream also wakes the moment its client goes away (ClientWatch), so its slot is free at once.

New orders are also announced to the workers (`on_new_order`), on a channel of their own with the invoice's payment
hash: a worker in another process follows the new invoice at once, instead of finding it on its next re-check pass
(every 2 s, by which time the payer has often paid), and without a database read per message.
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from service.domain.states import OrderStatus

log = logging.getLogger("volta.events")

CHANNEL = "volta:order-changes"
NEW_ORDERS_CHANNEL = "volta:new-orders"  # "<order id> <payment hash>" for each order created
POLL_WITHOUT_REDIS_S = 0.1  # a change made by a worker in another process is seen this late at most
# Only a safety net with Redis: every stream re-reads its order once a dropped subscription is back, so this
# catches only a message lost without the subscription noticing. Each poll is a database read per open stream:
# 2,000 open checkout pages read 33 times a second at 60 s (133 at 15 s).
POLL_WITH_REDIS_S = 60.0
RESUBSCRIBED_WAKE_S = 3.0  # after a dropped Redis subscription: when redis-py has subscribed again


class Follower:
    """One live stream's alarm: rung by a change of its order, by any change whose order is not known, or by
    its client going away. `clear()` before reading the order, then `wait()`: a change in between is not lost."""

    def __init__(self, order_id: str) -> None:
        self.order_id = order_id
        self.client_gone = False
        self._rung = threading.Event()

    def ring(self) -> None:
        self._rung.set()

    def clear(self) -> None:
        self._rung.clear()

    def wait(self, timeout: float) -> bool:
        return self._rung.wait(timeout)


@dataclass(frozen=True)
class NewOrder:
    """What a worker needs to follow a new order's invoice."""

    id: str
    payment_hash: str


class OrderChanges:
    """Wakes this process's live streams the moment an order changes here, and tells this process's worker of
    each order created here."""

    poll_interval_s = POLL_WITHOUT_REDIS_S

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self.version = 0
        self._followers: dict[str, set[Follower]] = {}
        self._new_order_listeners: list[Callable[[NewOrder], None]] = []

    def notify(self, order: Any) -> None:
        self._wake(getattr(order, "id", None))
        if getattr(order, "status", None) == OrderStatus.AWAITING_PAYMENT.value:
            self._announce(NewOrder(order.id, order.payment_hash))

    def on_new_order(self, listener: Callable[[NewOrder], None]) -> None:
        """Call `listener` for every order created, here or (with Redis) in any other process."""
        self._new_order_listeners.append(listener)

    def _announce(self, order: NewOrder) -> None:
        for listener in self._new_order_listeners:
            try:
                listener(order)
            except Exception:  # the re-check pass finds the order anyway; never fail the writer
                log.warning("a new-order listener failed for %s", order.id, exc_info=True)

    @contextmanager
    def follow(self, order_id: str) -> Iterator[Follower]:
        """A stream's alarm for as long as the stream lasts."""
        follower = Follower(order_id)
        with self._condition:
            self._followers.setdefault(order_id, set()).add(follower)
        try:
            yield follower
        finally:
            with self._condition:
                followers = self._followers.get(order_id, set())
                followers.discard(follower)
                if not followers:
                    self._followers.pop(order_id, None)

    def followed_count(self) -> int:
        with self._condition:
            return sum(len(followers) for followers in self._followers.values())

    def _wake(self, order_id: str | None) -> None:
        """Wake the streams of `order_id`, or every stream when it is not known (None or empty)."""
        with self._condition:
            self.version += 1
            self._condition.notify_all()
            if order_id:
                followers = list(self._followers.get(order_id, ()))
            else:
                followers = [follower for group in self._followers.values() for follower in group]
        for follower in followers:
            follower.ring()

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
        self._pubsub.subscribe(**{CHANNEL: self._on_message, NEW_ORDERS_CHANNEL: self._on_new_order_message})
        self._listener = self._pubsub.run_in_thread(sleep_time=1.0, daemon=True,
                                                    exception_handler=self._listener_failed)

    def _on_message(self, message: dict[str, Any]) -> None:
        data = message.get("data")
        self._wake(data.decode(errors="replace") if isinstance(data, bytes) else str(data or ""))

    def _on_new_order_message(self, message: dict[str, Any]) -> None:
        data = message.get("data")
        text = data.decode(errors="replace") if isinstance(data, bytes) else str(data)
        order_id, _, payment_hash = text.partition(" ")
        if order_id and payment_hash:
            super()._announce(NewOrder(order_id, payment_hash))

    def notify(self, order: Any) -> None:
        super().notify(order)
        try:
            self._redis.publish(CHANNEL, str(getattr(order, "id", "")))
        except Exception as exc:  # streams elsewhere then see it on their next poll; never fail the writer
            log.warning("could not publish an order change on Redis: %s", exc)

    def _announce(self, order: NewOrder) -> None:
        """Told here at once (this process's worker, if any) and published for the workers of other processes; a
        worker that gets it twice follows the invoice once."""
        super()._announce(order)
        try:
            self._redis.publish(NEW_ORDERS_CHANNEL, f"{order.id} {order.payment_hash}")
        except Exception as exc:  # workers elsewhere find it on their next re-check pass; never fail the writer
            log.warning("could not publish a new order on Redis: %s", exc)

    def _listener_failed(self, exc: BaseException, _pubsub: Any, _thread: Any) -> None:
        # redis-py reconnects and subscribes again on its next read, after this handler returns: a change published
        # before that is lost. Every stream reads its order again now, and once more when the new subscription
        # has had time to take (streams also poll, but only every POLL_WITH_REDIS_S).
        log.warning("Redis subscription dropped (%s); reconnecting", exc)
        time.sleep(1)
        self._wake(None)
        again = threading.Timer(RESUBSCRIBED_WAKE_S, self._wake, args=(None,))
        again.daemon = True
        again.start()

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


class ClientWatch:
    """Notices streams whose client went away while they wait, all of them on one thread: each stream's socket
    is watched for the end of the connection (nginx closes its upstream connection when the browser goes), and
    its follower rung, so the stream ends and frees its slot at once rather than at its next keepalive.

    Works with any server that names the client socket in the WSGI environ (gunicorn, Werkzeug); under
    gevent the thread and the selector are gevent's, so it is one greenlet. A socket is unregistered before
    its stream returns, so never after the server has closed it."""

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._lock = threading.Lock()
        self._wakeup_read, self._wakeup_write = socket.socketpair()
        for end in (self._wakeup_read, self._wakeup_write):
            end.setblocking(False)
        self._selector.register(self._wakeup_read, selectors.EVENT_READ, None)
        self._thread = threading.Thread(target=self._run, name="sse-client-watch", daemon=True)
        self._thread.start()

    @contextmanager
    def watching(self, client_socket: Any, follower: Follower) -> Iterator[None]:
        """While the block runs, ring `follower` (with `client_gone` set) if `client_socket` closes. No socket
        (a server that does not say it): nothing is watched; the keepalive still finds a gone client."""
        if client_socket is None or isinstance(client_socket, ssl.SSLSocket):  # TLS: recv flags are refused
            yield
            return
        with self._lock:
            try:
                self._selector.register(client_socket, selectors.EVENT_READ, follower)
            except (KeyError, ValueError, OSError) as exc:
                log.debug("stream of %s: its client socket cannot be watched (%s)", follower.order_id, exc)
                client_socket = None
        self._poke()  # gevent's selector watches what was registered from its next select() on
        try:
            yield
        finally:
            if client_socket is not None:
                self._forget(client_socket)

    def _poke(self) -> None:
        with contextlib.suppress(OSError):  # full: the watcher has wake-ups pending already
            self._wakeup_write.send(b"\0")

    def _forget(self, client_socket: Any) -> None:
        with self._lock, contextlib.suppress(KeyError, ValueError):  # already forgotten by the watcher
            self._selector.unregister(client_socket)

    def _run(self) -> None:
        while True:
            try:
                ready = self._selector.select()
            except Exception:  # the watcher must outlive anything; streams still find a gone client at keepalive
                log.warning("client watch: select failed", exc_info=True)
                time.sleep(1)
                continue
            for key, _events in ready:
                try:
                    if key.data is None:
                        self._drain_wakeups()
                    else:
                        self._check(key.fileobj, key.data)
                except Exception:  # one odd socket must not end the watch of every other stream
                    log.warning("client watch: a socket could not be checked; no longer watched", exc_info=True)
                    if key.data is not None:
                        self._forget(key.fileobj)

    def _drain_wakeups(self) -> None:
        try:
            while self._wakeup_read.recv(4096):
                pass
        except OSError:  # BlockingIOError: drained
            pass

    def _check(self, client_socket: Any, follower: Follower) -> None:
        """Readable while the stream waits: the client closed (EOF, reset), or sent bytes (not expected)."""
        try:
            closed = client_socket.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            closed = True
        self._forget(client_socket)  # either way: one answer is all it gives
        if closed:
            follower.client_gone = True
            follower.ring()


_client_watch: ClientWatch | None = None
_client_watch_lock = threading.Lock()


def client_watch() -> ClientWatch:
    """This process's one ClientWatch, made on first use (after a fork, and after gevent's patching)."""
    global _client_watch
    with _client_watch_lock:
        if _client_watch is None:
            _client_watch = ClientWatch()
        return _client_watch


def client_socket_of(environ: dict[str, Any]) -> Any:
    """The client connection's socket, where the WSGI server says it (gunicorn, Werkzeug's development server)."""
    return environ.get("gunicorn.socket") or environ.get("werkzeug.socket")


def make_order_changes(redis_url: str) -> OrderChanges:
    return RedisOrderChanges(redis_url) if redis_url else OrderChanges()
