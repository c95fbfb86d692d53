"""Quote shopping: a payer who holds many quotes at once and pays only the best, under the service's rate limits.

A quote is a free option (scenarios/free_option.py): its strike is the oracle's price when it was made, and the
payer may pay while the service's check passes (the oracle has not fallen more than the operator's bound below
that strike). Quotes made at the same moment share one strike, so holding several is worth more than one only
when they were made at different moments: a **shopper** opens `k` quotes spread evenly over one quote lifetime
(from fresh Starknet addresses, so only the per-IP limit binds) and, at each moment, looks at the best quote
whose check still passes. Paying the best of `k` is a lookback option on the oracle's recent maximum: after a
fall, some quote was made near the top, and the one whose strike sits just inside the bound pays the most.

- **k is capped** by the rate limit (quotes per lifetime: `quotes_per_hour * lifetime / 3600`, with the
  per-minute limit as well) and by the oracle's cadence: quotes made between two oracle updates share a strike,
  so more than `lifetime / update_interval` quotes add nothing.
- **Per order** (what the service sees on the one order the shopper pays): the protocol's loss on it, in bps,
  averaged over shopping episodes (an episode that pays nothing counts 0).
- **Per hour**: a shopper who pays one order per `k` quotes makes `quotes_per_hour / k` episodes an hour. A
  shopper who pays *every* quote that is worth it takes `quotes_per_hour` single options an hour; which is more
  depends on what paying costs the shopper (`payer_cost_bps`: turning the VUSD back into BTC, an assumption).
- **Closed forms** (no oracle lag, Gaussian moves, a payer who pays when the gain reaches a threshold `h` or at
  the end if positive): one quote is a barrier option (reflection principle: the fall reaches level `a` with
  probability 2 Phi(-a / sd)); a continuum of quotes is the same with the drawdown from the running maximum in
  place of the fall, and by Levy's theorem (M - W has the law of |W| as a process) that is Brownian motion
  leaving (-a, a): an image series. Discrete monitoring is corrected by shifting the level by 0.5826 sd(dt)
  (Broadie, Glasserman & Kou 1997, Mathematical Finance 7(4), 325-349), twice for the drawdown (both its
  ends are sampled).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from limits import parse_many
from scipy import integrate, stats

from scenarios.free_option import THRESHOLDS_BPS, _first_or_last, payoffs
from scenarios.market import Grid
from scenarios.stats import SECONDS_PER_YEAR

UNBOUNDED_BPS = 1e9  # a check that never fails (an LP that does not look at the price again)
BGK_SHIFT = 0.5826  # -zeta(1/2) / sqrt(2 pi): the discrete-monitoring shift of a barrier, in sd(dt)


def rate_per_hour(limit: str) -> float:
    """The sustained rate a Flask-Limiter string allows (the tightest of its windows), per hour."""
    return min(item.amount * 3600 / item.get_expiry() for item in parse_many(limit))


def burst(limit: str, window_s: float) -> float:
    """The most requests the limit lets through in any `window_s` seconds (each window's allowance counted
    once per whole or partial window; fixed windows can admit up to twice that at a boundary, ignored here)."""
    return min(item.amount * np.ceil(window_s / item.get_expiry()) for item in parse_many(limit))


@dataclass(frozen=True)
class RateLimits:
    per_ip: str  # Flask-Limiter syntax, e.g. "30/minute;300/hour"
    per_address: str
    max_vusd_per_address_per_day: float

    @classmethod
    def from_settings(cls, settings: Any = None) -> RateLimits:
        """The service's limits: its `Settings` defaults, or the given settings' values."""
        from service.config import Settings

        def value(name: str) -> Any:
            return getattr(settings, name) if settings is not None else Settings.model_fields[name].default

        return cls(value("rate_limit_orders_per_ip"), value("rate_limit_orders_per_address"),
                   float(value("max_vusd_per_address_per_day")))

    def quotes_per_hour(self, ips: int = 1, fresh_addresses: bool = True) -> float:
        """Sustained quotes an hour: per-IP limit times IPs; without fresh addresses the per-address limit binds."""
        per_ip = rate_per_hour(self.per_ip) * ips
        return per_ip if fresh_addresses else min(per_ip, rate_per_hour(self.per_address))

    def k_cap(self, lifetime_s: float, oracle_interval_s: float, ips: int = 1, fresh_addresses: bool = True) -> int:
        """How many quotes with distinct strikes a shopper can hold within one lifetime."""
        by_rate = min(self.quotes_per_hour(ips, fresh_addresses) * lifetime_s / 3600,
                      burst(self.per_ip, lifetime_s) * ips)
        if not fresh_addresses:
            by_rate = min(by_rate, burst(self.per_address, lifetime_s))
        return max(1, int(min(by_rate, np.ceil(lifetime_s / oracle_interval_s))))


def quote_offsets(k: int, lifetime_s: float, dt_s: float) -> np.ndarray:
    """Grid offsets of `k` quotes spread evenly over one lifetime (duplicates on a coarse grid are dropped)."""
    steps = int(np.floor(lifetime_s / dt_s))
    return np.unique(np.floor(np.arange(k) * steps / k).astype(np.int64))


def best_gain(grid: Grid, k: int, lifetime_s: float, drop_bound_bps: float, spread_bps: float,
              buyer_bound_bps: float = 100) -> np.ndarray:
    """G(t): the best gain (bps) over the quotes opened so far whose check passes, over the first quote's life.
    Every quote opened within it is still valid at its end, so no quote expires inside the episode."""
    steps = int(np.floor(lifetime_s / grid.dt_s))
    best, _ = payoffs(grid, lifetime_s, drop_bound_bps, spread_bps, buyer_bound_bps)
    for offset in quote_offsets(k, lifetime_s, grid.dt_s)[1:]:
        later = Grid(grid.market, grid.oracle, grid.dt_s, grid.quote_index + int(offset))
        gain, _ = payoffs(later, (steps - offset + 1e-6) * grid.dt_s, drop_bound_bps, spread_bps, buyer_bound_bps)
        np.maximum(best[:, offset:], gain, out=best[:, offset:])
    return best


@dataclass(frozen=True)
class Shopping:
    k: int
    per_order_bps: float  # protocol's loss per episode (out of sample; nothing paid counts 0)
    payer_net_bps: float  # the shopper's gain after their cost of turning the VUSD back into BTC
    paid_share: float  # episodes in which the shopper pays
    per_paid_order_bps: float  # the protocol's loss on an order the shopper did pay
    threshold_bps: float  # the shopper's threshold on their net gain, chosen in sample
    hindsight_bps: float  # upper bound: the best moment in hindsight, before the payer's cost


def _stop(net: np.ndarray, threshold_bps: float) -> np.ndarray:
    return _first_or_last(net, net >= threshold_bps)


def score(gain: np.ndarray, k: int, payer_cost_bps: float = 0.0,
          thresholds_bps: tuple[float, ...] = THRESHOLDS_BPS) -> Shopping:
    """A threshold payer on G(t): the threshold is chosen on the even paths and scored on the odd ones, as
    free_option.extraction does, so best-of-1 at no cost is exactly its `optimal_bps`."""
    net = gain - payer_cost_bps
    choose, held_out = net[0::2], net[1::2]
    in_sample = [float(_stop(choose, h).mean()) for h in thresholds_bps]
    best = thresholds_bps[int(np.argmax(in_sample))]
    paid_net = _stop(held_out, best)
    paid = paid_net > 0
    loss = np.where(paid, paid_net + payer_cost_bps, 0.0)
    return Shopping(k, float(loss.mean()), float(paid_net.mean()), float(paid.mean()),
                    float(loss[paid].mean()) if paid.any() else 0.0, best,
                    float(np.maximum(gain[1::2], 0).max(axis=1).mean()))


def shop(grid: Grid, k: int, lifetime_s: float, drop_bound_bps: float, spread_bps: float,
         payer_cost_bps: float = 0.0, buyer_bound_bps: float = 100) -> Shopping:
    return score(best_gain(grid, k, lifetime_s, drop_bound_bps, spread_bps, buyer_bound_bps), k, payer_cost_bps)


def per_hour_usd(per_order_bps: float, k: int, quotes_per_hour: float, order_vusd: float = 1000) -> float:
    """One shopper's take an hour: one paid order per k quotes, at the largest order."""
    return per_order_bps / 1e4 * order_vusd * quotes_per_hour / k


