import pytest
from pydantic import ValidationError

from service.domain.orders import OrderRequest, normalize_starknet_address
from service.domain.states import IllegalTransition, OrderStatus, check_transition


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
