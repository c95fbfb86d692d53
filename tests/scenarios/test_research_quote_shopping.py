"""Quote shopping: best of k quotes under the rate limits, its closed forms, and the Atomiq LP's quote."""

from __future__ import annotations

import numpy as np
import pytest

from scenarios.free_option import extraction
from scenarios.market import Grid, Oracle, PriceModel, simulate_grid
from scenarios.quote_shopping import (
    UNBOUNDED_BPS,
    AtomiqQuote,
    RateLimits,
    best_gain,
    burst,
    closed_form_bps,
    fixed_threshold,
    lag_free_grid,
    per_hour_usd,
    quote_offsets,
    rate_per_hour,
    shop,
)
from service.config import Settings


@pytest.fixture(scope="module")
def grid() -> Grid:
    """Stressed BTC (130 %/yr) with a lagging oracle, so the option is worth something at modest N."""
    return simulate_grid(PriceModel(1.3, 5.0), Oracle(update_interval_s=10, max_age_s=60), 6_000, 600, seed=11)


def test_limits_are_read_from_the_services_settings() -> None:
    limits = RateLimits.from_settings()
    assert limits.per_ip == Settings.model_fields["rate_limit_orders_per_ip"].default
    assert limits.per_address == Settings.model_fields["rate_limit_orders_per_address"].default
    assert rate_per_hour("30/minute;300/hour") == 300 and rate_per_hour("10/minute;100/day") == pytest.approx(100 / 24)
    assert burst("30/minute;300/hour", 300) == 150 and burst("10/minute;100/day", 300) == 50


def test_the_rate_limit_caps_k() -> None:
    limits = RateLimits("30/minute;300/hour", "10/minute;100/day", 5000)
    assert limits.k_cap(300, oracle_interval_s=1) == 25  # 300 an hour: one quote every 12 s
    assert limits.k_cap(300, oracle_interval_s=1, ips=4) == 100  # more IPs, more quotes ...
    assert limits.k_cap(300, oracle_interval_s=10, ips=4) == 30  # ... but no more distinct strikes than updates
    assert limits.k_cap(300, oracle_interval_s=1, fresh_addresses=False) == 1  # one address: 100 a day
    assert limits.quotes_per_hour(ips=3) == 900
    tighter = RateLimits("30/minute;60/hour", "10/minute;100/day", 5000)
    assert tighter.k_cap(300, oracle_interval_s=1) == 5
    assert AtomiqQuote().k_cap(90) == 6  # 100 requests / 5 min allows 30 in 90 s; a 15 s price cache, 6 strikes


def test_quotes_are_spread_over_one_lifetime() -> None:
    offsets = quote_offsets(25, 300, 5.0)
    assert offsets[0] == 0 and offsets[-1] < 60 and len(offsets) == 25
    assert len(quote_offsets(100, 300, 5.0)) == 60  # never more than one per grid step


def test_best_of_one_is_the_single_free_option(grid: Grid) -> None:
    for lifetime, bound, spread in ((300, 50, 50), (600, 100, 50), (120, 25, 25)):
        single = extraction(grid, lifetime, bound, spread)
        one = shop(grid, 1, lifetime, bound, spread)
        assert one.per_order_bps == pytest.approx(single.optimal_bps, abs=1e-12)
        assert one.hindsight_bps == pytest.approx(single.hindsight_bps, abs=1e-12)
        assert one.threshold_bps == single.threshold_bps


def test_the_best_gain_never_falls_below_any_single_quotes(grid: Grid) -> None:
    one = best_gain(grid, 1, 300, 50, 50)
    many = best_gain(grid, 25, 300, 50, 50)
    assert many.shape == one.shape and np.all(many >= one)


def test_extraction_grows_with_k_and_with_lifetime(grid: Grid) -> None:
    by_k = [shop(grid, k, 300, 50, 50) for k in (1, 4, 25)]
    assert by_k[0].hindsight_bps < by_k[1].hindsight_bps < by_k[2].hindsight_bps  # pathwise larger options
    assert by_k[2].per_order_bps > 1.3 * by_k[0].per_order_bps  # a stopping payer, out of sample
    by_lifetime = [shop(grid, 10, lifetime, 50, 50).per_order_bps for lifetime in (60, 300, 600)]
    assert by_lifetime[0] < by_lifetime[1] < by_lifetime[2]


