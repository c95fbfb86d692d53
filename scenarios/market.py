"""BTC/USD for the risk questions: volatility regimes from real history, fat tails, and an oracle that lags.

- **Regimes from real data.** `btc_monthly()` reads the BTC/USD monthly OHLC that the `backtesting` package
  (PyPI, AGPL-3.0; its test data, 2012-2024) ships. Each month's annualised volatility is the Parkinson
  range estimator sqrt(ln(H/L)^2 / (4 ln 2)) * sqrt(12), corrected for its median bias (one period's estimate
  is below the truth more often than not); `regimes_from_history` takes the 10th, 50th and 90th percentiles
  since 2018 as the calm, typical and stressed regimes (the spread between them includes the estimator's own
  noise, so calm and stressed are a little further apart than the true regimes). A month's range sees every move in
  it, so it measures volatility better than the 84 monthly closes do.
- **Fat tails.** A GARCH(1,1)-t fitted (PyPI `arch`) to those monthly returns is reported by `garch_t_fit`,
  but monthly aggregation washes the tails out (the fit is near-Gaussian); intraday returns are fat-tailed
  and converge to the Gaussian only slowly with the sampling period (Takaishi 2018, Physica A 506, 507-519,
  doi:10.1016/j.physa.2018.04.046, on 1-min returns). No registry package here ships intraday BTC data, so
  the tail is an explicit parameter: `PriceModel.tail_nu`. Each simulated quote draws its own variance from
  an inverse-gamma law (a Gaussian scale mixture), so the move over *any* horizon within the quote is
  Student-t with `tail_nu` degrees of freedom and the regime's variance: excess kurtosis 6 / (nu - 4).
- **The oracle** publishes the market price every `update_interval_s` (a random phase per quote); when it
  stalls it publishes only every `Oracle.max_age_s`, the oldest price the service accepts (`max_price_age_s`,
  60 s by default in service/config.py). The service prices the quote and checks the operator's bound on
  the oracle; the protocol's sats are worth the *market* price when it settles.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from scenarios.stats import SECONDS_PER_YEAR

DATA_SOURCE = ("BTC/USD monthly OHLC shipped by the PyPI package `backtesting` (AGPL-3.0), "
               "backtesting/test/BTCUSD.csv")


def btc_monthly(since: str = "2012-01-01") -> Any:
    """The monthly BTC/USD OHLC as a pandas DataFrame (index: month end)."""
    import warnings

    with warnings.catch_warnings():  # backtesting warns about Bokeh output when imported in a notebook
        warnings.simplefilter("ignore")
        from backtesting.test import BTCUSD

    return BTCUSD[BTCUSD.index >= since]


def parkinson_annualised(high: np.ndarray, low: np.ndarray, periods_per_year: float = 12) -> np.ndarray:
    """Each period's volatility from its high-low range (Parkinson 1980), annualised."""
    ratio = np.log(np.asarray(high, dtype=float) / np.asarray(low, dtype=float))
    return np.sqrt(ratio**2 / (4 * np.log(2)) * periods_per_year)


@dataclass(frozen=True)
class VolatilityRegimes:
    calm: float  # annualised, 10th percentile of monthly realised volatility
    typical: float  # median
    stressed: float  # 90th percentile
    months: int
    first_month: str
    last_month: str
    source: str = DATA_SOURCE

    def as_dict(self) -> dict[str, float]:
        return {"calm": self.calm, "typical": self.typical, "stressed": self.stressed}


@lru_cache(maxsize=1)
def parkinson_median_bias(paths: int = 20_000, steps: int = 2_000) -> float:
    """Median of one period's Parkinson estimate over the true volatility, for Brownian motion (about 0.88):
    the estimator is unbiased for the variance, so a single period's estimate is below the truth more often
    than not. Computed once by simulation (seed 0; fine-grid ranges, so discretisation costs < 1 %)."""
    rng = np.random.default_rng(0)
    estimates = np.empty(paths)
    for start in range(0, paths, 2_000):
        walk = np.cumsum(rng.standard_normal((2_000, steps)) / np.sqrt(steps), axis=1)
        walk = np.concatenate([np.zeros((2_000, 1)), walk], axis=1)
        estimates[start:start + 2_000] = parkinson_annualised(np.exp(walk.max(axis=1)), np.exp(walk.min(axis=1)), 1)
    return float(np.median(estimates))


def regimes_from_ranges(high: np.ndarray, low: np.ndarray, periods_per_year: float = 12) -> tuple[float, ...]:
    """The 10th, 50th and 90th percentiles of the periods' volatility, each estimate divided by the
    estimator's median bias (so a constant volatility comes back as itself at the median)."""
    vol = parkinson_annualised(high, low, periods_per_year) / parkinson_median_bias()
    return tuple(float(q) for q in np.percentile(vol, [10, 50, 90]))


def regimes_from_history(since: str = "2018-01-01") -> VolatilityRegimes:
    data = btc_monthly(since)
    calm, typical, stressed = regimes_from_ranges(data["High"].to_numpy(), data["Low"].to_numpy())
    return VolatilityRegimes(calm, typical, stressed, len(data), str(data.index[0].date()),
                             str(data.index[-1].date()))


