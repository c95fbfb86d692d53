"""The order's states and the only transitions allowed between them.

awaiting_payment -> payment_held -> minting -> minted -> completed, or an end without VUSD:
expired (never paid in time) or refunded (HTLC cancelled, with a reason). `failed` means an operator
must look; the service goes there when it cannot tell what happened, and the reconciliation moves a
finished order there when lnd or the vault contradicts it and it cannot repair that.
"""

from __future__ import annotations

from enum import StrEnum


class OrderStatus(StrEnum):
    AWAITING_PAYMENT = "awaiting_payment"
    PAYMENT_HELD = "payment_held"
    MINTING = "minting"
    MINTED = "minted"
    COMPLETED = "completed"
    EXPIRED = "expired"
    REFUNDED = "refunded"
    FAILED = "failed"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATUSES


class RefundReason(StrEnum):
    QUOTE_EXPIRED = "quote_expired"
    SLIPPAGE_EXCEEDED = "slippage_exceeded"
    UNDERPAID = "underpaid"
    LIMIT_EXCEEDED = "limit_exceeded"
    MINT_FAILED = "mint_failed"
    OVERPAID = "overpaid"  # more than the invoice arrived (lnd accepts up to twice): all of it goes back
    HTLC_EXPIRING = "htlc_expiring"  # too few blocks left before the HTLC's expiry to mint safely


# The named groups of statuses; everything else imports them from here.
FINAL_STATUSES = frozenset({OrderStatus.COMPLETED, OrderStatus.EXPIRED, OrderStatus.REFUNDED, OrderStatus.FAILED})
# The payer's HTLC is held by our node.
HELD_STATUSES = frozenset({OrderStatus.PAYMENT_HELD, OrderStatus.MINTING, OrderStatus.MINTED})
# Orders that hold or have consumed the address's daily allowance.
COMMITTED_STATUSES = HELD_STATUSES | {OrderStatus.COMPLETED}
# Orders that ended without VUSD: their HTLCs, if any arrived, must be cancelled.
ENDED_WITHOUT_VUSD = frozenset({OrderStatus.REFUNDED, OrderStatus.EXPIRED})
# What the reconciliation compares with lnd and the vault.
RECONCILED_STATUSES = ENDED_WITHOUT_VUSD | {OrderStatus.COMPLETED}

ALLOWED_TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.AWAITING_PAYMENT: frozenset({OrderStatus.PAYMENT_HELD, OrderStatus.EXPIRED, OrderStatus.FAILED}),
    OrderStatus.PAYMENT_HELD: frozenset({OrderStatus.MINTING, OrderStatus.REFUNDED, OrderStatus.FAILED}),
    # A mint that reverted or timed out without landing is refunded; one that landed is `minted`.
    OrderStatus.MINTING: frozenset({OrderStatus.MINTED, OrderStatus.REFUNDED, OrderStatus.FAILED}),
    OrderStatus.MINTED: frozenset({OrderStatus.COMPLETED, OrderStatus.FAILED}),
    # Only the reconciliation leaves a final state: when lnd or the chain contradicts it beyond repair.
    OrderStatus.COMPLETED: frozenset({OrderStatus.FAILED}),
    OrderStatus.EXPIRED: frozenset({OrderStatus.FAILED}),
    OrderStatus.REFUNDED: frozenset({OrderStatus.FAILED}),
    OrderStatus.FAILED: frozenset(),
}


class IllegalTransition(ValueError):
    def __init__(self, order_id: str, current: OrderStatus, requested: OrderStatus) -> None:
        super().__init__(f"order {order_id}: cannot go from {current} to {requested}")
        self.current = current
        self.requested = requested


class ConcurrentChange(RuntimeError):
    """The order changed (a new mint attempt was recorded) between a decision and the write it allowed."""


def check_transition(order_id: str, current: OrderStatus, requested: OrderStatus) -> None:
    if requested not in ALLOWED_TRANSITIONS[current]:
        raise IllegalTransition(order_id, current, requested)
