"""The free option a quote gives its payer, and how much a payer who stops well takes with it.

A quote fixes the VUSD for the sats at the oracle's price P_q less the spread, for the quote's lifetime. A payer
who watches the market S(t) may pay at any moment or let the quote lapse; paying costs them nothing extra
when it is good for them, and a refund costs them nothing when it is not. Paying at t gains them, in bps of
the VUSD, g(t) = (1 - S(t) / (P_q * (1 - spread))) * 1e4, *if* the service's check passes: the oracle's price
at t has not fallen more than the operator's bound below P_q (nor risen beyond the buyer's). Their gain is the
protocol's loss on that order. The oracle is public, so the payer knows at t whether the check will pass.

Three payers:
- **naive**: pays the first moment the market is `margin_bps` past the spread below P_q (the old model's
  "strategic" payer), whatever the oracle shows; gains g there if the check passes, else is refunded;
- **best threshold** (a stopping rule; a time-varying threshold could do better, never beyond hindsight):
  pays the first moment g(t) >= h with the check passing, else at the
  quote's last moment if g > 0 then; h is chosen on one half of the paths and scored on the other, so the
  score is not flattered by the choice;
- **hindsight**: max over t of g(t) where the check passes: an upper bound no real payer reaches.

Every figure is the mean over quotes (lapsed quotes count as 0), in bps of the VUSD.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scenarios.market import Grid

THRESHOLDS_BPS = (0.0, 2.0, 5.0, 10.0, 20.0, 40.0, 80.0)


@dataclass(frozen=True)
class Extraction:
    naive_bps: float
    optimal_bps: float  # out of sample
    hindsight_bps: float
    threshold_bps: float  # h chosen in sample
    exercised: float  # share of quotes the optimal payer pays


def payoffs(grid: Grid, lifetime_s: float, drop_bound_bps: float, spread_bps: float,
            buyer_bound_bps: float = 100) -> tuple[np.ndarray, np.ndarray]:
    """g(t) on the grid over the quote's life (0 where the check fails) and the market's move below P_q (bps)."""
    end = grid.quote_index + int(np.floor(lifetime_s / grid.dt_s))
    market = grid.market[:, grid.quote_index:end].astype(float)
    oracle = grid.oracle[:, grid.quote_index:end].astype(float)
    quote = oracle[:, :1]
    oracle_move = np.expm1(oracle - quote) * 1e4
    passes = (oracle_move >= -drop_bound_bps) & (oracle_move <= buyer_bound_bps)
    gain = (1 - np.exp(market - quote) / (1 - spread_bps / 1e4)) * 1e4
    return np.where(passes, gain, 0.0), np.expm1(market - quote) * 1e4


def _first_or_last(gain: np.ndarray, trigger: np.ndarray) -> np.ndarray:
    """Gain at the first triggered point; else at the last point if positive; else 0 (the quote lapses)."""
    hit = trigger.any(axis=1)
    first = trigger.argmax(axis=1)
    rows = np.arange(len(gain))
    at_end = np.maximum(gain[:, -1], 0.0)
    return np.where(hit, gain[rows, first], at_end)


def extraction(grid: Grid, lifetime_s: float, drop_bound_bps: float, spread_bps: float,
               buyer_bound_bps: float = 100, margin_bps: float = 10,
               thresholds_bps: tuple[float, ...] = THRESHOLDS_BPS) -> Extraction:
    gain, market_move = payoffs(grid, lifetime_s, drop_bound_bps, spread_bps, buyer_bound_bps)
    choose, score, move = gain[0::2], gain[1::2], market_move[1::2]  # every payer is scored on the same half
    in_sample = [float(_first_or_last(choose, choose >= h).mean()) for h in thresholds_bps]
    best = thresholds_bps[int(np.argmax(in_sample))]
    optimal = _first_or_last(score, score >= best)
    fell = move <= -(spread_bps + margin_bps)
    naive = np.where(fell.any(axis=1), score[np.arange(len(score)), fell.argmax(axis=1)], 0.0)
    hindsight = np.maximum(score, 0).max(axis=1)
    return Extraction(float(naive.mean()), float(optimal.mean()), float(hindsight.mean()), best,
                      float((optimal > 0).mean()))


def usd_per_hour(bps_per_quote: float, quotes_per_hour: float = 300, order_vusd: float = 1000) -> float:
    """What one client takes in an hour, quoting as often as the per-IP limit allows (service default
    300/hour; fresh Starknet addresses sidestep the per-address limit) at the largest order (1000 VUSD)."""
    return bps_per_quote / 1e4 * order_vusd * quotes_per_hour
