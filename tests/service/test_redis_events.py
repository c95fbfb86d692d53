"""Order changes cross processes on a real Redis: a change told in one process wakes the live streams of
another at once, well inside the 5 s poll that is left only as a safety net."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.redis import Redis
from service.domain.states import OrderStatus
from service.events import POLL_WITH_REDIS_S, NewOrder, OrderChanges, RedisOrderChanges


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Redis]:
    server = Redis(Path(tmp_path_factory.mktemp("redis")))
    server.start()
    yield server
    server.stop()


def test_a_change_in_one_process_wakes_the_streams_of_another(redis_server: Redis) -> None:
    worker_side, api_side = RedisOrderChanges(redis_server.url), RedisOrderChanges(redis_server.url)
    try:
        time.sleep(0.5)  # both subscribed
        seen, woke_after = api_side.version, []

        def stream() -> None:
            started = time.monotonic()
            api_side.wait(seen, timeout=POLL_WITH_REDIS_S * 2)
            woke_after.append(time.monotonic() - started)

        listener = threading.Thread(target=stream)
        listener.start()
        time.sleep(0.2)
        worker_side.notify(SimpleNamespace(id="ord_x"))
        listener.join()
        assert api_side.version != seen and woke_after[0] < 1.0, woke_after
    finally:
        worker_side.close()
        api_side.close()


def test_a_writer_is_not_failed_by_redis_going_away(tmp_path: Path) -> None:
    """A transition has committed before it is told: Redis gone must not turn it into an error."""
    server = Redis(tmp_path)
    server.start()
    changes = RedisOrderChanges(server.url)
    try:
        server.kill()
        changes.notify(SimpleNamespace(id="ord_y"))  # logs a warning; this process's streams still wake
        assert changes.version == 1
    finally:
        changes.close()


def test_a_new_order_is_announced_to_the_workers_of_every_process(redis_server: Redis) -> None:
    """An API instance's new order reaches a worker in another process with its payment hash, at once: the worker
    follows the invoice before the payer pays, not on its next re-check pass. Later changes are not announced."""
    api_side, worker_side = RedisOrderChanges(redis_server.url), RedisOrderChanges(redis_server.url)
    announced: list[NewOrder] = []
    arrived = threading.Event()

    def follow(order: NewOrder) -> None:
        announced.append(order)
        arrived.set()

    worker_side.on_new_order(follow)
    try:
        time.sleep(0.5)  # both subscribed
        hash_hex = "ab" * 32
        api_side.notify(SimpleNamespace(id="ord_new", status=OrderStatus.AWAITING_PAYMENT.value, payment_hash=hash_hex))
        assert arrived.wait(1.0), "the new order was not announced within a second"
        api_side.notify(SimpleNamespace(id="ord_new", status=OrderStatus.PAYMENT_HELD.value, payment_hash=hash_hex))
        time.sleep(0.5)
        assert announced == [NewOrder("ord_new", hash_hex)]
    finally:
        api_side.close()
        worker_side.close()


def test_without_redis_a_new_order_is_announced_in_its_own_process() -> None:
    changes, announced = OrderChanges(), list[NewOrder]()
    changes.on_new_order(announced.append)
    changes.notify(SimpleNamespace(id="ord_here", status=OrderStatus.AWAITING_PAYMENT.value, payment_hash="cd" * 32))
    changes.notify(SimpleNamespace(id="ord_here", status=OrderStatus.EXPIRED.value, payment_hash="cd" * 32))
    assert announced == [NewOrder("ord_here", "cd" * 32)]
