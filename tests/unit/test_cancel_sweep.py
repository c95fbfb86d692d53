"""The worker's cancel sweep under spam: hundreds of orders expired unpaid must not turn into hundreds of lnd calls
queued ahead of settlement. A fake node counts the calls one sweep pass makes. The real node's side of the
sweep (lnd unreachable during a refund's cancel, released by the sweep once it is back) runs in
tests/atomicity/test_slow_dependencies.py."""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from service.config import Settings
from service.container import order_rules
from service.domain.preimages import PreimageKeys
from service.domain.settlement import Settlement
from service.lightning.base import HoldInvoice, InvoiceState, InvoiceStatus, LightningBackend
from service.storage.database import make_engine, make_session_factory, migrate
from service.storage.models import OrderRow
from service.storage.orders import OrderRepository
from service.worker import Worker

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
SWEEP_BOUND = 50  # orders one pass asks lnd about at most, as the README says


class CountingNode(LightningBackend):
    """Every invoice CANCELED (lnd let the unpaid ones expire) except those with a held HTLC."""

    name = "counting"

    def __init__(self) -> None:
        self.lookups: Counter[str] = Counter()
        self.cancelled: list[str] = []
        self.held: set[str] = set()
        self._lock = threading.Lock()

    def create_hold_invoice(self, *args: object) -> HoldInvoice:
        raise NotImplementedError

    def settle_hold_invoice(self, preimage: bytes) -> None:
        raise AssertionError("nothing is settled here")

    def cancel_hold_invoice(self, payment_hash: bytes) -> None:
        with self._lock:
            self.cancelled.append(payment_hash.hex())
            self.held.discard(payment_hash.hex())

    def invoice_status(self, payment_hash: bytes) -> InvoiceStatus:
        with self._lock:
            self.lookups[payment_hash.hex()] += 1
            state = InvoiceState.ACCEPTED if payment_hash.hex() in self.held else InvoiceState.CANCELED
        return InvoiceStatus(payment_hash.hex(), state, 0)

    def watch_invoice(self, payment_hash: bytes) -> Iterator[InvoiceStatus]:
        yield self.invoice_status(payment_hash)

    def block_height(self) -> int:
        return 1_000

    def is_reachable(self) -> bool:
        return True


@pytest.fixture
def repository(tmp_path: Path) -> OrderRepository:
    url = f"sqlite:///{tmp_path / 'volta.sqlite'}"
    migrate(url)
    return OrderRepository(make_session_factory(make_engine(url)), lambda: NOW)


def ended_order(repository: OrderRepository, status: str, ended_ago: timedelta) -> OrderRow:
    ended_at = NOW - ended_ago
    return repository.add(OrderRow(
        id=f"ord_{secrets.token_hex(16)}", starknet_address="0x" + "1" * 64, vusd_amount="5.00",
        amount_msat=5_000_000, btc_usd_rate="97000", spread_bps=50, max_slippage_bps=100,
        payment_hash=hashlib.sha256(secrets.token_bytes(32)).hexdigest(), bolt11="lnbcrt…", status=status,
        refund_reason="slippage_exceeded" if status == "refunded" else None,
        created_at=ended_at - timedelta(minutes=5), updated_at=ended_at, expires_at=ended_at))


def one_sweep_pass(repository: OrderRepository, node: CountingNode) -> None:
    settlement = Settlement(order_rules(Settings()), repository, node, None, None, lambda: NOW,  # type: ignore[arg-type]
                            PreimageKeys.parse(PreimageKeys.generate()))
    worker = Worker(settlement, repository, node, lambda: NOW, threads=4, recheck_interval_s=3600)
    worker.recheck_all()  # the first pass is a full one: it sweeps
    worker._pool.shutdown(wait=True)  # every queued lnd call made


def test_spam_orders_that_expired_unpaid_cost_at_most_the_bound_of_lnd_calls_per_pass(
    repository: OrderRepository,
) -> None:
    node = CountingNode()
    spam = [ended_order(repository, "expired", timedelta(seconds=30 * i)) for i in range(300)]  # the last 2.5 h
    refunded = [ended_order(repository, "refunded", timedelta(hours=3 + i)) for i in range(3)]
    node.held.update(order.payment_hash for order in refunded[:2])  # their cancel never reached lnd
    one_sweep_pass(repository, node)
    assert sum(node.lookups.values()) <= SWEEP_BOUND, f"{sum(node.lookups.values())} lnd lookups"
    assert all(node.lookups[order.payment_hash] == 1 for order in refunded), "refunded orders come first"
    assert sorted(node.cancelled) == sorted(order.payment_hash for order in refunded[:2])
    assert not any(node.lookups[order.payment_hash] for order in spam[40:]), "long-expired orders are not asked"


def test_an_order_that_expired_moments_ago_is_still_swept(repository: OrderRepository) -> None:
    """An HTLC can slip in as an order expires; if the cancel then failed, the sweep releases it."""
    node = CountingNode()
    just_expired = ended_order(repository, "expired", timedelta(seconds=40))
    node.held.add(just_expired.payment_hash)
    one_sweep_pass(repository, node)
    assert node.cancelled == [just_expired.payment_hash]
