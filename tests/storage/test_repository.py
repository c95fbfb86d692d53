"""The storage layer on SQLite and on PostgreSQL: migrations, transitions with history, queries."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from service.domain.states import IllegalTransition, OrderStatus
from service.storage.idempotency import IdempotencyConflict, IdempotencyStore
from service.storage.models import OrderRow
from service.storage.orders import OrderRepository
from tests.storage.gone_process import gone_worker_id

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def new_order(address: str, vusd: str = "25.00") -> OrderRow:
    return OrderRow(
        id=f"ord_{uuid.uuid4().hex}", starknet_address=address, vusd_amount=vusd, amount_msat=25_000_000,
        btc_usd_rate="97000", spread_bps=50, max_slippage_bps=100, payment_hash=uuid.uuid4().hex * 2,
        preimage="00" * 32, bolt11="lnbcrt1…", status=OrderStatus.AWAITING_PAYMENT.value, created_at=NOW,
        updated_at=NOW, expires_at=NOW + timedelta(minutes=10),
    )


def test_transitions_are_stored_with_their_history(sessions) -> None:  # type: ignore[no-untyped-def]
    repository = OrderRepository(sessions, clock=lambda: NOW + timedelta(seconds=1))
    order = repository.add(new_order(f"0x{uuid.uuid4().hex}"))

    repository.transition(order.id, OrderStatus.PAYMENT_HELD, amount_paid_msat=25_000_000)
    repository.transition(order.id, OrderStatus.MINTING)
    with pytest.raises(IllegalTransition):
        repository.transition(order.id, OrderStatus.COMPLETED)

    stored = repository.get(order.id)
    assert stored.status == "minting" and stored.amount_paid_msat == 25_000_000
    assert [event.status for event in stored.events] == ["awaiting_payment", "payment_held", "minting"]
    assert stored.events[1].at == NOW + timedelta(seconds=1)
    assert [o.id for o in repository.unfinished()].count(order.id) == 1


def test_daily_allowance_counts_only_committed_orders(sessions) -> None:  # type: ignore[no-untyped-def]
    repository = OrderRepository(sessions, clock=lambda: NOW)
    address = f"0x{uuid.uuid4().hex}"
    held = repository.add(new_order(address, "30.00"))
    repository.add(new_order(address, "500.00"))  # never paid: does not count
    repository.transition(held.id, OrderStatus.PAYMENT_HELD)

    assert repository.vusd_committed_since(address, NOW - timedelta(days=1)) == Decimal("30.00")
    rows, total = repository.for_address(address, limit=1, offset=0)
    assert total == 2 and len(rows) == 1


def test_idempotency_keys(sessions) -> None:  # type: ignore[no-untyped-def]
    store = IdempotencyStore(sessions, clock=lambda: NOW)
    key = f"key-{uuid.uuid4().hex}"
    assert store.claim(key, "digest-a") is None
    with pytest.raises(IdempotencyConflict):
        store.claim(key, "digest-a")  # still being processed
    store.complete(key, "ord_1")
    assert store.claim(key, "digest-a") == "ord_1"
    with pytest.raises(IdempotencyConflict):
        store.claim(key, "digest-b")


def test_the_recheck_pass_leaves_alone_only_what_another_worker_holds(sessions) -> None:  # type: ignore[no-untyped-def]
    """The worker's safety net skips an order another worker holds a live claim on, and only that: its own
    claims, released ones, expired ones (a crashed worker's), live ones of a process of this host that is gone
    (a SIGKILLed worker's, taken over at once) and orders never claimed all come back to it."""
    now = [NOW]
    mine, theirs, crashed, killed = (OrderRepository(sessions, clock=lambda: now[0], claim_lease_s=5,
                                                     claim_renew_interval_s=600) for _ in range(4))
    killed.claims._identity = (os.getpid(), gone_worker_id())
    ids = {name: mine.add(new_order(f"0x{uuid.uuid4().hex}")).id
           for name in ("theirs", "mine", "released", "expired", "killed", "unclaimed")}
    assert killed.claims.take(ids["killed"]) is not None  # a live lease, but its holder's process is gone
    now[0] = NOW - timedelta(seconds=10)
    assert crashed.claims.take(ids["expired"]) is not None  # its lease ran out 5 s ago; nobody renews it
    crashed.claims.close()
    now[0] = NOW
    assert theirs.claims.take(ids["theirs"]) is not None
    assert mine.claims.take(ids["mine"]) is not None
    released = theirs.claims.take(ids["released"])
    assert released is not None
    theirs.claims.release(released)

    held_elsewhere = {item.id: item.held_elsewhere for item in mine.to_recheck(NOW) if item.id in ids.values()}
    assert held_elsewhere == {ids["theirs"]: True, ids["mine"]: False, ids["released"]: False,
                              ids["expired"]: False, ids["killed"]: False, ids["unclaimed"]: False}
    assert {item.id: item.held_elsewhere for item in theirs.to_recheck(NOW)}[ids["mine"]] is True
    for repository in (mine, theirs, killed):
        repository.claims.close()
