from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError

from service.config import Settings
from service.container import order_rules
from service.domain.orders import OrderRejected, OrderRequest, PlaceOrder, normalize_starknet_address
from service.domain.ports import HoldInvoice, HoldInvoiceNode, InvoiceStatus, PriceSource
from service.domain.preimages import PreimageKeys
from service.domain.pricing import Price
from service.domain.states import IllegalTransition, OrderStatus, check_transition
from service.storage.database import make_engine, make_session_factory, migrate
from service.storage.orders import OrderRepository


def test_address_is_normalized_to_64_hex_digits() -> None:
    assert normalize_starknet_address(" 0xABC ") == "0x" + "0" * 61 + "abc"


@pytest.mark.parametrize("bad", ["", "abc", "0x", "0x0", "0xzz", "0x" + "f" * 64, "0x" + "1" * 65, "0x8" + "0" * 62,
                                 "0x_1", "0x 1", "0X1", "1", "0x1_0", "0x\u0661", "+0x1", "0x-1"])
def test_bad_addresses_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        normalize_starknet_address(bad)


@pytest.mark.parametrize("body", [
    {"starknet_address": "0x1"},
    {"starknet_address": "0x1", "vusd_amount": "1", "amount_sat": 1000},
    {"starknet_address": "0x1", "vusd_amount": "-1"},
    {"starknet_address": "0x1", "vusd_amount": "1.001"},
    {"starknet_address": "0x1", "vusd_amount": "NaN"},
    {"starknet_address": "0x1", "vusd_amount": "lots"},
    {"starknet_address": "0x1", "amount_sat": 0},
    {"starknet_address": "0x1", "vusd_amount": "1", "surprise": True},
    {"starknet_address": "0x1", "vusd_amount": "1", "max_slippage_bps": -1},
    # Only canonical forms: JSON booleans are not numbers, numbers are not decimal strings, and Decimal's
    # own extras (exponents, underscores, signs, other scripts' digits) are not amounts.
    {"starknet_address": "0x1", "amount_sat": True},
    {"starknet_address": "0x1", "amount_sat": "1000"},
    {"starknet_address": "0x1", "amount_sat": 1000.0},
    {"starknet_address": "0x1", "vusd_amount": 25},
    {"starknet_address": "0x1", "vusd_amount": 25.5},
    {"starknet_address": "0x1", "vusd_amount": "1e2"},
    {"starknet_address": "0x1", "vusd_amount": "1_000"},
    {"starknet_address": "0x1", "vusd_amount": "+5"},
    {"starknet_address": "0x1", "vusd_amount": "05.00"},
    {"starknet_address": "0x1", "vusd_amount": "\u0665"},
    {"starknet_address": "0x1", "vusd_amount": ".5"},
    {"starknet_address": "0x1", "vusd_amount": "1", "max_slippage_bps": True},
    {"starknet_address": "0x1", "vusd_amount": "1", "max_slippage_bps": "50"},
    {"starknet_address": 1, "vusd_amount": "1"},
])
def test_bad_requests_are_refused(body: dict) -> None:
    with pytest.raises(ValidationError):
        OrderRequest.model_validate(body)


def test_only_forward_transitions_are_allowed() -> None:
    check_transition("o", OrderStatus.AWAITING_PAYMENT, OrderStatus.PAYMENT_HELD)
    check_transition("o", OrderStatus.MINTED, OrderStatus.COMPLETED)
    with pytest.raises(IllegalTransition):
        check_transition("o", OrderStatus.MINTED, OrderStatus.REFUNDED)  # never refund after VUSD was minted
    with pytest.raises(IllegalTransition):
        check_transition("o", OrderStatus.COMPLETED, OrderStatus.MINTING)


@pytest.mark.parametrize("amount", ["1", "25.00", "25.5", "0.01", "1000"])
def test_plain_decimal_amounts_are_accepted(amount: str) -> None:
    assert OrderRequest.model_validate({"starknet_address": "0x1", "vusd_amount": amount}).vusd_amount == amount


# -- the oracle price's age at quote --------------------------------------------------------------------------

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


class InvoicingNode(HoldInvoiceNode):
    """Makes hold invoices; an order being placed asks nothing else of the node."""

    def create_hold_invoice(self, preimage: bytes, payment_hash: bytes, amount_msat: int, memo: str, expiry_s: int,
                            description_hash: bytes | None = None) -> HoldInvoice:
        return HoldInvoice(payment_hash.hex(), "lnbcrt1fake")

    def settle_hold_invoice(self, preimage: bytes) -> None:
        raise NotImplementedError

    def cancel_hold_invoice(self, payment_hash: bytes) -> None:
        raise NotImplementedError

    def invoice_status(self, payment_hash: bytes) -> InvoiceStatus:
        raise NotImplementedError

    def block_height(self) -> int:
        raise NotImplementedError


class Oracle(PriceSource):
    def __init__(self) -> None:
        self.age_s = 0

    def btc_usd(self) -> Price:
        return Price(Decimal("97000"), int(NOW.timestamp()) - self.age_s)


def test_the_oldest_price_quoted_on_is_a_minute_by_default() -> None:
    assert Settings().max_price_age_s == 60 == order_rules(Settings()).max_price_age_s


def test_a_quote_on_a_price_older_than_max_price_age_s_is_refused_as_stale(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'volta.sqlite'}"
    migrate(url)
    rules, oracle = order_rules(Settings()), Oracle()
    place = PlaceOrder(rules, OrderRepository(make_session_factory(make_engine(url)), lambda: NOW), InvoicingNode(),
                       oracle, lambda: NOW, PreimageKeys.parse(PreimageKeys.generate()))
    request = OrderRequest(starknet_address="0x1", vusd_amount="25.00")

    oracle.age_s = rules.max_price_age_s + 1
    with pytest.raises(OrderRejected) as refused:
        place.place(request)
    assert (refused.value.code, refused.value.http_status) == ("price_stale", 503)

    oracle.age_s = rules.max_price_age_s  # as old as allowed: quoted
    assert place.place(request).status == "awaiting_payment"
