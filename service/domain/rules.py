"""The operator's rules the domain applies to an order, from quote to settlement: exactly the values the domain
reads. The operator sets them in `service.config.Settings` (where each is explained and checked against the
others); the composition root copies them here (`service.container.order_rules`), so the domain never sees the
rest of the configuration."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class OrderRules:
    # Quoting: how long a quote holds, the spread, the buyer's slippage bound (default and ceiling).
    quote_lifetime_s: int
    spread_bps: int
    default_max_slippage_bps: int
    max_allowed_slippage_bps: int
    # The oldest oracle price accepted, at quote and at mint; the operator's side of the slippage bound.
    max_price_age_s: int
    max_price_drop_bps: int
    # Limits: one order's size, an address's VUSD per day and its orders per window (Flask-Limiter syntax).
    min_order_vusd: Decimal
    max_order_vusd: Decimal
    max_vusd_per_address_per_day: Decimal
    rate_limit_orders_per_address: str
    # Hosts an order's redirect_url may name (an entry starting with "." allows its subdomains).
    redirect_hosts: tuple[str, ...]
    # Settlement: how long an HTLC is held at most, one mint attempt's budget within it, and the CLTV margins.
    max_hold_s: int
    mint_budget_s: float
    min_htlc_blocks_to_mint: int
    void_mint_blocks_before_expiry: int
    void_unseen_mint_after_s: float

    def allowed_redirect_hosts(self) -> frozenset[str]:
        """The redirect hosts as compared (lower case, blanks dropped); none when unset."""
        return frozenset(host.strip().lower() for host in self.redirect_hosts if host.strip())
