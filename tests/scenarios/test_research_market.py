"""The research model's market: regimes from real BTC/USD history, fat tails, a lagging oracle, the protocol's
risk with an interior optimum, and the free option."""

from __future__ import annotations

import numpy as np
import pytest

from scenarios.free_option import extraction, usd_per_hour
from scenarios.market import (
    Oracle,
    PriceModel,
    cvar,
    garch_t_fit,
    parkinson_annualised,
    parkinson_median_bias,
    regimes_from_history,
    regimes_from_ranges,
    simulate_grid,
)
from scenarios.protocol_risk import RiskPolicy, evaluate, honest_delays, optimum, sweep


def test_regimes_come_from_the_real_history() -> None:
    regimes = regimes_from_history()
    assert regimes.months == 84 and regimes.first_month.startswith("2018-01")  # 2018-2024, monthly
    assert 0.15 < regimes.calm < regimes.typical < regimes.stressed < 3.0
    assert 0.4 < regimes.typical < 0.9  # BTC's median monthly realised volatility since 2018
    assert "backtesting" in regimes.source


def test_parkinson_recovers_a_known_volatility() -> None:
    """On simulated months of a known volatility: the estimator is unbiased for the variance, and the median
    regime, corrected for the estimator's median bias, lands on the volatility."""
    rng = np.random.default_rng(4)
    month_sd = 0.6 / np.sqrt(12)
    paths = np.cumsum(rng.standard_normal((3000, 2000)) * month_sd / np.sqrt(2000), axis=1)
    high, low = np.exp(np.maximum(paths.max(axis=1), 0)), np.exp(np.minimum(paths.min(axis=1), 0))
    raw = parkinson_annualised(high, low, 12)
    assert np.sqrt(np.mean(raw**2)) == pytest.approx(0.6, rel=0.04)
    assert 0.8 < parkinson_median_bias() < 0.95
    _, typical, _ = regimes_from_ranges(high, low, 12)
    assert typical == pytest.approx(0.6, rel=0.04)


def test_monthly_returns_cannot_show_the_tails() -> None:
    fit = garch_t_fit()
    assert fit["months"] == 83 and abs(fit["monthly_excess_kurtosis"]) < 2 and fit["nu"] > 20


@pytest.mark.parametrize("nu", [5.0, 6.0, None])
def test_price_model_has_the_kurtosis_and_variance_it_promises(nu: float | None) -> None:
    model = PriceModel(0.6, nu)
    paths = model.paths(np.random.default_rng(1), 200_000, 12, 5.0).astype(float)
    moves = paths[:, -1]  # one minute
    excess = float(((moves - moves.mean()) ** 4).mean() / moves.var() ** 2 - 3)
    target_sd = 0.6 * np.sqrt(60 / (365.25 * 86400))
    assert moves.std() == pytest.approx(target_sd, rel=0.03)
    if nu is None:
        assert abs(excess) < 0.1
    else:
        assert excess == pytest.approx(model.excess_kurtosis(), rel=0.35)  # sample kurtosis is noisy
        assert excess > 2


@pytest.mark.parametrize(("stall", "max_lag_s"), [(0.0, 10.0), (1.0, 60.0)])
def test_oracle_lags_by_at_most_its_interval(stall: float, max_lag_s: float) -> None:
    grid = simulate_grid(PriceModel(1.0, None), Oracle(10.0, 60.0, stall), 500, 300, dt_s=5.0, seed=2)
    points = grid.market.shape[1]
    for row in range(0, 500, 50):
        for k in range(grid.quote_index, points):
            lags = [lag for lag in range(int(max_lag_s / 5) + 1) if grid.market[row, k - lag] == grid.oracle[row, k]]
            assert lags, f"path {row} step {k}: oracle older than {max_lag_s} s"
    stale = (grid.oracle != grid.market)[:, grid.quote_index:].mean()
    assert stale > (0.3 if stall == 0 else 0.8)  # it really lags


def test_cvar_is_the_mean_of_the_worst_tail() -> None:
    losses = np.arange(1000, dtype=float)
    assert cvar(losses, 0.99) == pytest.approx(np.mean(np.arange(990, 1000)))


def test_without_price_moves_value_is_spread_times_completion_less_exposure() -> None:
    grid = simulate_grid(PriceModel(1e-9, None), Oracle(), 2000, 600, seed=1)
    delays = honest_delays(np.random.default_rng(3), 2000)
    policy = RiskPolicy(spread_bps=50, exposure_cost_bps_per_hour=36)
    cell = evaluate(grid, delays, 300, 50, policy)
    spread_gain = (1 / (1 - 0.005) - 1) * 1e4
    assert cell.expected_loss_bps == 0 and cell.cvar99_bps == 0
    assert cell.mean_gain_bps == pytest.approx(spread_gain * cell.completion, rel=1e-6)
    open_s = np.minimum(np.nan_to_num(delays, nan=300), 300).mean()
    assert cell.value_bps == pytest.approx(cell.mean_gain_bps - open_s / 3600 * 36, rel=1e-6)


def test_the_recommended_defaults_are_an_interior_optimum() -> None:
    """With a price on open exposure, neither the shortest nor the longest lifetime nor the edge bounds win."""
    grid = simulate_grid(PriceModel(0.6, 5.0), Oracle(stall_probability=1.0), 6000, 1800, seed=5)
    delays = honest_delays(np.random.default_rng(6), 6000)
    values = sweep(grid, delays, [30, 120, 300, 900, 1800], [10, 25, 50, 100, 200],
                   RiskPolicy(exposure_cost_bps_per_hour=10))["value_bps"]
    _, _, interior = optimum(values)
    assert interior
    free = sweep(grid, delays, [30, 120, 300, 900, 1800], [10, 25, 50, 100, 200],
                 RiskPolicy(exposure_cost_bps_per_hour=0))["value_bps"]
    assert np.argmax(free.max(axis=1)) == 4  # exposure free: the longest lifetime wins; the cost makes it interior


def test_free_option_closed_by_a_fresh_oracle_and_a_bound_at_the_spread() -> None:
    grid = simulate_grid(PriceModel(1.2, 5.0), Oracle(update_interval_s=5.0), 4000, 900, seed=7)
    closed = extraction(grid, 300, drop_bound_bps=25, spread_bps=50)
    assert closed.hindsight_bps < 0.05  # a fall past the spread is refunded before a payer can profit


def test_free_option_grows_with_lifetime_bound_and_a_stale_oracle() -> None:
    fresh = simulate_grid(PriceModel(1.2, 5.0), Oracle(), 6000, 1800, seed=8)
    stale = simulate_grid(PriceModel(1.2, 5.0), Oracle(stall_probability=1.0), 6000, 1800, seed=8)
    short, long = extraction(stale, 120, 50, 50), extraction(stale, 1800, 50, 50)
    assert long.optimal_bps > short.optimal_bps > 0
    assert long.hindsight_bps >= long.optimal_bps and long.hindsight_bps >= long.naive_bps
    assert extraction(stale, 300, 100, 50).optimal_bps > extraction(stale, 300, 25, 50).optimal_bps
    assert extraction(stale, 300, 50, 50).hindsight_bps > extraction(fresh, 300, 50, 50).hindsight_bps
    assert usd_per_hour(1.0) == pytest.approx(30.0)  # 1 bp of 1000 VUSD, 300 quotes an hour
