"""With several workers each open invoice is followed by one of them (rendezvous hashing over the live workers):
every order has exactly one follower, the invoices spread over the workers, and a worker leaving moves only its
own invoices."""

from __future__ import annotations

from collections import Counter

from service.worker import follower_of

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
