"""How an order looks to the outside (API, pages, webhooks): one model, without links, never the preimage.

`OrderView` is both what order_data() builds every answer with and what the OpenAPI document describes
(service/api/openapi.py generates it from these models): the two cannot drift apart. Its status and refund
reason are the enums of service/domain/states.py, the one place that vocabulary lives.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from service.domain.ports import OrderRecord
from service.domain.states import OrderStatus, RefundReason

DateTime = Annotated[str, Field(json_schema_extra={"format": "date-time"}, description="ISO 8601, UTC (Z)")]
StarknetAddress = Annotated[str, Field(pattern=r"^0x[0-9a-f]{64}$", description="0x + 64 lower-case hex digits")]
Hex32 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


class OrderView(BaseModel):
    """An order as webhooks carry it (the API adds links and, when reading one order, its history)."""

    model_config = ConfigDict(extra="forbid")

    order_id: str
    status: OrderStatus
    starknet_address: StarknetAddress
    bolt11: str = Field(description="the Lightning invoice to pay (a hold invoice)")
    payment_hash: Hex32
    amount_msat: int
    amount_sat: int
    vusd_amount: str = Field(description='decimal string, e.g. "25.00"')
    btc_usd_rate: str = Field(description="the quote's BTC/USD rate, decimal string")
    spread_bps: int
    max_slippage_bps: int
    created_at: DateTime
    expires_at: DateTime
    refund_reason: RefundReason | None = Field(description="set when status is refunded")
    mint_tx_hash: str | None = Field(description="the Starknet mint transaction, once signed")
    metadata: dict[str, Any] | None = Field(description="the JSON object the order was created with, as given")
    reference: str | None = Field(description="the integrator's own id for the order, as given")
    redirect_url: str | None = Field(description="where the checkout sends the buyer once the order is final")


def order_view(order: OrderRecord) -> OrderView:
    return OrderView(
        order_id=order.id,
        status=OrderStatus(order.status),
        starknet_address=order.starknet_address,
        bolt11=order.bolt11,
        payment_hash=order.payment_hash,
        amount_msat=order.amount_msat,
        amount_sat=order.amount_msat // 1000,
        vusd_amount=order.vusd_amount,
        btc_usd_rate=order.btc_usd_rate,
        spread_bps=order.spread_bps,
        max_slippage_bps=order.max_slippage_bps,
        created_at=iso(order.created_at) or "",
        expires_at=iso(order.expires_at) or "",
        refund_reason=RefundReason(order.refund_reason) if order.refund_reason else None,
        mint_tx_hash=order.mint_tx_hash,
        metadata=json.loads(order.metadata_json) if order.metadata_json else None,
        reference=order.reference,
        redirect_url=order.redirect_url,
    )


def order_data(order: OrderRecord) -> dict[str, Any]:
    """The order without links, as webhooks carry it."""
    return order_view(order).model_dump(mode="json")
