"""/api/v1/orders: create an order, read it, follow it live (the list by address is in service/api/history.py)."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from functools import lru_cache

import segno
from flask import Blueprint, Response, abort, request, stream_with_context
from flask.typing import ResponseReturnValue

from service.api import container
from service.api.errors import error_response
from service.api.limits import client as limited_client
from service.api.limits import limiter, reads_per_ip
from service.api.serializers import order_json
from service.domain.orders import OrderRequest
from service.domain.ports import OrderRecord
from service.domain.states import OrderStatus
from service.events import client_socket_of, client_watch
from service.storage.idempotency import IdempotencyConflict, request_digest
from service.storage.models import OrderRow
from service.storage.orders import OrderNotFound

blueprint = Blueprint("orders", __name__, url_prefix="/api/v1/orders")

SSE_KEEPALIVE_S = 15.0
QR_SCALE, QR_BORDER = 5, 2  # pixels per module, quiet zone in modules
QR_CACHED = 256  # invoices whose QR code is kept drawn (some 8 KB each): about the checkout pages open at once


def lightning_qr(bolt11: str) -> segno.QRCode:
    """`LIGHTNING:` + the invoice, all upper case (BIP 21 and BOLT 11 allow it): every character is then in the
    QR alphanumeric set, which packs 5.5 bits a character against byte mode's 8, so the code is several
    versions smaller and phones scan it more easily. A lower-case scheme would force byte mode for it all."""
    return segno.make(f"LIGHTNING:{bolt11.upper()}", error="m")


@blueprint.post("")
@limiter.limit(lambda: container().settings.rate_limit_orders_per_ip)  # per address: PlaceOrder counts orders
def create_order() -> ResponseReturnValue:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return error_response(400, "invalid_json", "The body must be a JSON object.",
                              'Send e.g. {"starknet_address": "0x…", "vusd_amount": "25.00"}.')
    order_request = OrderRequest.model_validate(body)
    key = request.headers.get("Idempotency-Key", "").strip()
    if not key:
        return _created(container().place_order.place(order_request))
    if len(key) > 255:
        return error_response(400, "invalid_idempotency_key", "Idempotency-Key is longer than 255 characters.",
                              "Use a UUID.")
    return _create_idempotently(key, order_request, body)


def _create_idempotently(key: str, order_request: OrderRequest, body: dict) -> ResponseReturnValue:
    store = container().idempotency
    try:
        existing = store.claim(key, request_digest(body))
    except IdempotencyConflict as exc:
        return error_response(409, "idempotency_conflict", exc.message,
                              "Use a new Idempotency-Key for a different order, or retry the same body.")
    if existing:
        return _created(container().repository.get(existing), replayed=True)
    try:
        order = container().place_order.place(order_request)
    except BaseException:
        store.release(key)  # nothing was created: let the client retry with the same key
        raise
    store.complete(key, order.id)
    return _created(order)


def _created(order: OrderRecord, replayed: bool = False) -> ResponseReturnValue:
    headers = {"Location": f"/api/v1/orders/{order.id}"} | ({"Idempotent-Replayed": "true"} if replayed else {})
    return order_json(order, with_history=False), 201, headers


@lru_cache(maxsize=QR_CACHED)
def lightning_qr_svg(bolt11: str) -> bytes:
    """The invoice's QR code as SVG: drawn once per invoice (drawing takes milliseconds of CPU; a reload or a
    flood of the same order's code is then a lookup)."""
    buffer = io.BytesIO()
    lightning_qr(bolt11).save(buffer, kind="svg", scale=QR_SCALE, border=QR_BORDER)
    return buffer.getvalue()


@blueprint.get("/<order_id>")
@limiter.limit(reads_per_ip)
def get_order(order_id: str) -> ResponseReturnValue:
    return order_json(load_order(order_id))


@blueprint.get("/<order_id>/qr.svg")
@limiter.limit(reads_per_ip)
def order_qr(order_id: str) -> ResponseReturnValue:
    svg = lightning_qr_svg(load_order(order_id).bolt11)
    return Response(svg, mimetype="image/svg+xml", headers={"Cache-Control": "max-age=3600"})


@blueprint.get("/<order_id>/events")
@limiter.limit(reads_per_ip)  # how often a stream may be opened; how many at once: stream_slots
def order_events(order_id: str) -> ResponseReturnValue:
    load_order(order_id)  # 404 before the stream starts
    slots, client = container().stream_slots, limited_client()
    if not slots.take(client):
        return error_response(429, "too_many_streams", f"This address already follows {slots.per_ip} orders live.",
                              "Close other checkout pages, or read the order with GET /api/v1/orders/<id>.")
    stream = _event_stream(order_id, client_socket_of(request.environ))
    response = Response(stream_with_context(stream), mimetype="text/event-stream",
                        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    response.call_on_close(lambda: slots.give_back(client))
    return response


def _event_stream(order_id: str, client_socket: object = None) -> Iterator[str]:
    """One SSE event per state change, each carrying the order as it was then (its status and history up to
    that change, the rest as now); ends after a final state. States reached in quick succession are each sent.

    It waits on an alarm of its own, rung by a change of this order (here or, through Redis, anywhere) or by
    its client going away (`client_socket`, watched by this process's one ClientWatch): a client gone ends the
    stream, and frees its slot, at once instead of at the next keepalive."""
    container_ = container()
    changes = container_.changes
    with changes.follow(order_id) as follower, client_watch().watching(client_socket, follower):
        last_sent, read_due = 0, True
        keepalive_at = next_poll_at = time.monotonic() + SSE_KEEPALIVE_S
        while not follower.client_gone:
            if read_due:  # cleared only right before a read: a ring after a keepalive's wake is not lost
                follower.clear()  # a change from here on rings again
            # Read the order when told it changed or when the safety poll is due; a keepalive alone reads nothing.
            if read_due and container_.repository.latest_event_id(order_id) != last_sent:
                row = container_.repository.get(order_id)
                order, ids = order_json(row), [event.id for event in row.events]
                history = order["history"]
                for index, event_id in enumerate(ids):
                    if event_id > last_sent:
                        snapshot = order | {"status": history[index]["status"], "history": history[: index + 1]}
                        yield f"id: {event_id}\nevent: order\ndata: {json.dumps(snapshot)}\n\n"
                        last_sent = event_id
                if OrderStatus(order["status"]).is_final:
                    return
            now = time.monotonic()
            if read_due:
                next_poll_at = now + changes.poll_interval_s
            if now >= keepalive_at:
                keepalive_at = now + SSE_KEEPALIVE_S
                yield ": keepalive\n\n"
            rung = follower.wait(max(0.0, min(next_poll_at, keepalive_at) - now))
            read_due = rung or time.monotonic() >= next_poll_at


def load_order(order_id: str) -> OrderRow:
    try:
        return container().repository.get(order_id)
    except OrderNotFound:
        abort(404, description=f"No order {order_id!r}.")
