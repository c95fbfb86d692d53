"""Settlement decisions with small fakes, for the paths the real network cannot be steered into cheaply.
The same happy, refund and crash paths run for real in features/purchase.feature and tests/atomicity/."""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import NamedTuple

import pytest

from service.config import Settings
from service.container import order_rules
from service.domain.ports import (
    MintDeferred,
    MintFate,
    MintReceipt,
    MintStatus,
    MintUncertain,
    OrderRecord,
    PriceSource,
    SignedMint,
    VaultGateway,
)
from service.domain.preimages import PreimageKeys
from service.domain.pricing import Price
from service.domain.reconciliation import FindingKind, Reconciliation
from service.domain.settlement import Settlement
from service.domain.states import ConcurrentChange, OrderStatus
from service.lightning.base import HoldInvoice, InvoiceState, InvoiceStatus, LightningBackend, LightningError
from service.storage.database import make_engine, make_session_factory, migrate
from service.storage.models import OrderRow
from service.storage.orders import OrderRepository

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
PREIMAGE = bytes(32)
PAYMENT_HASH = hashlib.sha256(PREIMAGE).digest()
AMOUNT_MSAT = 25_000_000
TIP_HEIGHT = 1_000
QUOTED_BTC_USD = Decimal("97000")
KEYS = PreimageKeys.parse(PreimageKeys.generate())  # the orders here keep a stored preimage, as old ones do


class FakeNode(LightningBackend):
    name = "fake"

    def __init__(self) -> None:
        self.state, self.settle_fails, self.calls = InvoiceState.ACCEPTED, False, list[str]()
        self.height, self.expiry_height, self.paid_msat = TIP_HEIGHT, TIP_HEIGHT + 144, AMOUNT_MSAT

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
        return InvoiceStatus(payment_hash.hex(), self.state, self.paid_msat, htlc_expiry_height=self.expiry_height)

    def watch_invoice(self, payment_hash: bytes) -> Iterator[InvoiceStatus]:
        yield self.invoice_status(payment_hash)

    def block_height(self) -> int:
        return self.height

    def is_reachable(self) -> bool:
        return True


@dataclass
class FakeVault(VaultGateway, PriceSource):
    """Mints land unless told otherwise; a signed mint's fate is whatever the test sets."""

    def __init__(self) -> None:
        self.used: set[bytes] = set()
        self.uncertain = False
        self.fate = MintStatus(MintFate.PENDING, "not found", known_to_node=False)
        self.fate_sequence: list[MintStatus] = []
        self.voided: list[tuple[int, str | None]] = []
        self.lanes_free = True
        self.account = "0xa11ce"
        self.signed: list[SignedMint] = []
        self.before_sending: Callable[[], None] = lambda: None
        self.sent: list[SignedMint] = []
        self.price = Price(QUOTED_BTC_USD, int(NOW.timestamp()))

    def mint_for_payment(self, recipient: int, amount_base_units: int, payment_hash: bytes,
                         on_signed: Callable[[SignedMint], None] | None = None) -> MintReceipt:
        if not self.lanes_free:
            raise MintDeferred("every mint lane is leased to another worker")
        signed = SignedMint(f"0xfeed{len(self.signed)}", len(self.signed), self.account)
        self.signed.append(signed)
        self.before_sending()
        if on_signed:
            on_signed(signed)  # raises MintAbandoned to stop it, as the real client lets it
        self.sent.append(signed)
        if self.uncertain:
            raise MintUncertain("no answer")
        self.used.add(payment_hash)
        return MintReceipt(signed.tx_hash, 1)

    def mint_status(self, signed: SignedMint) -> MintStatus:
        return self.fate_sequence.pop(0) if self.fate_sequence else self.fate

    def void_nonce(self, nonce: int, account: str | None = None) -> None:
        self.voided.append((nonce, account))

    def is_payment_used(self, payment_hash: bytes) -> bool:
        return payment_hash in self.used

    def vusd_balance(self, address: int) -> int:
        return 0

    def is_reachable(self) -> bool:
        return True

    def btc_usd(self) -> Price:
        return self.price


