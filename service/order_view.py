"""How an order looks to the outside (API, pages, webhooks): one view, without links, never the preimage."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from service.domain.ports import OrderRecord


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def order_data(order: OrderRecord) -> dict[str, Any]:
    """The order without links, as webhooks carry it."""
    return {
        "order_id": order.id,
        "status": order.status,
        "starknet_address": order.starknet_address,
        "bolt11": order.bolt11,
        "payment_hash": order.payment_hash,
        "amount_msat": order.amount_msat,
        "amount_sat": order.amount_msat // 1000,
        "vusd_amount": order.vusd_amount,
        "btc_usd_rate": order.btc_usd_rate,
        "spread_bps": order.spread_bps,
        "max_slippage_bps": order.max_slippage_bps,
        "created_at": iso(order.created_at),
        "expires_at": iso(order.expires_at),
        "refund_reason": order.refund_reason,
        "mint_tx_hash": order.mint_tx_hash,
    }
