"""With several workers each open invoice is followed by one of them (rendezvous hashing over the live workers):
every order has exactly one follower, the invoices spread over the workers, and a worker leaving moves only its
own invoices."""

from __future__ import annotations

from collections import Counter
from functools import partial
from pathlib import Path

from service.config import Settings
from service.container import order_rules
from service.domain.settlement import Settlement
from service.events import NewOrder
from service.storage.database import make_engine, make_session_factory, migrate
from service.storage.orders import OrderRepository
from service.storage.workers import WorkerRoster
from service.worker import Worker, follower_of
from tests.clock import Clock
from tests.unit.test_settlement import KEYS, NOW, FakeNode, FakeVault

WORKERS = ["host:101:aa", "host:102:bb", "host:103:cc"]
ORDERS = [f"ord_{i:04d}" for i in range(3000)]


def test_each_order_has_one_follower_and_the_orders_spread_evenly() -> None:
    followers = {order: follower_of(order, WORKERS) for order in ORDERS}
    assert set(followers.values()) == set(WORKERS)
    for worker, count in Counter(followers.values()).items():
        assert 800 < count < 1200, (worker, count)  # 1,000 each expected; 6 standard deviations is about 155
    assert all(follower_of(order, list(reversed(WORKERS))) == followers[order] for order in ORDERS), \
        "the roster's order must not matter"


def test_a_worker_leaving_moves_only_its_own_invoices() -> None:
    before = {order: follower_of(order, WORKERS) for order in ORDERS}
    after = {order: follower_of(order, WORKERS[:2]) for order in ORDERS}
    moved = [order for order in ORDERS if before[order] != after[order]]
    assert moved and all(before[order] == WORKERS[2] for order in moved)
    assert all(after[order] == before[order] for order in ORDERS if before[order] != WORKERS[2])


class FixedRoster(WorkerRoster):
    """The roster as a database would return it: these workers, live."""

    def __init__(self, live: list[str]) -> None:
        self.live = live

    def check_in(self) -> list[str]:
        return sorted(self.live)

    def leave(self) -> None:
        pass


def test_of_three_workers_exactly_one_follows_each_new_order(tmp_path: Path) -> None:
    """Through the worker itself: a new order's announcement makes only its follower subscribe to the invoice."""
    url = f"sqlite:///{tmp_path / 'volta.sqlite'}"
    migrate(url)
    repositories = [OrderRepository(make_session_factory(make_engine(url)), Clock(NOW)) for _ in range(3)]
    roster = FixedRoster([repository.claims.worker_id for repository in repositories])
    subscribed: dict[str, list[str]] = {}
    for repository in repositories:
        node = FakeNode()
        settlement = Settlement(order_rules(Settings()), repository, node, FakeVault(), FakeVault(), Clock(NOW), KEYS)
        worker = Worker(settlement, repository, node, Clock(NOW), threads=1, recheck_interval_s=3600, roster=roster)
        worker._check_in()
        worker.watch = partial(lambda me, order: subscribed.setdefault(order.id, []).append(me),  # type: ignore[method-assign]
                               repository.claims.worker_id)
        for order in ORDERS[:300]:
            worker.on_new_order(NewOrder(order, "ab" * 32))
    assert sorted(subscribed) == sorted(ORDERS[:300])
    assert all(followers == [follower_of(order, roster.live)] for order, followers in subscribed.items())