def test_a_tighter_bound_and_a_wider_spread_take_less(grid: Grid) -> None:
    assert shop(grid, 10, 300, 25, 50).per_order_bps < shop(grid, 10, 300, 50, 50).per_order_bps
    assert shop(grid, 10, 300, 50, 100).per_order_bps < shop(grid, 10, 300, 50, 50).per_order_bps
    assert shop(grid, 10, 300, 50, 50).per_order_bps <= shop(grid, 10, 300, UNBOUNDED_BPS, 50,
                                                               buyer_bound_bps=UNBOUNDED_BPS).per_order_bps


def test_the_shoppers_cost_lowers_what_they_take(grid: Grid) -> None:
    free, costly = shop(grid, 10, 300, 50, 50), shop(grid, 10, 300, 50, 50, payer_cost_bps=10)
    assert costly.payer_net_bps < free.payer_net_bps and costly.paid_share <= free.paid_share
    assert costly.per_order_bps >= costly.payer_net_bps  # the protocol loses the shopper's net plus their cost
    assert per_hour_usd(1.0, k=1, quotes_per_hour=300) == pytest.approx(30.0)  # 1 bp of 1000 VUSD, 300 times
    assert per_hour_usd(1.0, k=10, quotes_per_hour=300) == pytest.approx(3.0)


@pytest.mark.parametrize(("continuum", "tolerance"), [(False, 0.05), (True, 0.10)])
def test_closed_form_matches_monte_carlo(continuum: bool, tolerance: float) -> None:
    """No oracle lag, Gaussian: one quote (barrier) and quotes at every grid step (drawdown, Levy). The
    continuum's closed form is for quotes at every instant; quotes every second fall short by a few percent."""
    volatility, lifetime, dt, bound, spread, threshold = 1.5, 120, 1.0, 60, 20, 20
    paths = lag_free_grid(volatility, 12_000, lifetime, dt, seed=5)
    k = int(lifetime / dt) if continuum else 1
    mean, se = fixed_threshold(best_gain(paths, k, lifetime, bound, spread), threshold)
    form = closed_form_bps(volatility, lifetime, bound, spread, threshold, continuum, monitoring_dt_s=dt)
    assert abs(mean - form) < 3 * se + tolerance * form, (mean, se, form)


def test_the_continuum_bounds_one_quote_and_both_grow_with_volatility() -> None:
    args = (120, 60, 20, 20)
    for volatility in (0.6, 1.2):
        assert closed_form_bps(volatility, *args, continuum=True) > closed_form_bps(volatility, *args, continuum=False)
    assert closed_form_bps(1.2, *args, continuum=False) > closed_form_bps(0.6, *args, continuum=False)
    assert closed_form_bps(1.2, 120, 20, 20, 0, continuum=True) == 0.0  # bound at the spread, no lag: nothing


def test_the_atomiq_option_has_no_bound_and_its_fee_as_cushion() -> None:
    quote = AtomiqQuote()
    assert (quote.lifetime_s, quote.escrow_timeout_s, quote.fee_bps, quote.price_cache_s) == (90.0, 3600.0, 30.0, 15.0)
    assert quote.requests_per_hour_per_ip == 1200
    paths = simulate_grid(PriceModel(1.3, 5.0), Oracle(update_interval_s=15, max_age_s=15), 4_000, 900, seed=3)
    at_once = shop(paths, 1, 90, UNBOUNDED_BPS, 30, buyer_bound_bps=UNBOUNDED_BPS)
    withheld = shop(paths, 1, 900, UNBOUNDED_BPS, 30, buyer_bound_bps=UNBOUNDED_BPS)
    assert 0 < at_once.per_order_bps < withheld.per_order_bps
