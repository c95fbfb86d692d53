"""A vectorised Monte Carlo model of the purchase flow, for questions the regtest network is too slow for.

Each simulated order: an amount (refused outside the order limits), a payer who pays after a delay (or
never, or strategically: only when the price moved in their favour), the HTLC's travel time, the
service's checks, the mint and the settle, all drawn from distributions calibrated on measured regtest
runs (`Calibration`, see scenarios/calibration/). BTC/USD is a driftless geometric Brownian motion.

The outcome follows the service's rules (service/domain/settlement.py): an HTLC arriving after the quote
expired is refunded `quote_expired` (or the payment fails once the worker expired the order); a price
moved more than the bound between quote and HTLC is refunded `slippage_exceeded`; a mint that fails or
outlasts the hold is refunded `mint_failed`; otherwise VUSD is minted and the HTLC settled.

The protocol's gain or loss on a completed order is what the sats are worth at mint time minus the VUSD
minted: V * (S_mint / (S_quote * (1 - spread)) - 1). The spread is the gain; a price drop between quote and
mint is a loss, and strategic payers choose to pay exactly when there is one.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from scenarios.stats import SECONDS_PER_YEAR, mean_ci, wilson
from service.domain.states import OrderStatus, RefundReason

DEFAULT_CALIBRATION = Path(__file__).parent / "calibration" / "default.json"


def outcome_class(status: str, refund_reason: str | None) -> str:
    """An order's outcome label: its final status, with the reason when it was refunded."""
    return f"{status}:{refund_reason}" if status == OrderStatus.REFUNDED else str(status)


COMPLETED = outcome_class(OrderStatus.COMPLETED, None)
EXPIRED = outcome_class(OrderStatus.EXPIRED, None)
REFUNDED_QUOTE_EXPIRED = outcome_class(OrderStatus.REFUNDED, RefundReason.QUOTE_EXPIRED)
REFUNDED_SLIPPAGE = outcome_class(OrderStatus.REFUNDED, RefundReason.SLIPPAGE_EXCEEDED)
REFUNDED_MINT_FAILED = outcome_class(OrderStatus.REFUNDED, RefundReason.MINT_FAILED)
REJECTED_LIMITS = "rejected:limits"  # refused when ordered (outside the order limits): no order, so no status
OUTCOMES = (COMPLETED, EXPIRED, REFUNDED_QUOTE_EXPIRED, REFUNDED_SLIPPAGE, REFUNDED_MINT_FAILED, REJECTED_LIMITS)


@dataclass(frozen=True)
class LogNormal:
    """Seconds: `shift + median * exp(sigma * Z)`; sigma 0 is a constant."""

    median_s: float
    sigma: float = 0.0
    shift_s: float = 0.0

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return self.shift_s + self.median_s * np.exp(self.sigma * rng.standard_normal(n))

    def mean(self) -> float:
        return self.shift_s + self.median_s * float(np.exp(self.sigma**2 / 2))

    @classmethod
    def fit(cls, samples: list[float] | np.ndarray, floor_s: float = 1e-3) -> LogNormal:
        logs = np.log(np.maximum(np.asarray(samples, dtype=float), floor_s))
        return cls(float(np.exp(logs.mean())), float(logs.std(ddof=1)) if len(logs) > 1 else 0.0)


@dataclass(frozen=True)
class Calibration:
    """Latency of each leg of a purchase, fitted on measured regtest orders."""

    htlc_arrival: LogNormal  # payer presses send -> service holds the HTLC (payment_held)
    checks: LogNormal  # payment_held -> minting (price, limits, vault look-up)
    mint: LogNormal  # minting -> minted (Starknet transaction accepted with its event)
    settle: LogNormal  # minted -> completed (HTLC claimed)
    notify: LogNormal  # completed -> the buyer sees it
    source: str = "assumed"
    samples: int = 0
    measured: dict[str, dict[str, float]] = field(default_factory=dict)  # per leg: p50, p95, mean, n

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibration:
        legs = {name: LogNormal(**data[name]) for name in LEGS}
        return cls(**legs, source=data.get("source", ""), samples=data.get("samples", 0),
                   measured=data.get("measured", {}))


LEGS = ("htlc_arrival", "checks", "mint", "settle", "notify")


