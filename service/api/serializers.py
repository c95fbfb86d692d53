"""How an order looks to the API: the order view (service/order_view.py) with its links and history. The preimage
is never part of it. The models here are also what the OpenAPI document is generated from."""

from __future__ import annotations

from typing import Any

from flask import url_for
from pydantic import BaseModel, Field

from service.domain.ports import OrderRecord
from service.domain.states import OrderStatus
from service.order_view import DateTime, OrderView, iso, order_data, order_view

__all__ = ["Order", "StateChange", "iso", "order_data", "order_json"]


class StateChange(BaseModel):
    status: OrderStatus
    at: DateTime
    detail: str | None


class Order(OrderView):
    """An order with its links; with its history when one order is read (not in lists)."""

    checkout_url: str = Field(description="the page that shows the QR code and follows the order")
    status_url: str
    events_url: str = Field(description="Server-Sent Events, one per state change")
    qr_url: str
    history: list[StateChange] = Field(default_factory=list, description="every state the order went through")


def order_json(order: OrderRecord, with_history: bool = True) -> dict[str, Any]:
    view = order_view(order)
    body = Order(
        **dict(view),
        checkout_url=url_for("web.checkout", order_id=order.id, _external=True),
        status_url=url_for("orders.get_order", order_id=order.id, _external=True),
        events_url=url_for("orders.order_events", order_id=order.id, _external=True),
        qr_url=url_for("orders.order_qr", order_id=order.id, _external=True),
        history=[StateChange(status=OrderStatus(event.status), at=iso(event.at) or "", detail=event.detail)
                 for event in order.events] if with_history else [],
    )
    return body.model_dump(mode="json", exclude=None if with_history else {"history"})