def garch_t_fit(since: str = "2018-01-01") -> dict[str, float]:
    """GARCH(1,1) with Student-t innovations on the monthly log returns (percent), with the returns' own
    excess kurtosis: what monthly data can and cannot say about tails."""
    from arch import arch_model

    close = btc_monthly(since)["Close"].to_numpy(dtype=float)
    returns = np.diff(np.log(close)) * 100
    fit = arch_model(returns, mean="Zero", vol="GARCH", p=1, q=1, dist="t").fit(disp="off")
    params = fit.params
    centred = returns - returns.mean()
    kurtosis = float((centred**4).mean() / (centred**2).mean() ** 2 - 3)
    return {"nu": float(params["nu"]), "alpha": float(params["alpha[1]"]), "beta": float(params["beta[1]"]),
            "persistence": float(params["alpha[1]"] + params["beta[1]"]), "monthly_excess_kurtosis": kurtosis,
            "months": len(returns)}


@dataclass(frozen=True)
class PriceModel:
    """Driftless log price on a grid of `dt_s` seconds; Student-t over every horizon (None: Gaussian)."""

    volatility: float  # annualised
    tail_nu: float | None = 5.0  # an assumption (see the module's docstring): excess kurtosis 6 at nu = 5

    def excess_kurtosis(self) -> float:
        if self.tail_nu is None:
            return 0.0
        return 6 / (self.tail_nu - 4) if self.tail_nu > 4 else float("inf")

    def paths(self, rng: np.random.Generator, n: int, steps: int, dt_s: float) -> np.ndarray:
        """Log price relative to the first point, shape (n, steps + 1), float32 to keep memory small."""
        sigma_step = self.volatility * np.sqrt(dt_s / SECONDS_PER_YEAR)
        scale = np.full(n, sigma_step)
        if self.tail_nu is not None:  # variance ~ inverse gamma, unit mean: the horizon move is Student-t
            nu = self.tail_nu
            scale = scale * np.sqrt((nu - 2) / rng.chisquare(nu, n))
        increments = rng.standard_normal((n, steps), dtype=np.float32) * scale[:, None].astype(np.float32)
        out = np.zeros((n, steps + 1), dtype=np.float32)
        np.cumsum(increments, axis=1, out=out[:, 1:])
        return out


@dataclass(frozen=True)
class Oracle:
    update_interval_s: float = 10.0  # assumed: Pragma publishes "every few seconds" on mainnet (service/config.py)
    max_age_s: float = 60.0  # the service's max_price_age_s: the oldest price it accepts
    stall_probability: float = 0.0  # share of quotes during which the oracle publishes only every max_age_s

    def view(self, log_price: np.ndarray, dt_s: float, rng: np.random.Generator) -> np.ndarray:
        """What the oracle shows at each grid point: the market price at its last update."""
        n, points = log_price.shape
        interval = np.where(rng.random(n) < self.stall_probability, self.max_age_s, self.update_interval_s)
        phase = rng.uniform(0, 1, n) * interval
        t = np.arange(points) * dt_s
        last_update = np.floor((t[None, :] - phase[:, None]) / interval[:, None]) * interval[:, None] \
            + phase[:, None]
        index = np.clip(np.floor(last_update / dt_s).astype(np.int64), 0, points - 1)
        return np.take_along_axis(log_price, index, axis=1)


@dataclass(frozen=True)
class Grid:
    """Simulated market and oracle paths from `warmup_s` before the quote to `horizon_s` after it."""

    market: np.ndarray  # log price, shape (n, points)
    oracle: np.ndarray
    dt_s: float
    quote_index: int

    def at(self, seconds_after_quote: np.ndarray) -> np.ndarray:
        """Grid index of a time after the quote (rounded up: the HTLC arrives after the payer pressed send)."""
        steps = np.ceil(np.asarray(seconds_after_quote) / self.dt_s).astype(np.int64)
        return np.clip(self.quote_index + steps, 0, self.market.shape[1] - 1)


def simulate_grid(model: PriceModel, oracle: Oracle, n: int, horizon_s: float, dt_s: float = 5.0,
                  seed: int = 0) -> Grid:
    rng = np.random.default_rng(seed)
    warmup_steps = int(np.ceil(oracle.max_age_s / dt_s))
    steps = warmup_steps + int(np.ceil(horizon_s / dt_s)) + 1
    market = model.paths(rng, n, steps, dt_s)
    return Grid(market, oracle.view(market, dt_s, rng), dt_s, warmup_steps)


def cvar(losses: np.ndarray, level: float = 0.99) -> float:
    """The mean of the worst (1 - level) share of losses (expected shortfall); losses are positive."""
    losses = np.sort(np.asarray(losses, dtype=float))
    tail = max(int(np.ceil(round(len(losses) * (1 - level), 9))), 1)
    return float(losses[-tail:].mean())
