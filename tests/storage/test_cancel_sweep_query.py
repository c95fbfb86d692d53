"""The cancel sweep's query on SQLite and PostgreSQL: which ended orders, in which order, how many."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from service.domain.states import OrderStatus
from service.storage.models import OrderRow
from service.storage.orders import OrderRepository

NOW = datetime(2031, 1, 1, 12, 0, tzinfo=UTC)  # later than other tests' orders in the shared PostgreSQL


def ended(repository: OrderRepository, status: OrderStatus, ago: timedelta) -> str:
    order_id = f"ord_{uuid.uuid4().hex}"
    repository.add(OrderRow(
        id=order_id, starknet_address="0x1", vusd_amount="5.00", amount_msat=5_000_000, btc_usd_rate="97000",
        spread_bps=50, max_slippage_bps=100, payment_hash=uuid.uuid4().hex * 2, bolt11="lnbcrt1…",
        status=status.value, created_at=NOW - ago, updated_at=NOW - ago, expires_at=NOW - ago))
    return order_id


def test_refunded_first_then_expired_newest_first_within_their_windows_and_the_limit(
    sessions: sessionmaker[Session],
) -> None:
    repository = OrderRepository(sessions, clock=lambda: NOW)
    refunded_old = ended(repository, OrderStatus.REFUNDED, timedelta(hours=20))
    refunded_new = ended(repository, OrderStatus.REFUNDED, timedelta(hours=1))
    ended(repository, OrderStatus.REFUNDED, timedelta(days=2))  # past its window
    expired = [ended(repository, OrderStatus.EXPIRED, timedelta(minutes=m)) for m in (1, 2, 3, 4)]
    ended(repository, OrderStatus.EXPIRED, timedelta(minutes=30))  # past its window
    ended(repository, OrderStatus.COMPLETED, timedelta(minutes=1))
    ended(repository, OrderStatus.AWAITING_PAYMENT, timedelta(minutes=1))

    def candidates(limit: int) -> list[str]:
        return [order.id for order in repository.cancel_sweep_candidates(
            NOW - timedelta(days=1), NOW - timedelta(minutes=10), limit=limit)]

    assert candidates(limit=100) == [refunded_new, refunded_old, *expired]
    assert candidates(limit=4) == [refunded_new, refunded_old, *expired[:2]]


def test_the_reconciliation_reads_every_paid_order_of_its_window_but_only_recent_expired_ones_and_a_few(
    sessions: sessionmaker[Session],
) -> None:
    later = NOW + timedelta(days=400)  # apart from the other test's orders in the shared PostgreSQL
    repository = OrderRepository(sessions, clock=lambda: later)

    def finished(status: OrderStatus, ago: timedelta) -> str:
        return ended(repository, status, ago - (later - NOW))

    completed = finished(OrderStatus.COMPLETED, timedelta(hours=20))
    refunded = finished(OrderStatus.REFUNDED, timedelta(hours=2))
    expired = [finished(OrderStatus.EXPIRED, timedelta(minutes=m)) for m in (1, 2, 3)]
    finished(OrderStatus.EXPIRED, timedelta(hours=3))  # past the expired orders' window
    finished(OrderStatus.COMPLETED, timedelta(days=2))  # past the window
    finished(OrderStatus.AWAITING_PAYMENT, timedelta(minutes=1))

    def read(expired_limit: int | None) -> list[str]:
        return [order.id for order in repository.finished_since(
            later - timedelta(days=1), later - timedelta(hours=1), expired_limit)]

    assert read(None) == [completed, refunded, *expired]
    assert read(2) == [completed, refunded, *expired[:2]]
    assert read(0) == [completed, refunded]