class World(NamedTuple):
    settlement: Settlement
    repository: OrderRepository
    node: FakeNode
    vault: FakeVault
    clock: dict[str, datetime]
    order: OrderRow


def awaiting_payment(repository: OrderRepository, max_slippage_bps: int = 100, preimage: bytes = PREIMAGE) -> OrderRow:
    """An order quoted at QUOTED_BTC_USD whose buyer allows `max_slippage_bps`."""
    payment_hash = hashlib.sha256(preimage).digest()
    return repository.add(OrderRow(
        id=f"ord_{uuid.uuid4().hex}", starknet_address="0x" + "1" * 64, vusd_amount="25.00",
        amount_msat=AMOUNT_MSAT, btc_usd_rate=str(QUOTED_BTC_USD), spread_bps=50, max_slippage_bps=max_slippage_bps,
        payment_hash=payment_hash.hex(), preimage=preimage.hex(), bolt11="lnbcrt…", status="awaiting_payment",
        created_at=NOW, updated_at=NOW, expires_at=NOW + timedelta(minutes=10)))


@pytest.fixture
def world(tmp_path: Path) -> World:
    url = f"sqlite:///{tmp_path / 'volta.sqlite'}"
    migrate(url)
    clock = {"now": NOW}
    repository = OrderRepository(make_session_factory(make_engine(url)), lambda: clock["now"])
    node, vault = FakeNode(), FakeVault()
    settlement = Settlement(order_rules(Settings()), repository, node, vault, vault, lambda: clock["now"], KEYS)
    return World(settlement, repository, node, vault, clock, awaiting_payment(repository))


def accept(settlement: Settlement, order: OrderRow, paid_msat: int = AMOUNT_MSAT,
           accepted_at: datetime | None = None) -> None:
    """lnd holds the HTLC: handled as a worker handles it, under its claim on the order."""
    with settlement.repository.claims.holding(order.id) as claim:
        assert claim is not None
        settlement.on_invoice_status(order.id, InvoiceStatus(
            order.payment_hash, InvoiceState.ACCEPTED, paid_msat, accepted_at=accepted_at,
            htlc_expiry_height=TIP_HEIGHT + 144), claim)


def resume(settlement: Settlement, order_id: str, order: OrderRecord | None = None) -> None:
    """One re-check of the order, under a claim (the order as stored, unless the test hands one in)."""
    with settlement.repository.claims.holding(order_id) as claim:
        assert claim is not None
        settlement.resume(order or settlement.repository.get(order_id), claim)


def past_hold_bound(settlement: Settlement, clock: dict[str, datetime]) -> None:
    clock["now"] += timedelta(seconds=settlement.rules.max_hold_s + 1)


def test_uncertain_mint_never_seen_is_voided_past_the_bound_then_refunded_once_dead(world: World) -> None:
    settlement, repository, node, vault, clock, order = world
    vault.uncertain = True
    accept(settlement, order)
    stored = repository.get(order.id)
    assert (stored.status, stored.mint_tx_hash, stored.mint_nonce, stored.mint_account) == (
        "minting", "0xfeed0", 0, "0xa11ce")

    past_hold_bound(settlement, clock)
    resume(settlement, order.id)  # not found, nonce unused: it may still land
    # The nonce voided is the one of the account (mint lane) that signed the attempt.
    assert (repository.get(order.id).status, node.calls, vault.voided) == ("minting", [], [(0, "0xa11ce")])

    vault.fate = MintStatus(MintFate.DEAD, "nonce 0 used by another transaction", known_to_node=False)
    resume(settlement, order.id)
    stored = repository.get(order.id)
    assert (stored.status, stored.refund_reason, node.calls) == ("refunded", "mint_failed", ["cancel"])