def load_calibration(path: Path | str = DEFAULT_CALIBRATION) -> Calibration:
    return Calibration.from_dict(json.loads(Path(path).read_text()))


@dataclass(frozen=True)
class PayerType:
    name: str
    weight: float
    delay: LogNormal | None  # None: never pays
    strategic: bool = False  # pays only if the price fell enough to beat the spread, within the bound


DEFAULT_PAYERS = (
    PayerType("prompt", 0.70, LogNormal(15, 0.8)),  # scans the QR code and pays within a minute
    PayerType("slow", 0.15, LogNormal(240, 0.7)),  # gets distracted, pays minutes later
    PayerType("never", 0.10, None),
    PayerType("strategic", 0.05, LogNormal(2, 0.5), strategic=True),
)


@dataclass(frozen=True)
class Policy:
    quote_lifetime_s: float = 300
    max_slippage_bps: float = 100  # the buyer's side: how far BTC may rise
    max_price_drop_bps: float = 50  # the operator's side: how far BTC may fall (service: max_price_drop_bps)
    spread_bps: float = 50
    min_order_vusd: float = 1
    max_order_vusd: float = 1000
    max_hold_s: float = 120
    recheck_interval_s: float = 2


@dataclass(frozen=True)
class Market:
    volatility: float = 0.55  # annualised; BTC's 30-day realised volatility has mostly been 40-70 % since 2022
    btc_usd: float = 97_000


@dataclass(frozen=True)
class Setup:
    policy: Policy = Policy()
    market: Market = Market()
    payers: tuple[PayerType, ...] = DEFAULT_PAYERS
    amount: LogNormal = LogNormal(50, 1.2)  # VUSD per order
    mint_failure_rate: float = 0.001
    strategic_margin_bps: float = 10  # how far past the spread a strategic payer waits for

    def with_policy(self, **changes: float) -> Setup:
        return replace(self, policy=replace(self.policy, **changes))


@dataclass
class Simulation:
    """One row per order; `outcome` indexes OUTCOMES."""

    outcome: np.ndarray
    payer: np.ndarray  # index into setup.payers
    vusd: np.ndarray
    time_to_vusd_s: np.ndarray  # from pressing send to minted; nan unless completed
    pnl_usd: np.ndarray  # protocol gain (+) or loss (-) at mint; 0 unless completed
    setup: Setup


def simulate(setup: Setup, n: int, seed: int = 0, calibration: Calibration | None = None) -> Simulation:
    rng = np.random.default_rng(seed)
    cal = calibration or load_calibration()
    policy, sigma = setup.policy, setup.market.volatility / np.sqrt(SECONDS_PER_YEAR)
    vusd = np.round(setup.amount.sample(rng, n), 2)
    payer = rng.choice(len(setup.payers), size=n, p=_weights(setup.payers))
    delay = _delays(setup, payer, rng, n)
    strategic = np.array([setup.payers[i].strategic for i in payer])
    log_move_at_pay = sigma * np.sqrt(np.nan_to_num(delay)) * rng.standard_normal(n)
    delay, log_move_at_pay = _strategic_timing(setup, strategic, delay, log_move_at_pay, sigma, rng)
    arrival = delay + cal.htlc_arrival.sample(rng, n)
    checks_at = arrival + cal.checks.sample(rng, n)
    mint_s = cal.mint.sample(rng, n)
    log_move_check = log_move_at_pay + sigma * np.sqrt(np.maximum(arrival - delay, 0)) * rng.standard_normal(n)
    log_move_mint = log_move_check + sigma * np.sqrt(checks_at - arrival + mint_s) * rng.standard_normal(n)
    outcome = _outcomes(setup, vusd, delay, arrival, log_move_check, mint_s, rng)
    completed = outcome == 0
    time_to_vusd = np.where(completed, checks_at + mint_s - delay, np.nan)
    price_ratio = np.exp(log_move_mint - 0.5 * sigma**2 * (checks_at + mint_s))
    pnl = np.where(completed, vusd * (price_ratio / (1 - policy.spread_bps / 1e4) - 1), 0.0)
    return Simulation(outcome, payer, vusd, time_to_vusd, pnl, setup)


def _weights(payers: tuple[PayerType, ...]) -> np.ndarray:
    weights = np.array([p.weight for p in payers], dtype=float)
    return weights / weights.sum()


