"""Settlement decisions with small fakes, for the paths the real network cannot be steered into cheaply
(the same happy, refund and crash paths run for real in features/purchase.feature)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from service.config import Settings
from service.domain.pricing import Price
from service.domain.settlement import Settlement
from service.domain.states import OrderStatus
from service.lightning.base import HoldInvoice, InvoiceState, InvoiceStatus, LightningBackend, LightningError
from service.starknet.base import MintReceipt, MintTxState, MintUncertain, PriceSource, VaultGateway
from service.storage.database import make_engine, make_session_factory, migrate
from service.storage.models import OrderRow
from service.storage.orders import OrderRepository

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
PREIMAGE = bytes(32)
PAYMENT_HASH = hashlib.sha256(PREIMAGE).digest()


class FakeNode(LightningBackend):
    name = "fake"

    def __init__(self) -> None:
        self.state, self.settle_fails, self.calls = InvoiceState.ACCEPTED, False, []

    def create_hold_invoice(self, *args: object) -> HoldInvoice:
        raise NotImplementedError

    def settle_hold_invoice(self, preimage: bytes) -> None:
        self.calls.append("settle")
        if self.settle_fails:
            raise LightningError("refused")
        self.state = InvoiceState.SETTLED

    def cancel_hold_invoice(self, payment_hash: bytes) -> None:
        self.calls.append("cancel")
        self.state = InvoiceState.CANCELED

    def invoice_status(self, payment_hash: bytes) -> InvoiceStatus:
        return InvoiceStatus(payment_hash.hex(), self.state, 25_000_000)

    def watch_invoice(self, payment_hash: bytes) -> Iterator[InvoiceStatus]:
        yield self.invoice_status(payment_hash)

    def is_reachable(self) -> bool:
        return True


class FakeVault(VaultGateway, PriceSource):
    def __init__(self) -> None:
        self.used: set[bytes] = set()
        self.uncertain = False
        self.tx_state = MintTxState.UNKNOWN

    def mint_for_payment(self, recipient: int, amount_base_units: int, payment_hash: bytes,
                         on_signed: Callable[[str], None] | None = None) -> MintReceipt:
        if on_signed:
            on_signed("0xfeed")
        if self.uncertain:
            raise MintUncertain("no answer")
        self.used.add(payment_hash)
        return MintReceipt("0xfeed", 1)

    def mint_tx_state(self, tx_hash: str) -> MintTxState:
        return self.tx_state

    def is_payment_used(self, payment_hash: bytes) -> bool:
        return payment_hash in self.used

    def vusd_balance(self, address: int) -> int:
        return 0

    def is_reachable(self) -> bool:
        return True

    def btc_usd(self) -> Price:
        return Price(Decimal("97000"), int(NOW.timestamp()))


@pytest.fixture
def world(tmp_path: Path):  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'volta.sqlite'}"
    migrate(url)
    clock = {"now": NOW}
    repository = OrderRepository(make_session_factory(make_engine(url)), lambda: clock["now"])
    node, vault = FakeNode(), FakeVault()
    settlement = Settlement(Settings(), repository, node, vault, vault, lambda: clock["now"])
    order = repository.add(OrderRow(
        id=f"ord_{uuid.uuid4().hex}", starknet_address="0x" + "1" * 64, vusd_amount="25.00",
        amount_msat=25_000_000, btc_usd_rate="97000", spread_bps=50, max_slippage_bps=100,
        payment_hash=PAYMENT_HASH.hex(), preimage=PREIMAGE.hex(), bolt11="lnbcrt…", status="awaiting_payment",
        created_at=NOW, updated_at=NOW, expires_at=NOW + timedelta(minutes=10)))
    return settlement, repository, node, vault, clock, order


def accept(settlement: Settlement, order: OrderRow) -> None:
    settlement.on_invoice_status(order.id, InvoiceStatus(order.payment_hash, InvoiceState.ACCEPTED, 25_000_000))


def test_uncertain_mint_stays_minting_then_refunds_only_when_no_mint_can_still_land(world) -> None:  # type: ignore[no-untyped-def]
    settlement, repository, node, vault, clock, order = world
    vault.uncertain = True
    accept(settlement, order)
    assert repository.get(order.id).status == "minting" and node.calls == []

    clock["now"] += timedelta(seconds=settlement.settings.max_hold_s - settlement.settings.mint_budget_s + 1)
    settlement.resume(repository.get(order.id))

    stored = repository.get(order.id)
    assert (stored.status, stored.refund_reason, node.calls) == ("refunded", "mint_failed", ["cancel"])


def test_a_mint_still_pending_on_chain_keeps_the_htlc_held_past_the_bound(world) -> None:  # type: ignore[no-untyped-def]
    settlement, repository, node, vault, clock, order = world
    vault.uncertain = True
    accept(settlement, order)
    assert repository.get(order.id).mint_tx_hash == "0xfeed", "the signed hash is recorded before sending"

    vault.tx_state = MintTxState.PENDING
    clock["now"] += timedelta(seconds=settlement.settings.max_hold_s + 1)
    settlement.resume(repository.get(order.id))
    assert (repository.get(order.id).status, node.calls) == ("minting", [])

    vault.used.add(PAYMENT_HASH)  # it landed after all
    settlement.resume(repository.get(order.id))
    assert (repository.get(order.id).status, node.calls) == ("completed", ["settle"])


def test_minted_order_whose_htlc_was_cancelled_goes_to_failed_not_a_loop(world) -> None:  # type: ignore[no-untyped-def]
    settlement, repository, node, _vault, _clock, order = world
    node.settle_fails = True
    with pytest.raises(LightningError):  # the worker logs it and retries on its next pass
        accept(settlement, order)  # mints, then settle fails while lnd still holds the HTLC: stays minted
    assert repository.get(order.id).status == "minted"

    node.state = InvoiceState.CANCELED
    settlement.resume(repository.get(order.id))

    assert repository.get(order.id).status == OrderStatus.FAILED.value


def test_no_mint_when_the_node_no_longer_holds_the_htlc(world) -> None:  # type: ignore[no-untyped-def]
    settlement, repository, node, vault, _clock, order = world
    repository.transition(order.id, OrderStatus.PAYMENT_HELD, amount_paid_msat=25_000_000,
                          hold_deadline=NOW + timedelta(seconds=120))
    node.state = InvoiceState.CANCELED
    settlement.resume(repository.get(order.id))

    assert repository.get(order.id).status == "refunded" and vault.used == set()