def test_a_mint_the_node_knows_keeps_the_htlc_held_past_the_bound_without_voiding(world: World) -> None:
    settlement, repository, node, vault, clock, order = world
    vault.uncertain = True
    accept(settlement, order)
    vault.fate = MintStatus(MintFate.PENDING, "RECEIVED")
    past_hold_bound(settlement, clock)
    resume(settlement, order.id)
    assert (repository.get(order.id).status, node.calls, vault.voided) == ("minting", [], [])

    vault.fate = MintStatus(MintFate.LANDED, "ACCEPTED_ON_L2")
    vault.used.add(PAYMENT_HASH)  # it landed after all
    resume(settlement, order.id)
    assert (repository.get(order.id).status, node.calls) == ("completed", ["settle"])


def test_a_mint_landing_between_two_reads_is_settled_not_refunded(world: World) -> None:
    """The transaction's own status is read first: a mint that lands meanwhile is seen by is_payment_used."""
    settlement, repository, node, vault, clock, order = world
    vault.uncertain = True
    accept(settlement, order)
    clock["now"] += timedelta(seconds=settlement.rules.max_hold_s - 1)  # little time left
    vault.fate = MintStatus(MintFate.DEAD, "REVERTED")  # hypothetical worst case: the status lags behind
    vault.used.add(PAYMENT_HASH)
    resume(settlement, order.id)
    assert (repository.get(order.id).status, node.calls) == ("completed", ["settle"])


def test_a_dead_attempt_with_time_left_is_minted_again_replacing_it(world: World) -> None:
    settlement, repository, node, vault, _clock, order = world
    vault.uncertain = True
    accept(settlement, order)
    vault.uncertain = False
    vault.fate = MintStatus(MintFate.DEAD, "nonce used elsewhere", known_to_node=False)
    resume(settlement, order.id)
    stored = repository.get(order.id)
    assert (stored.status, stored.mint_tx_hash, node.calls) == ("completed", "0xfeed1", ["settle"])


def test_no_mint_goes_out_after_the_order_was_refunded(world: World) -> None:
    """Issue 10, way 1: a batch signs a mint after its order was refunded; recording refuses, nothing is sent."""
    settlement, repository, _node, vault, _clock, order = world

    def refund_meanwhile() -> None:
        if repository.get(order.id).status == "minting":
            repository.transition(order.id, OrderStatus.REFUNDED, refund_reason="mint_failed")

    vault.before_sending = refund_meanwhile
    accept(settlement, order)
    assert vault.sent == [] and vault.used == set()
    assert repository.get(order.id).mint_tx_hash is None


def test_a_refund_decided_on_an_old_attempt_is_refused_once_a_new_one_is_recorded(world: World) -> None:
    _settlement, repository, _node, _vault, _clock, order = world
    repository.transition(order.id, OrderStatus.PAYMENT_HELD, amount_paid_msat=AMOUNT_MSAT)
    repository.transition(order.id, OrderStatus.MINTING)
    assert repository.record_mint_tx(order.id, "0xa", 7, replacing=None)
    assert not repository.record_mint_tx(order.id, "0xb", 8, replacing=None), "0xa is the live attempt"
    with pytest.raises(ConcurrentChange):
        repository.transition(order.id, OrderStatus.REFUNDED, unless_mint_changed_from=None)
    assert repository.get(order.id).status == "minting"


def test_a_mint_deferred_for_want_of_a_free_lane_signs_nothing_and_the_next_pass_mints(world: World) -> None:
    settlement, repository, node, vault, _clock, order = world
    vault.lanes_free = False
    accept(settlement, order)
    stored = repository.get(order.id)
    assert (stored.status, stored.mint_tx_hash, vault.signed, node.calls) == ("minting", None, [], [])

    vault.lanes_free = True
    resume(settlement, order.id)
    assert repository.get(order.id).status == "completed"
    assert node.calls == ["settle"] and len(vault.sent) == 1


