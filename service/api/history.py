"""GET /api/v1/orders?starknet_address=: the purchases made for one Starknet address."""

from __future__ import annotations

from flask import Blueprint, request
from flask.typing import ResponseReturnValue

from service.api import container
from service.api.errors import error_response
from service.api.serializers import order_json
from service.domain.orders import normalize_starknet_address

blueprint = Blueprint("history", __name__, url_prefix="/api/v1")

MAX_PAGE = 100
MAX_OFFSET = 10**9


@blueprint.get("/orders")
def list_orders() -> ResponseReturnValue:
    address_text = request.args.get("starknet_address", "")
    try:
        address = normalize_starknet_address(address_text)
        limit = int(request.args.get("limit", 20))
        offset = int(request.args.get("offset", 0))
    except ValueError as exc:
        return error_response(400, "invalid_query", f"starknet_address, limit or offset is not valid: {exc}.",
                              "Use ?starknet_address=0x…&limit=20&offset=0.")
    if not (1 <= limit <= MAX_PAGE and 0 <= offset <= MAX_OFFSET):
        return error_response(400, "invalid_query", f"limit must be 1..{MAX_PAGE} and offset 0..{MAX_OFFSET}.",
                              "Use ?limit=20&offset=0.")
    rows, total = container().repository.for_address(address, limit, offset)
    next_offset = offset + len(rows) if offset + len(rows) < total else None
    return {"orders": [order_json(row, with_history=False) for row in rows], "total": total,
            "limit": limit, "offset": offset, "next_offset": next_offset}
