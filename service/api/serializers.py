"""How an order looks to the outside. The preimage is never part of it."""

from __future__ import annotations

from typing import Any

from flask import url_for

from service.domain.ports import OrderRecord
from service.order_view import iso, order_data

__all__ = ["iso", "order_data", "order_json"]


def order_json(order: OrderRecord, with_history: bool = True) -> dict[str, Any]:
    body = order_data(order) | {
        "checkout_url": url_for("web.checkout", order_id=order.id, _external=True),
        "status_url": url_for("orders.get_order", order_id=order.id, _external=True),
        "events_url": url_for("orders.order_events", order_id=order.id, _external=True),
        "qr_url": url_for("orders.order_qr", order_id=order.id, _external=True),
    }
    if with_history:
        body["history"] = [{"status": event.status, "at": iso(event.at), "detail": event.detail}
                           for event in order.events]
    return body