def test_lnd_answering_unknown_is_not_a_cancelled_htlc(world: World) -> None:
    settlement, repository, node, vault, _clock, order = world
    repository.transition(order.id, OrderStatus.PAYMENT_HELD, amount_paid_msat=AMOUNT_MSAT,
                          hold_deadline=NOW + timedelta(seconds=120))
    node.state = InvoiceState.UNKNOWN
    resume(settlement, order.id)
    assert (repository.get(order.id).status, node.calls, vault.signed) == ("payment_held", [], [])


def test_no_mint_when_too_few_blocks_are_left_before_the_htlc_expires(world: World) -> None:
    settlement, repository, node, vault, _clock, order = world
    node.height = TIP_HEIGHT + 144 - settlement.rules.min_htlc_blocks_to_mint + 1
    accept(settlement, order)
    stored = repository.get(order.id)
    assert (stored.status, stored.refund_reason, vault.signed) == ("refunded", "htlc_expiring", [])


def test_an_undecided_mint_is_voided_as_the_htlc_nears_expiry_even_if_the_node_knows_it(world: World) -> None:
    settlement, repository, node, vault, _clock, order = world
    vault.uncertain = True
    accept(settlement, order)
    vault.fate = MintStatus(MintFate.PENDING, "RECEIVED")
    node.height = TIP_HEIGHT + 144 - settlement.rules.void_mint_blocks_before_expiry
    resume(settlement, order.id)
    assert (repository.get(order.id).status, vault.voided, node.calls) == ("minting", [(0, "0xa11ce")], [])


def test_the_hold_bound_counts_from_when_lnd_accepted_the_htlc(world: World) -> None:
    settlement, repository, _node, _vault, _clock, order = world
    accepted_at = NOW - timedelta(seconds=100)
    accept(settlement, order, accepted_at=accepted_at)
    stored = repository.get(order.id)
    assert stored.hold_deadline == accepted_at + timedelta(seconds=settlement.rules.max_hold_s)
    # 100 s of a 120 s bound were gone before we noticed: too late to start a mint.
    assert (stored.status, stored.refund_reason) == ("refunded", "quote_expired")


def test_an_overpaid_htlc_is_refunded_whole(world: World) -> None:
    settlement, repository, node, vault, _clock, order = world
    accept(settlement, order, paid_msat=2 * AMOUNT_MSAT)
    stored = repository.get(order.id)
    assert (stored.status, stored.refund_reason, node.calls, vault.signed) == ("refunded", "overpaid", ["cancel"], [])


# -- the two sides of the slippage bound ------------------------------------------------------------------------


def btc_usd_moved(bps: int) -> Price:
    """The oracle's price now, `bps` basis points from the quote's (negative: BTC fell)."""
    return Price(QUOTED_BTC_USD * (1 + Decimal(bps) / 10_000), int(NOW.timestamp()))


def test_btc_falling_beyond_the_operators_bound_is_refunded_whatever_the_buyer_allows(world: World) -> None:
    """A fall sells VUSD below the oracle: the operator loses, so the operator's bound (max_price_drop_bps) decides,
    not the buyer's 500 bps."""
    settlement, repository, node, vault, _clock, _order = world
    assert settlement.rules.max_price_drop_bps == 50  # the default: 60 bps is beyond it, well within the buyer's
    order = awaiting_payment(repository, max_slippage_bps=500, preimage=bytes([1]) * 32)
    vault.price = btc_usd_moved(-60)
    accept(settlement, order)
    stored = repository.get(order.id)
    assert (stored.status, stored.refund_reason, vault.signed, node.calls) == (
        "refunded", "slippage_exceeded", [], ["cancel"])


