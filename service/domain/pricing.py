"""Quotes: how many msat a VUSD amount costs (or how much VUSD an amount of sat buys), and slippage."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_DOWN, Decimal

MSAT_PER_BTC = Decimal(100_000_000_000)
SAT_PER_BTC = Decimal(100_000_000)
VUSD_QUANTUM = Decimal("0.01")  # VUSD is quoted in cents; the token itself has 18 decimals
VUSD_DECIMALS = 18
BPS = Decimal(10_000)


@dataclass(frozen=True)
class Price:
    """BTC/USD as the oracle reports it, with its age."""

    btc_usd: Decimal
    updated_at_unix: int

    def age_s(self, now_unix: float) -> float:
        return max(0.0, now_unix - self.updated_at_unix)


@dataclass(frozen=True)
class Quote:
    vusd_amount: Decimal
    amount_msat: int
    btc_usd_rate: Decimal  # the oracle's rate when quoted, before spread
    spread_bps: int


class StalePrice(RuntimeError):
    pass


def price_from_oracle(raw_price: int, decimals: int, updated_at_unix: int) -> Price:
    return Price(Decimal(raw_price).scaleb(-decimals), updated_at_unix)


def ensure_fresh(price: Price, now_unix: float, max_age_s: float) -> Price:
    if price.age_s(now_unix) > max_age_s:
        raise StalePrice(f"BTC/USD price is {price.age_s(now_unix):.0f}s old (limit {max_age_s:.0f}s)")
    return price


def _rate_after_spread(rate: Decimal, spread_bps: int) -> Decimal:
    return rate * (1 - Decimal(spread_bps) / BPS)


def quote_for_vusd(vusd_amount: Decimal, rate: Decimal, spread_bps: int) -> Quote:
    """Whole sats, rounded up: wallets show sats, and a fraction of one would only confuse the payer."""
    vusd = vusd_amount.quantize(VUSD_QUANTUM, rounding=ROUND_DOWN)
    sat = (vusd / _rate_after_spread(rate, spread_bps) * SAT_PER_BTC).to_integral_value(rounding=ROUND_CEILING)
    return Quote(vusd, int(sat) * 1000, rate, spread_bps)


def quote_for_sat(amount_sat: int, rate: Decimal, spread_bps: int) -> Quote:
    btc = Decimal(amount_sat * 1000) / MSAT_PER_BTC
    vusd = (btc * _rate_after_spread(rate, spread_bps)).quantize(VUSD_QUANTUM, rounding=ROUND_DOWN)
    return Quote(vusd, amount_sat * 1000, rate, spread_bps)


def price_move_bps(quoted: Decimal, now: Decimal) -> Decimal:
    """How far BTC/USD moved since the quote, in basis points: positive when it rose (the buyer's side of
    the slippage bound), negative when it fell (the protocol's side)."""
    return (now - quoted) / quoted * BPS


def slippage_refusal(moved_bps: Decimal, buyer_bound_bps: int, protocol_bound_bps: int) -> str | None:
    """Why a mint at this move must not happen, or None: each side of the bound belongs to whoever loses."""
    if moved_bps > buyer_bound_bps:
        return f"BTC rose {moved_bps:.1f} bps since the quote (the buyer's bound is {buyer_bound_bps})"
    if -moved_bps > protocol_bound_bps:
        return f"BTC fell {-moved_bps:.1f} bps since the quote (the operator's bound is {protocol_bound_bps})"
    return None


def vusd_base_units(vusd_amount: Decimal) -> int:
    """VUSD as the token counts it: an integer of 10**-18 VUSD."""
    return int(vusd_amount.scaleb(VUSD_DECIMALS))


def vusd_from_base_units(base_units: int) -> Decimal:
    """The inverse of `vusd_base_units`: the token's integer amount as VUSD."""
    return Decimal(base_units).scaleb(-VUSD_DECIMALS)
