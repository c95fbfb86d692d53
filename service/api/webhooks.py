"""/api/v1/webhooks: inbound Lightning payment notices, and the outgoing delivery log."""

from __future__ import annotations

import hmac
from typing import Any

from flask import Blueprint, request
from flask.typing import ResponseReturnValue

from service.api import container
from service.api.errors import error_response
from service.api.serializers import iso
from service.storage.models import WebhookDeliveryRow
from service.storage.orders import OrderNotFound
from service.webhooks.inbound import InboundRejected
from service.webhooks.outbox import DeliveryNotFound
from service.webhooks.signing import DELIVERY_HEADER, SIGNATURE_HEADER

blueprint = Blueprint("webhooks", __name__, url_prefix="/api/v1/webhooks")


@blueprint.post("/lightning")
def lightning_notice() -> ResponseReturnValue:
    container_ = container()
    try:
        order_id = container_.inbound.accept(request.headers.get(SIGNATURE_HEADER, ""),
                                           request.headers.get(DELIVERY_HEADER, ""), request.get_data())
    except InboundRejected as exc:
        return error_response(exc.http_status, exc.code, exc.message, exc.hint)
    except OrderNotFound:
        return error_response(404, "unknown_payment_hash", "No order has that payment hash.",
                              "Send notices only for invoices this service created.")
    if order_id is None:
        return {"status": "duplicate", "detail": "this delivery id was seen before; nothing done"}, 200
    if container_.worker is not None:
        container_.worker.recheck(order_id)
        detail = "the invoice is being re-checked with our node"
    else:  # the worker runs in another process; its periodic pass polls every open invoice
        detail = "the worker re-checks every open invoice with our node within 30 seconds"
    return {"status": "accepted", "detail": detail, "order_id": order_id}, 202


@blueprint.get("/deliveries")
def deliveries() -> ResponseReturnValue:
    if denied := _admin_denied():
        return denied
    rows = container().outbox.deliveries(order_id=request.args.get("order_id") or None)
    return {"deliveries": [_delivery_json(row) for row in rows]}


@blueprint.post("/deliveries/<delivery_id>/redeliver")
def redeliver(delivery_id: str) -> ResponseReturnValue:
    if denied := _admin_denied():
        return denied
    try:
        delivery = container().outbox.redeliver(delivery_id)
    except DeliveryNotFound:
        return error_response(404, "not_found", f"No webhook delivery {delivery_id!r}.",
                              "List deliveries at /api/v1/webhooks/deliveries.")
    return {"delivery_id": delivery.id, "state": delivery.state}, 202


def _admin_denied() -> ResponseReturnValue | None:
    """The delivery log holds every order's data and the receivers' URLs: closed unless the operator set a token."""
    token = container().settings.admin_token
    if not token:
        return error_response(403, "admin_token_not_set",
                              "The webhook delivery log is closed: no operator token is set.",
                              "The operator sets VOLTA_ADMIN_TOKEN, then sends Authorization: Bearer <token>.")
    scheme, _, offered = request.headers.get("Authorization", "").partition(" ")
    # As bytes: compare_digest refuses str with non-ASCII characters, and a header may hold any.
    offered_bytes = offered.strip().encode("utf-8", "replace")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), offered_bytes):
        return error_response(401, "unauthorized", "This endpoint needs the operator's token.",
                              "Send Authorization: Bearer <VOLTA_ADMIN_TOKEN>.")
    return None


def _delivery_json(row: WebhookDeliveryRow) -> dict[str, Any]:
    return {
        "delivery_id": row.id, "url": row.url, "order_id": row.order_id, "event": row.event, "state": row.state,
        "attempts": row.attempts, "next_attempt_at": iso(row.next_attempt_at), "created_at": iso(row.created_at),
        "tries": [{"at": iso(t.at), "status_code": t.status_code, "error": t.error, "duration_ms": t.duration_ms}
                  for t in row.tries],
    }