# Closed forms -----------------------------------------------------------------------------------------------

def _gain_at_fall(fall: np.ndarray | float, spread_bps: float) -> Any:
    """Gain (bps) when the market is `fall` (log) below the strike."""
    return (1 - np.exp(-np.asarray(fall)) / (1 - spread_bps / 1e4)) * 1e4


def _pay_level(drop_bound_bps: float, spread_bps: float, threshold_bps: float) -> tuple[float, float, float]:
    """(fall at zero gain, fall at which the payer pays, fall at the bound), all in log terms."""
    zero = -np.log1p(-spread_bps / 1e4)
    cap = -np.log1p(-drop_bound_bps / 1e4)
    level = -np.log((1 - threshold_bps / 1e4) * (1 - spread_bps / 1e4))
    return zero, min(level, cap), cap


def _killed_density_single(y: float, a: float, sd: float) -> float:
    """Density of the fall Y_L = -W_L on paths where the fall never reached a (reflection principle)."""
    return float(stats.norm.pdf(y, scale=sd) - stats.norm.pdf(y - 2 * a, scale=sd))


def _killed_density_abs(y: float, a: float, sd: float, terms: int = 8) -> float:
    """Density of |W_L| on paths that never left (-a, a) (images at 4na and 4na + 2a), for y in [0, a)."""
    n = np.arange(-terms, terms + 1)
    one_side = (stats.norm.pdf(y - 4 * n * a, scale=sd) - stats.norm.pdf(y - 4 * n * a - 2 * a, scale=sd)).sum()
    other = (stats.norm.pdf(-y - 4 * n * a, scale=sd) - stats.norm.pdf(-y - 4 * n * a - 2 * a, scale=sd)).sum()
    return float(one_side + other)


