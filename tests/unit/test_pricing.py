from decimal import Decimal

import pytest

from service.domain.pricing import (
    StalePrice,
    ensure_fresh,
    price_from_oracle,
    price_move_bps,
    quote_for_sat,
    quote_for_vusd,
    slippage_refusal,
    vusd_base_units,
    vusd_from_base_units,
)


def test_vusd_quote_charges_the_spread_and_rounds_up_to_whole_sats() -> None:
    quote = quote_for_vusd(Decimal("25.00"), Decimal("100000"), spread_bps=50)
    # 25 USD at 100,000 * (1 - 0.005) USD/BTC = 0.000251256... BTC = 25,125.628 sat, rounded up.
    assert quote.amount_msat == 25_126_000
    assert quote.vusd_amount == Decimal("25.00")


def test_sat_quote_gives_vusd_rounded_down_to_cents() -> None:
    quote = quote_for_sat(100_000, Decimal("97000"), spread_bps=50)
    assert quote.vusd_amount == Decimal("96.51")  # 0.001 BTC * 96,515 = 96.515 -> 96.51
    assert quote.amount_msat == 100_000_000


def test_a_price_move_is_signed() -> None:
    assert price_move_bps(Decimal("100"), Decimal("101")) == Decimal("100")
    assert price_move_bps(Decimal("100"), Decimal("99")) == Decimal("-100")


@pytest.mark.parametrize(("moved_bps", "refused"), [
    (0, False), (400, False), (501, True),  # BTC rose: the buyer's bound (500) decides
    (-50, False), (-51, True), (-400, True),  # BTC fell: the operator's bound (50) decides, whatever the buyer chose
])
def test_each_side_of_the_slippage_bound_belongs_to_whoever_loses(moved_bps: int, refused: bool) -> None:
    refusal = slippage_refusal(Decimal(moved_bps), buyer_bound_bps=500, protocol_bound_bps=50)
    assert (refusal is not None) == refused, refusal


def test_oracle_price_and_staleness() -> None:
    price = price_from_oracle(9_700_012_345_678, 8, updated_at_unix=1_000)
    assert price.btc_usd == Decimal("97000.12345678")
    assert ensure_fresh(price, now_unix=1_500, max_age_s=600) is price
    with pytest.raises(StalePrice):
        ensure_fresh(price, now_unix=1_601, max_age_s=600)


def test_vusd_base_units_have_18_decimals() -> None:
    assert vusd_base_units(Decimal("25.01")) == 25_010_000_000_000_000_000


def test_base_units_back_to_vusd() -> None:
    assert vusd_from_base_units(25_010_000_000_000_000_000) == Decimal("25.01")
    assert vusd_from_base_units(vusd_base_units(Decimal("0.000000000000000001"))) == Decimal("1E-18")
