"""The OpenAPI 3.0 description of the HTTP API, served at /api/v1/openapi.json (and rendered at /api/v1/docs),
fuzzed by schemathesis in the test suite (every response must match it).

Every schema is generated from the pydantic models the service validates requests with and builds answers with
(service/domain/orders.py, service/order_view.py, service/api/serializers.py, service/api/schemas.py), so the
vocabulary (order statuses, refund reasons) comes from service/domain/states.py alone. This module only says
which operation takes and answers which model, with which status codes.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from service.api import schemas
from service.api.serializers import Order, StateChange
from service.domain.orders import OrderRequest

REF_PREFIX = "#/components/schemas/"
REQUESTS: list[type[BaseModel]] = [OrderRequest, schemas.HistoryChallengeRequest, schemas.HistorySessionRequest,
                                   schemas.LightningNotice]
RESPONSES: list[type[BaseModel]] = [
    schemas.Error, Order, StateChange, schemas.OrderList, schemas.Rate, schemas.Health, schemas.Balance,
    schemas.Account, schemas.HistoryChallenge, schemas.TypedData, schemas.HistorySession, schemas.WebhookAck,
    schemas.DeliveryList, schemas.Delivery, schemas.Redelivery,
    schemas.LnurlPayRequest, schemas.LnurlInvoice, schemas.LnurlError,
]


# -- JSON Schema (2020-12, as pydantic writes it) to OpenAPI 3.0 schema objects ------------------------------------

def _openapi30(node: Any, enums: dict[str, dict[str, Any]]) -> Any:
    """OpenAPI 3.0 has `nullable` instead of a null type, boolean exclusive bounds, no `const`; enums are inlined
    (a nullable one lists null, as 3.0.3 asks) so each property shows its values where it is."""
    if isinstance(node, list):
        return [_openapi30(item, enums) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref", "")
    if ref.startswith(REF_PREFIX) and ref[len(REF_PREFIX):] in enums:
        return _openapi30({**enums[ref[len(REF_PREFIX):]], **{k: v for k, v in node.items() if k != "$ref"}}, enums)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "title":
            continue
        if key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            out["minimum" if key == "exclusiveMinimum" else "maximum"] = value
            out[key] = True
        elif key == "const":
            out["enum"] = [value]
        elif key in ("properties", "$defs"):
            out[key] = {name: _openapi30(schema, enums) for name, schema in value.items()}
        else:
            out[key] = _openapi30(value, enums)
    variants = out.get("anyOf")
    if variants and {"type": "null"} in variants:
        others = [variant for variant in variants if variant != {"type": "null"}]
        del out["anyOf"]
        inner = others[0] if len(others) == 1 else {"anyOf": others}
        if "$ref" in inner:
            inner = {"allOf": [inner]}
        out = {**inner, **out, "nullable": True}
        if "enum" in out and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
    return out


def component_schemas() -> dict[str, Any]:
    models: list[tuple[type[BaseModel], JsonSchemaMode]] = [(model, "validation") for model in REQUESTS]
    models += [(model, "serialization") for model in RESPONSES]
    _, generated = models_json_schema(models, ref_template=REF_PREFIX + "{model}")
    definitions: dict[str, Any] = generated["$defs"]
    enums = {name: schema for name, schema in definitions.items() if "enum" in schema and "properties" not in schema}
    return {name: _openapi30(schema, enums) for name, schema in definitions.items() if name not in enums}


# -- operations ----------------------------------------------------------------------------------------------------

def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF_PREFIX + model.__name__}


def _json(model: type[BaseModel] | dict[str, Any], description: str) -> dict[str, Any]:
    schema = model if isinstance(model, dict) else _ref(model)
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(schemas.Error, description)


def _body(model: type[BaseModel], required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {"application/json": {"schema": _ref(model)}}}


def _param(name: str, where: Literal["path", "query", "header"], schema: dict[str, Any] | None = None,
           required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": where, "required": required or where == "path",
            "schema": schema or {"type": "string"}}


ORDER_ID = _param("order_id", "path", {"type": "string", "maxLength": 100})
NOT_FOUND = _error("no such order")
RATE_LIMITED = _error("rate limited")
OPERATOR_ONLY = {"401": _error("operator token required"), "403": _error("closed: VOLTA_ADMIN_TOKEN is not set")}
ORDER_EVENT = {  # one Server-Sent Event: its data is an Order as JSON
    "type": "object", "required": ["event", "id", "data"],
    "properties": {"event": {"type": "string", "enum": ["order"]}, "id": {"type": "string", "pattern": "^[0-9]+$"},
                   "data": {"type": "string", "contentMediaType": "application/json", "contentSchema": _ref(Order)}},
}

USERNAME = _param("username", "path", {"type": "string", "maxLength": 80,
                                        "description": "a Starknet address (0x…) or an operator's alias"})
LNURL_REFUSED = {"429": _json(schemas.LnurlError, "rate limited"),
                 "404": _error("not a path of this service (e.g. a / in the username)")}


def _lnurl(model: type[BaseModel], description: str) -> dict[str, Any]:
    """LNURL answers its refusals with HTTP 200 too (LUD-01), so a 200 is the answer or the error form."""
    return _json({"oneOf": [_ref(model), _ref(schemas.LnurlError)]}, description)


PATHS: dict[str, Any] = {
    "/api/v1/orders": {
        "post": {
            "operationId": "createOrder",
            "parameters": [_param("Idempotency-Key", "header", {"type": "string", "maxLength": 255})],
            "requestBody": _body(OrderRequest),
            "responses": {"201": _json(Order, "order created, pay its bolt11"),
                          "400": _error("invalid request"), "409": _error("idempotency key conflict"),
                          "413": _error("body over 64 KiB"), "415": _error("not JSON"),
                          "422": _error("over the daily limit"),
                          "429": _error("rate limited (per IP, or per address: address_rate_limited)"),
                          "503": _error("price or node unavailable")},
        },
        "get": {
            "operationId": "listOrders",
            "description": "An address's purchases, newest first. Needs a session proving the address "
                           "(POST /api/v1/history/challenge, then /api/v1/history/session): order ids, invoices "
                           "and payment hashes are not for anyone who merely knows the address.",
            "security": [{"historySession": []}],
            "parameters": [_param("starknet_address", "query", required=True),
                           _param("limit", "query", {"type": "integer"}),
                           _param("offset", "query", {"type": "integer"})],
            "responses": {"200": _json(schemas.OrderList, "purchases, newest first"),
                          "400": _error("invalid query"),
                          "401": _error("no session, or one that is not ours or has expired"),
                          "403": _error("the session proves another address"), "429": RATE_LIMITED},
        },
    },
    "/api/v1/history/challenge": {"post": {
        "operationId": "historyChallenge",
        "description": "A SNIP-12 (revision 1) message for the account at starknet_address to sign, with a "
                       "single-use nonce and an expiry; hand `challenge` back with the signature.",
        "requestBody": _body(schemas.HistoryChallengeRequest),
        "responses": {"200": _json(schemas.HistoryChallenge, "the message to sign"),
                      "400": _error("invalid request or address"), "413": _error("body too large"),
                      "415": _error("not JSON"), "429": RATE_LIMITED},
    }},
    "/api/v1/history/session": {"post": {
        "operationId": "historySession",
        "description": "Checks the signature with the account contract's own is_valid_signature on Starknet "
                       "and returns a short-lived session for GET /api/v1/orders (Authorization: Bearer).",
        "requestBody": _body(schemas.HistorySessionRequest),
        "responses": {"200": _json(schemas.HistorySession, "a session bound to the address"),
                      "400": _error("invalid request or signature format"),
                      "401": _error("signature refused by the account, no account deployed, or the challenge "
                                    "is not ours, expired or already used"),
                      "413": _error("body too large"), "415": _error("not JSON"), "429": RATE_LIMITED,
                      "503": _error("Starknet unreachable")},
    }},
    "/api/v1/orders/{order_id}": {"get": {
        "operationId": "getOrder", "parameters": [ORDER_ID],
        "responses": {"200": _json(Order, "the order with its history"), "404": NOT_FOUND, "429": RATE_LIMITED},
    }},
    "/api/v1/orders/{order_id}/events": {"get": {
        "operationId": "orderEvents", "parameters": [ORDER_ID],
        "responses": {"200": {"description": "Server-Sent Events, one `order` event per state change",
                              "content": {"text/event-stream": {"schema": ORDER_EVENT}}},
                      "404": NOT_FOUND,
                      "429": _error("rate limited, or too many live streams from this client (too_many_streams)")},
    }},
    "/api/v1/orders/{order_id}/qr.svg": {"get": {
        "operationId": "orderQr", "parameters": [ORDER_ID],
        "responses": {"200": {"description": "LIGHTNING: + the upper-case BOLT11 as a QR code (alphanumeric mode)",
                              "content": {"image/svg+xml": {"schema": {"type": "string"}}}},
                      "404": NOT_FOUND, "429": RATE_LIMITED},
    }},
    "/api/v1/rate": {"get": {"operationId": "rate", "responses": {
        "200": _json(schemas.Rate, "BTC/USD and pricing settings"), "429": RATE_LIMITED,
        "503": _error("oracle unreachable")}}},
    "/api/v1/balance": {"get": {
        "operationId": "balance", "parameters": [_param("starknet_address", "query", required=True)],
        "responses": {"200": _json(schemas.Balance, "the address's VUSD balance on Starknet"),
                      "400": _error("invalid address"), "429": RATE_LIMITED, "503": _error("Starknet unreachable")},
    }},
    "/api/v1/accounts/{starknet_address}": {"get": {
        "operationId": "account", "parameters": [_param("starknet_address", "path")],
        "responses": {"200": _json(schemas.Account, "whether a contract (an account) is deployed at the address"),
                      "400": _error("invalid address"), "429": _error("too many requests"),
                      "503": _error("Starknet unreachable")},
    }},
    "/api/v1/health": {"get": {"operationId": "health", "responses": {
        "200": _json(schemas.Health, "all components up"), "429": RATE_LIMITED,
        "503": _json(schemas.Health, "something is down")}}},
    "/api/v1/webhooks/lightning": {"post": {
        "operationId": "lightningNotice",
        "parameters": [_param("Volta-Signature", "header"), _param("Volta-Delivery", "header")],
        "requestBody": _body(schemas.LightningNotice, required=False),
        "responses": {"200": _json(schemas.WebhookAck, "duplicate delivery, ignored"),
                      "202": _json(schemas.WebhookAck, "accepted; the invoice is re-checked with our node"),
                      "400": _error("malformed or nested too deep"), "401": _error("bad or stale signature"),
                      "413": _error("body over 64 KiB"), "404": _error("not enabled or unknown payment hash")},
    }},
    "/api/v1/webhooks/deliveries": {"get": {
        "operationId": "webhookDeliveries", "parameters": [_param("order_id", "query")],
        "responses": {"200": _json(schemas.DeliveryList, "the delivery log"), **OPERATOR_ONLY},
    }},
    "/api/v1/webhooks/deliveries/{delivery_id}/redeliver": {"post": {
        "operationId": "redeliverWebhook", "parameters": [_param("delivery_id", "path")],
        "responses": {"202": _json(schemas.Redelivery, "queued again"), **OPERATOR_ONLY,
                      "404": _error("no such delivery")},
    }},
    "/.well-known/lnurlp/{username}": {"get": {
        "operationId": "lightningAddress", "parameters": [USERNAME],
        "description": "LUD-16 Lightning Address: <username>@<host> resolves here to a LUD-06 payRequest for VUSD "
                       "minted to the username's Starknet address.",
        "responses": {"200": _lnurl(schemas.LnurlPayRequest, "the payRequest, or LNURL's error form"),
                      **LNURL_REFUSED},
    }},
    "/api/v1/lnurlp/{username}/callback": {"get": {
        "operationId": "lightningAddressInvoice",
        "parameters": [USERNAME, _param("amount", "query", {"type": "string", "pattern": "^[0-9]{1,25}$",
                                                             "description": "millisatoshis, a whole number of sats"},
                                        required=True)],
        "description": "A fresh order for the amount the wallet chose, as POST /api/v1/orders makes it (same "
                       "limits); its hold invoice commits to sha256(metadata).",
        "responses": {"200": _lnurl(schemas.LnurlInvoice, "the invoice with a LUD-09 message, or LNURL's error form"),
                      **LNURL_REFUSED},
    }},
    "/api/v1/openapi.json": {"get": {"operationId": "openapi", "responses": {
        "200": _json({"type": "object"}, "this document")}}},
    "/api/v1/docs": {"get": {"operationId": "docs", "responses": {"200": {
        "description": "this document, rendered by Swagger UI (vendored, same origin)",
        "content": {"text/html": {"schema": {"type": "string"}}}}}}},
    "/metrics": {"get": {"operationId": "metrics", "responses": {"200": {
        "description": "Prometheus metrics", "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
}

# -- links: where an answer leads (create -> read -> events -> QR -> history); schemathesis follows them ------------

ITS_ORDER = {"order_id": "$response.body#/order_id"}
ITS_ADDRESS = {"starknet_address": "$response.body#/starknet_address"}


def _link(operation_id: str, description: str, parameters: dict[str, str] | None = None,
          request_body: dict[str, str] | None = None) -> dict[str, Any]:
    """A link to `operation_id`; `request_body` names the fields of the body to send that come from the answer."""
    link: dict[str, Any] = {"operationId": operation_id, "description": description}
    if parameters:
        link["parameters"] = parameters
    if request_body:
        link["requestBody"] = request_body
    return link


LINKS: dict[tuple[str, str], dict[str, dict[str, Any]]] = {
    ("createOrder", "201"): {
        "ReadOrder": _link("getOrder", "the order as it is now", ITS_ORDER),
        "FollowOrder": _link("orderEvents", "each state change of the order, live", ITS_ORDER),
        "DrawOrderQr": _link("orderQr", "the invoice as a QR code", ITS_ORDER),
        "ListAddressHistory": _link("listOrders", "the address's purchases (with a session proving it)", ITS_ADDRESS),
        "NotifyPayment": _link("lightningNotice", "a hosted node's signed notice that the invoice was paid",
                               request_body={"payment_hash": "$response.body#/payment_hash"}),
        "OrderDeliveries": _link("webhookDeliveries", "the order's webhook deliveries (operator only)", ITS_ORDER),
        "AddressBalance": _link("balance", "the address's VUSD balance", ITS_ADDRESS),
        "ProveAddress": _link("historyChallenge", "the message to sign to prove the address",
                              request_body=ITS_ADDRESS),
    },
    ("getOrder", "200"): {
        "FollowReadOrder": _link("orderEvents", "each state change of the order, live", ITS_ORDER),
        "DrawReadOrderQr": _link("orderQr", "the invoice as a QR code", ITS_ORDER),
        "ListReadOrderHistory": _link("listOrders", "the address's purchases (with a session proving it)",
                                      ITS_ADDRESS),
    },
    ("historyChallenge", "200"): {
        "RedeemChallenge": _link("historySession", "the session, for the challenge signed by the account",
                                 request_body={"challenge": "$response.body#/challenge"}),
    },
    ("historySession", "200"): {
        "ListProvenHistory": _link("listOrders", "the proven address's purchases", ITS_ADDRESS),
    },
}


def _add_links(paths: dict[str, Any]) -> None:
    operations = {operation["operationId"]: operation for path in paths.values() for operation in path.values()}
    for (operation_id, status), links in LINKS.items():
        operations[operation_id]["responses"][status]["links"] = links


_add_links(PATHS)

OPENAPI: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "VOLTA Lightning", "version": "1.0.0",
             "description": "Pay a Lightning invoice, receive VUSD on Starknet."},
    "paths": PATHS,
    "components": {"schemas": component_schemas(), "securitySchemes": {"historySession": {
        "type": "http", "scheme": "bearer",
        "description": "a session from POST /api/v1/history/session, bound to one Starknet address"}}},
}