def closed_form_bps(volatility: float, lifetime_s: float, drop_bound_bps: float, spread_bps: float,
                    threshold_bps: float, continuum: bool, monitoring_dt_s: float = 0.0) -> float:
    """Extraction per quote (one quote) or per episode (quotes at every instant), no oracle lag, Gaussian.

    The payer pays when the gain reaches `threshold_bps` (capped by the bound), else at the end if positive."""
    sd = volatility * np.sqrt(lifetime_s / SECONDS_PER_YEAR)
    zero, level, cap = _pay_level(drop_bound_bps, spread_bps, threshold_bps)
    # On a grid the payer sees the level late by about one shift (and pays that much more); the drawdown of a
    # continuum of quotes is sampled at both ends (its running maximum too), so it is reached two shifts late.
    shift = BGK_SHIFT * volatility * np.sqrt(monitoring_dt_s / SECONDS_PER_YEAR)
    a = min(level + (2 if continuum else 1) * shift, cap)
    paid_at_hit = _gain_at_fall(min(level + shift, cap), spread_bps)
    if zero >= a:
        return 0.0
    density = _killed_density_abs if continuum else _killed_density_single
    survive, _ = integrate.quad(density, 0 if continuum else -np.inf, a, args=(a, sd))
    terminal, _ = integrate.quad(lambda y: float(_gain_at_fall(y, spread_bps)) * density(y, a, sd), zero, a)
    return float((1 - survive) * paid_at_hit + terminal)


def lag_free_grid(volatility: float, n: int, lifetime_s: float, dt_s: float, seed: int = 0) -> Grid:
    """Gaussian paths whose oracle is the market itself: the closed forms' world, for checking them."""
    from scenarios.market import PriceModel

    market = PriceModel(volatility, tail_nu=None).paths(np.random.default_rng(seed), n,
                                                         int(np.ceil(lifetime_s / dt_s)) + 1, dt_s)
    return Grid(market, market, dt_s, 0)


def fixed_threshold(gain: np.ndarray, threshold_bps: float) -> tuple[float, float]:
    """Mean extraction of a payer with a given threshold, and its standard error (for closed-form checks)."""
    values = _stop(gain, threshold_bps)
    return float(values.mean()), float(values.std(ddof=1) / np.sqrt(len(values)))


# The Atomiq LP's quote, for comparison -----------------------------------------------------------------------

@dataclass(frozen=True)
class AtomiqQuote:
    """What an Atomiq LP's Lightning -> smart-chain quote gives away (atomiq-lp-lib, FromBtcLnAuto.ts and
    FromBtcLnAbs.ts): the token amount is fixed when the hold invoice is made and is not priced again when the
    HTLC arrives (no bound); the invoice expires after `invoiceTimeoutSeconds` (default 90 s); the price is
    Binance's ticker cached 15 s (BinanceSwapPrice.ts, CACHE_DURATION); the fee on Lightning swaps is 0.3 %
    plus 10 sats (atomiq-lp config/config.mainnet.yaml, LN.FEE_PERCENTAGE, LN.BASE_FEE); its REST API allows
    100 requests per 5 minutes per IP by default (atomiq-lp src/http/HttpRateLimiter.ts).

    The payee holds the secret: after the LP has locked the tokens on the smart chain, they reveal it (over
    Nostr, to watchtowers) only if they still want the tokens (docs.atomiq.exchange, "Lightning -> Smart
    chain"); otherwise the LP refunds itself at the escrow's expiry (`destinationHtlcTimeoutSeconds`, 3600 s
    in atomiq-lp src/runner/IntermediaryRunner.ts) and the payer's HTLC is released. So the option runs to
    that expiry, the free option of HTLC atomic swaps (Han, Lin & Yu 2019, "On the optionality and fairness
    of atomic swaps", AFT '19)."""

    lifetime_s: float = 90.0  # the invoice: a payer who claims at once decides only until then
    escrow_timeout_s: float = 3600.0  # a payer who withholds the secret decides until then
    fee_bps: float = 30.0
    price_cache_s: float = 15.0
    requests_per_hour_per_ip: float = 100 * 3600 / 300

    def k_cap(self, lifetime_s: float) -> int:
        by_rate = self.requests_per_hour_per_ip * lifetime_s / 3600
        return max(1, int(min(by_rate, np.ceil(lifetime_s / self.price_cache_s))))