def _delays(setup: Setup, payer: np.ndarray, rng: np.random.Generator, n: int) -> np.ndarray:
    delay = np.full(n, np.nan)  # nan: never pays
    for index, kind in enumerate(setup.payers):
        members = payer == index
        if kind.delay is not None and members.any():
            delay[members] = kind.delay.sample(rng, int(members.sum()))
    return delay


def _strategic_timing(setup: Setup, strategic: np.ndarray, delay: np.ndarray, log_move: np.ndarray, sigma: float,
                      rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A strategic payer watches the price over the quote's life (1 s grid) and pays the first moment it
    has fallen past spread + margin but not past the operator's bound on a fall; if that never happens they
    do not pay. (With that bound at the spread, the window is empty: the option is closed.)"""
    count = int(strategic.sum())
    if not count:
        return delay, log_move
    policy = setup.policy
    steps = max(int(policy.quote_lifetime_s) - 1, 1)
    path = np.cumsum(sigma * rng.standard_normal((count, steps)), axis=1)
    move = np.exp(path) - 1
    trigger = -(policy.spread_bps + setup.strategic_margin_bps) / 1e4
    window = (move <= trigger) & (move >= -policy.max_price_drop_bps / 1e4)
    hit = window.any(axis=1)
    first = window.argmax(axis=1)
    delay, log_move = delay.copy(), log_move.copy()
    delay[strategic] = np.where(hit, first + 1.0, np.nan)
    log_move[strategic] = np.where(hit, path[np.arange(count), first], 0.0)
    return delay, log_move


def _outcomes(setup: Setup, vusd: np.ndarray, delay: np.ndarray, arrival: np.ndarray, log_move: np.ndarray,
              mint_s: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    policy, n = setup.policy, len(vusd)
    outcome = np.zeros(n, dtype=int)  # completed unless a rule below says otherwise; later rules win
    mint_failed = (rng.random(n) < setup.mint_failure_rate) | (mint_s > policy.max_hold_s)
    outcome[mint_failed] = OUTCOMES.index(REFUNDED_MINT_FAILED)
    moved_bps = np.expm1(log_move) * 1e4  # signed: a rise is the buyer's side of the bound, a fall the operator's
    beyond = (moved_bps > policy.max_slippage_bps) | (moved_bps < -policy.max_price_drop_bps)
    outcome[beyond] = OUTCOMES.index(REFUNDED_SLIPPAGE)
    # The invoice expires with the quote: a wallet refuses to pay it after that (`expired`). An HTLC sent
    # just before expiry that arrives after it is held and refunded, unless the worker (first re-check
    # after expiry) has cancelled the invoice by then.
    expired_seen = policy.quote_lifetime_s + rng.uniform(0, policy.recheck_interval_s, n)
    late = arrival > policy.quote_lifetime_s
    outcome[late] = OUTCOMES.index(REFUNDED_QUOTE_EXPIRED)
    too_late = (delay > policy.quote_lifetime_s) | (arrival > expired_seen)
    outcome[late & too_late] = OUTCOMES.index(EXPIRED)
    outcome[np.isnan(delay)] = OUTCOMES.index(EXPIRED)
    outside = (vusd < policy.min_order_vusd) | (vusd > policy.max_order_vusd)
    outcome[outside] = OUTCOMES.index(REJECTED_LIMITS)
    return outcome


# -- summaries with confidence intervals ----------------------------------------------------------------


def summarise_simulation(sim: Simulation) -> dict[str, Any]:
    """Completion rate, outcomes, time to VUSD and the protocol's gain per volume, each with a 95 % CI."""
    n = len(sim.outcome)
    counts = np.bincount(sim.outcome, minlength=len(OUTCOMES))
    completed = sim.outcome == 0
    volume = float(sim.vusd[completed].sum()) or float("nan")
    pnl_bps = sim.pnl_usd[completed] / sim.vusd[completed] * 1e4 if completed.any() else np.array([np.nan])
    time_to_vusd = sim.time_to_vusd_s[completed]
    return {
        "n": n,
        "completion_rate": wilson(int(counts[0]), n),
        "outcomes": {name: wilson(int(counts[i]), n) for i, name in enumerate(OUTCOMES)},
        "time_to_vusd_s": {"mean": mean_ci(time_to_vusd),
                           "p50": float(np.nanpercentile(time_to_vusd, 50)) if completed.any() else float("nan"),
                           "p95": float(np.nanpercentile(time_to_vusd, 95)) if completed.any() else float("nan")},
        "pnl_bps_of_volume": mean_ci(pnl_bps),  # per completed order, volume-unweighted
        "pnl_usd_total": float(sim.pnl_usd.sum()),
        "pnl_bps_weighted": float(sim.pnl_usd.sum() / volume * 1e4),
        "loss_rate": wilson(int((sim.pnl_usd < 0).sum()), max(int(completed.sum()), 1)),
    }


def outcome_probabilities(setup: Setup, n: int = 200_000, seed: int = 1,
                          calibration: Calibration | None = None) -> dict[str, float]:
    sim = simulate(setup, n, seed, calibration)
    counts = np.bincount(sim.outcome, minlength=len(OUTCOMES))
    return {name: float(counts[i]) / n for i, name in enumerate(OUTCOMES)}


def sweep(setup: Setup, lifetimes_s: list[float], bounds_bps: list[float], n: int = 20_000, seed: int = 0,
          calibration: Calibration | None = None) -> dict[str, np.ndarray]:
    """Completion rate and protocol gain (bps of volume) over quote lifetime x slippage bound.

    The same seed for every cell (common random numbers), so differences between cells are the policy's.
    """
    cal = calibration or load_calibration()
    shape = (len(lifetimes_s), len(bounds_bps))
    grids = {key: np.zeros(shape) for key in ("completion", "pnl_bps", "loss_strategic_bps", "slippage_refunds")}
    for i, lifetime in enumerate(lifetimes_s):
        for j, bound in enumerate(bounds_bps):
            sim = simulate(setup.with_policy(quote_lifetime_s=lifetime, max_slippage_bps=bound), n, seed, cal)
            fill_cell(grids, (i, j), sim)
    return grids


def fill_cell(grids: dict[str, np.ndarray], cell: tuple[int, int], sim: Simulation) -> None:
    completed = sim.outcome == 0
    volume = max(float(sim.vusd[completed].sum()), 1e-9)
    strategic = np.array([sim.setup.payers[i].strategic for i in sim.payer])
    grids["completion"][cell] = completed.mean()
    grids["pnl_bps"][cell] = sim.pnl_usd.sum() / volume * 1e4
    grids["loss_strategic_bps"][cell] = sim.pnl_usd[strategic].sum() / volume * 1e4
    grids["slippage_refunds"][cell] = (sim.outcome == OUTCOMES.index(REFUNDED_SLIPPAGE)).mean()


# -- the same payers on the real network ------------------------------------------------------------------


def scenario_from_setup(setup: Setup, n: int, seed: int = 0, name: str = "model_check",
                        vusd_amount: str = "10.00", spacing_s: float = 0.0) -> dict[str, Any]:
    """A scenario (as data for `parse_scenario`) whose n payers are drawn from the model's payer mix, so the
    regtest outcome counts can be held against the model's probabilities. Orders are created `spacing_s`
    apart (0: all at once). Strategic payers need a live price path and are not supported here."""
    if any(kind.strategic for kind in setup.payers):
        raise ValueError("strategic payers cannot be replayed as a fixed scenario")
    rng = np.random.default_rng(seed)
    payer = rng.choice(len(setup.payers), size=n, p=_weights(setup.payers))
    purchases = [{"vusd_amount": vusd_amount, "max_slippage_bps": int(setup.policy.max_slippage_bps),
                  "start_s": round(index * spacing_s, 3), "payer": _payer_spec(delay)}
                 for index, delay in enumerate(_delays(setup, payer, rng, n))]
    policy = setup.policy
    service = {"quote_lifetime_s": int(policy.quote_lifetime_s), "recheck_interval_s": policy.recheck_interval_s,
               "spread_bps": int(policy.spread_bps), "max_price_drop_bps": int(policy.max_price_drop_bps)}
    return {"name": name, "description": f"{n} payers drawn from the model's mix (seed {seed})",
            "service": service, "purchases": purchases, "timeout_s": 300 + int(n * spacing_s)}


def _payer_spec(delay: float) -> dict[str, Any]:
    if np.isnan(delay):
        return {"behaviour": "never_pays"}
    return {"behaviour": "pays", "delay_s": round(float(delay), 2)}