def test_btc_rising_within_the_buyers_bound_is_minted_though_beyond_the_operators(world: World) -> None:
    """A rise makes the buyer's sats buy less than they are now worth: the buyer loses, so the buyer's 500 bps
    decide, and 60 bps (beyond the operator's 50 bps fall bound) is minted."""
    settlement, repository, node, vault, _clock, _order = world
    preimage = bytes([2]) * 32
    order = awaiting_payment(repository, max_slippage_bps=500, preimage=preimage)
    vault.price = btc_usd_moved(60)
    accept(settlement, order)
    stored = repository.get(order.id)
    assert (stored.status, stored.refund_reason, node.calls) == ("completed", None, ["settle"])
    assert hashlib.sha256(preimage).digest() in vault.used


def test_minted_order_whose_htlc_was_cancelled_goes_to_failed_not_a_loop(world: World) -> None:
    settlement, repository, node, _vault, _clock, order = world
    node.settle_fails = True
    with pytest.raises(LightningError):  # the worker logs it and retries on its next pass
        accept(settlement, order)  # mints, then settle fails while lnd still holds the HTLC: stays minted
    assert repository.get(order.id).status == "minted"

    node.state = InvoiceState.CANCELED
    resume(settlement, order.id)

    assert repository.get(order.id).status == OrderStatus.FAILED.value


def test_no_mint_when_the_node_no_longer_holds_the_htlc(world: World) -> None:
    settlement, repository, node, vault, _clock, order = world
    repository.transition(order.id, OrderStatus.PAYMENT_HELD, amount_paid_msat=AMOUNT_MSAT,
                          hold_deadline=NOW + timedelta(seconds=120))
    node.state = InvoiceState.CANCELED
    resume(settlement, order.id)

    assert repository.get(order.id).status == "refunded" and vault.used == set()


def test_a_mint_landing_on_a_refunded_order_is_logged_at_error(world: World, caplog: pytest.LogCaptureFixture) -> None:
    settlement, repository, _node, vault, _clock, order = world
    vault.uncertain = True
    accept(settlement, order)
    repository.transition(order.id, OrderStatus.REFUNDED, refund_reason="mint_failed")  # e.g. by hand
    vault.used.add(PAYMENT_HASH)
    stale = repository.get(order.id)
    stale.status = "minting"
    vault.fate = MintStatus(MintFate.LANDED, "ACCEPTED_ON_L2")
    with caplog.at_level(logging.INFO, logger="volta.settlement"):
        resume(settlement, order.id, stale)
    assert [record.levelno for record in caplog.records if "needs an operator" in record.message] == [logging.ERROR]


# -- reconciliation ---------------------------------------------------------------------------------


def test_reconciliation_mints_again_a_completed_order_whose_mint_was_rolled_back(world: World) -> None:
    settlement, repository, node, vault, _clock, order = world
    accept(settlement, order)
    assert repository.get(order.id).status == "completed"
    vault.used.clear()  # a lost block took the mint away
    vault.fate = MintStatus(MintFate.DEAD, "not found; nonce used", known_to_node=False)

    findings = Reconciliation(repository, node, vault, KEYS).run(since=NOW - timedelta(days=1))

    assert [(f.kind, f.repaired) for f in findings] == [(FindingKind.MINT_ROLLED_BACK, True)]
    assert PAYMENT_HASH in vault.used and repository.get(order.id).mint_tx_hash == "0xfeed1"


def test_reconciliation_cancels_a_refunded_order_still_held_and_fails_one_the_vault_contradicts(world: World) -> None:
    settlement, repository, node, vault, _clock, order = world
    accept(settlement, order, paid_msat=2 * AMOUNT_MSAT)  # refunded
    node.state = InvoiceState.ACCEPTED  # the cancel never reached lnd
    reconciliation = Reconciliation(repository, node, vault, KEYS)
    assert [f.kind for f in reconciliation.run(since=NOW - timedelta(days=1))] == [FindingKind.HTLC_STILL_HELD]
    assert node.state is InvoiceState.CANCELED

    vault.used.add(PAYMENT_HASH)
    assert [f.kind for f in reconciliation.run(since=NOW - timedelta(days=1))] == [FindingKind.CONTRADICTION]
    assert repository.get(order.id).status == "failed"
