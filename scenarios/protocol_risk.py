"""The protocol's market risk per quote, over quote lifetime x the operator's bound on a fall.

Each quote is priced at the oracle's price P_q (which may lag the market) less the spread. An honest payer
pays after a delay that has nothing to do with the price (or never); the service checks the oracle's price at
that moment against P_q: a fall beyond the operator's bound (`max_price_drop_bps`) or a rise beyond the
buyer's (`max_slippage_bps`) is refunded. A completed order's gain, in bps of its VUSD, is what the sats are
worth at the *market* price when they are settled minus the VUSD minted:
(S_settle / (P_q * (1 - spread)) - 1) * 1e4. Refunded and expired quotes gain nothing.

**The cost of open exposure** is explicit: from quote until it is paid or lapses, the operator has promised a
price on the quote's notional and must hold (or hedge) for it, at `exposure_cost_bps_per_hour` of the notional.
Unpaid quotes cost it for their whole lifetime and earn nothing: that is what makes long lifetimes expensive,
while short ones lose the spread on payers who need longer. The value of a policy is the mean gain per quote
minus that cost; its risk, the CVaR99 of the loss per quote.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scenarios.market import Grid, cvar
from scenarios.model import DEFAULT_PAYERS, PayerType


@dataclass(frozen=True)
class RiskPolicy:
    spread_bps: float = 50
    buyer_bound_bps: float = 100  # service default_max_slippage_bps
    exposure_cost_bps_per_hour: float = 10.0  # an assumption, varied in the notebook


def honest_delays(rng: np.random.Generator, n: int,
                  payers: tuple[PayerType, ...] = DEFAULT_PAYERS) -> np.ndarray:
    """Seconds from quote to pressing send; nan for a payer who never pays. Price-watching payers are left
    out here (they are the free option's question, scenarios/free_option.py)."""
    honest = [p for p in payers if not p.strategic]
    weights = np.array([p.weight for p in honest])
    kind = rng.choice(len(honest), size=n, p=weights / weights.sum())
    delay = np.full(n, np.nan)
    for index, payer in enumerate(honest):
        members = kind == index
        if payer.delay is not None:
            delay[members] = payer.delay.sample(rng, int(members.sum()))
    return delay


def quote_outcomes(grid: Grid, delay_s: np.ndarray, lifetime_s: float, drop_bound_bps: float,
                   policy: RiskPolicy) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per quote: completed (bool), gain in bps of notional (0 unless completed), open time in seconds."""
    paid = ~np.isnan(delay_s) & (np.nan_to_num(delay_s, nan=np.inf) < lifetime_s)
    index = grid.at(np.where(paid, delay_s, 0.0))
    rows = np.arange(len(delay_s))
    quote_oracle = grid.oracle[:, grid.quote_index].astype(float)
    oracle_move_bps = np.expm1(grid.oracle[rows, index] - quote_oracle) * 1e4
    within = (oracle_move_bps >= -drop_bound_bps) & (oracle_move_bps <= policy.buyer_bound_bps)
    completed = paid & within
    gain = (np.exp(grid.market[rows, index] - quote_oracle) / (1 - policy.spread_bps / 1e4) - 1) * 1e4
    open_s = np.where(paid, np.minimum(np.nan_to_num(delay_s, nan=lifetime_s), lifetime_s), lifetime_s)
    return completed, np.where(completed, gain, 0.0), open_s


@dataclass(frozen=True)
class RiskCell:
    completion: float
    mean_gain_bps: float  # per quote, before the exposure cost
    expected_loss_bps: float  # E[max(-gain, 0)] per quote
    cvar99_bps: float  # mean of the worst 1 % of losses per quote
    exposure_cost_bps: float
    value_bps: float  # mean gain - exposure cost


def evaluate(grid: Grid, delay_s: np.ndarray, lifetime_s: float, drop_bound_bps: float,
             policy: RiskPolicy) -> RiskCell:
    completed, gain, open_s = quote_outcomes(grid, delay_s, lifetime_s, drop_bound_bps, policy)
    exposure = float(open_s.mean()) / 3600 * policy.exposure_cost_bps_per_hour
    mean_gain = float(gain.mean())
    return RiskCell(float(completed.mean()), mean_gain, float(np.maximum(-gain, 0).mean()), cvar(-gain),
                    exposure, mean_gain - exposure)


def sweep(grid: Grid, delay_s: np.ndarray, lifetimes_s: list[float], bounds_bps: list[float],
          policy: RiskPolicy) -> dict[str, np.ndarray]:
    """Every RiskCell field over lifetime (rows) x operator's bound (columns), on the same paths and payers."""
    fields = RiskCell.__dataclass_fields__
    grids = {name: np.zeros((len(lifetimes_s), len(bounds_bps))) for name in fields}
    for i, lifetime in enumerate(lifetimes_s):
        for j, bound in enumerate(bounds_bps):
            cell = evaluate(grid, delay_s, lifetime, bound, policy)
            for name in fields:
                grids[name][i, j] = getattr(cell, name)
    return grids


def optimum(values: np.ndarray) -> tuple[int, int, bool]:
    """The best cell (row, column) and whether it is interior: not on the edge of the swept range in any
    direction that was swept (a range of one value counts as interior along it)."""
    i, j = (int(k) for k in np.unravel_index(int(np.argmax(values)), values.shape))
    rows, cols = values.shape
    interior_i = rows == 1 or 0 < i < rows - 1
    interior_j = cols == 1 or 0 < j < cols - 1
    return i, j, interior_i and interior_j
