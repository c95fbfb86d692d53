"""The OpenAPI 3.0 description of the HTTP API, served at /api/v1/openapi.json and fuzzed by
schemathesis in the test suite (every response must match it)."""

from __future__ import annotations

from typing import Any

from service.domain.states import OrderStatus, RefundReason

STATUSES = [status.value for status in OrderStatus]
REASONS = [reason.value for reason in RefundReason]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


def _nullable(kind: str) -> dict[str, Any]:
    return {"type": kind, "nullable": True}


ORDER_ID = {"name": "order_id", "in": "path", "required": True, "schema": {"type": "string", "maxLength": 100}}

ORDER_PROPERTIES: dict[str, Any] = {
    "order_id": {"type": "string"},
    "status": {"type": "string", "enum": STATUSES},
    "starknet_address": {"type": "string", "pattern": "^0x[0-9a-f]{64}$"},
    "bolt11": {"type": "string"},
    "payment_hash": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
    "amount_msat": {"type": "integer"},
    "amount_sat": {"type": "integer"},
    "vusd_amount": {"type": "string"},
    "btc_usd_rate": {"type": "string"},
    "spread_bps": {"type": "integer"},
    "max_slippage_bps": {"type": "integer"},
    "created_at": {"type": "string", "format": "date-time"},
    "expires_at": {"type": "string", "format": "date-time"},
    "refund_reason": {"type": "string", "nullable": True, "enum": [*REASONS, None]},
    "mint_tx_hash": _nullable("string"),
    "checkout_url": {"type": "string"},
    "status_url": {"type": "string"},
    "events_url": {"type": "string"},
    "qr_url": {"type": "string"},
    "history": {"type": "array", "items": _ref("StateChange")},
}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object", "required": ["error", "message", "hint"],
        "properties": {"error": {"type": "string"}, "message": {"type": "string"}, "hint": {"type": "string"}},
    },
    "OrderRequest": {
        "type": "object", "required": ["starknet_address"], "additionalProperties": False,
        "properties": {
            "starknet_address": {"type": "string", "description": "0x + up to 64 hex digits, below 2**251, not 0"},
            "vusd_amount": {"type": "string", "description": "e.g. \"25.00\"; exactly one of this or amount_sat"},
            "amount_sat": {"type": "integer", "minimum": 1},
            "max_slippage_bps": {"type": "integer", "minimum": 0, "maximum": 10000},
        },
    },
    "StateChange": {
        "type": "object", "required": ["status", "at"],
        "properties": {"status": {"type": "string", "enum": STATUSES}, "at": {"type": "string"},
                       "detail": _nullable("string")},
    },
    "Order": {"type": "object", "required": ["order_id", "status", "bolt11", "payment_hash", "amount_msat",
                                             "vusd_amount", "btc_usd_rate", "max_slippage_bps", "expires_at",
                                             "checkout_url", "status_url", "events_url"],
              "properties": ORDER_PROPERTIES},
    "OrderList": {
        "type": "object", "required": ["orders", "total", "limit", "offset", "next_offset"],
        "properties": {"orders": {"type": "array", "items": _ref("Order")}, "total": {"type": "integer"},
                       "limit": {"type": "integer"}, "offset": {"type": "integer"},
                       "next_offset": _nullable("integer")},
    },
    "Rate": {
        "type": "object", "required": ["btc_usd", "updated_at_unix", "age_s", "stale", "spread_bps"],
        "properties": {"btc_usd": {"type": "string"}, "updated_at_unix": {"type": "integer"},
                       "age_s": {"type": "number"}, "stale": {"type": "boolean"}, "spread_bps": {"type": "integer"},
                       "default_max_slippage_bps": {"type": "integer"},
                       "max_allowed_slippage_bps": {"type": "integer"},
                       "max_price_drop_bps": {"type": "integer"}, "max_price_age_s": {"type": "integer"},
                       "min_order_vusd": {"type": "string"},
                       "max_order_vusd": {"type": "string"}, "quote_lifetime_s": {"type": "integer"}},
    },
    "Health": {
        "type": "object", "required": ["status", "components"],
        "properties": {"status": {"type": "string", "enum": ["ok", "degraded"]},
                       "components": {"type": "object", "additionalProperties": {"type": "string"}}},
    },
    "HistoryChallengeRequest": {
        "type": "object", "required": ["starknet_address"],
        "properties": {"starknet_address": {"type": "string", "description": "the Starknet account to prove"}},
    },
    "TypedData": {
        "type": "object", "required": ["types", "primaryType", "domain", "message"],
        "description": "SNIP-12 typed data, as wallets' signMessage takes it",
        "properties": {"types": {"type": "object"}, "primaryType": {"type": "string"},
                       "domain": {"type": "object", "required": ["name", "version", "chainId", "revision"],
                                  "properties": {"name": {"type": "string"}, "version": {"type": "string"},
                                                 "chainId": {"type": "string"}, "revision": {"type": "string"}}},
                       "message": {"type": "object"}},
    },
    "HistoryChallenge": {
        "type": "object", "required": ["starknet_address", "challenge", "typed_data", "expires_at"],
        "properties": {"starknet_address": {"type": "string", "pattern": "^0x[0-9a-f]{64}$"},
                       "challenge": {"type": "string", "description": "opaque; send it back with the signature"},
                       "typed_data": _ref("TypedData"),
                       "expires_at": {"type": "string", "format": "date-time"}},
    },
    "HistorySessionRequest": {
        "type": "object", "required": ["challenge", "signature"],
        "properties": {"challenge": {"type": "string"},
                       "signature": {"type": "array", "minItems": 1, "maxItems": 64,
                                     "items": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
                                     "description": "the felts signMessage returned, 0x-hex or decimal"}},
    },
    "HistorySession": {
        "type": "object", "required": ["session", "token_type", "starknet_address", "expires_at", "expires_in_s"],
        "properties": {"session": {"type": "string", "description": "send as Authorization: Bearer <session>"},
                       "token_type": {"type": "string", "enum": ["Bearer"]},
                       "starknet_address": {"type": "string", "pattern": "^0x[0-9a-f]{64}$"},
                       "expires_at": {"type": "string", "format": "date-time"},
                       "expires_in_s": {"type": "integer"}},
    },
    "WebhookAck": {"type": "object", "required": ["status"], "properties": {"status": {"type": "string"}}},
    "Delivery": {"type": "object", "required": ["delivery_id", "state", "attempts", "tries"],
                 "properties": {"delivery_id": {"type": "string"}, "state": {"type": "string"},
                                "attempts": {"type": "integer"}, "tries": {"type": "array"}}},
}

OPENAPI: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "VOLTA Lightning", "version": "1.0.0",
             "description": "Pay a Lightning invoice, receive VUSD on Starknet."},
    "paths": {
        "/api/v1/orders": {
            "post": {
                "operationId": "createOrder",
                "parameters": [{"name": "Idempotency-Key", "in": "header", "required": False,
                                "schema": {"type": "string", "maxLength": 255}}],
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("OrderRequest")}}},
                "responses": {"201": _json(_ref("Order"), "order created, pay its bolt11"),
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
                "parameters": [{"name": "starknet_address", "in": "query", "required": True,
                                "schema": {"type": "string"}},
                               {"name": "limit", "in": "query", "schema": {"type": "integer"}},
                               {"name": "offset", "in": "query", "schema": {"type": "integer"}}],
                "responses": {"200": _json(_ref("OrderList"), "purchases, newest first"),
                              "400": _error("invalid query"),
                              "401": _error("no session, or one that is not ours or has expired"),
                              "403": _error("the session proves another address")},
            },
        },
        "/api/v1/history/challenge": {"post": {
            "operationId": "historyChallenge",
            "description": "A SNIP-12 (revision 1) message for the account at starknet_address to sign, with a "
                           "single-use nonce and an expiry; hand `challenge` back with the signature.",
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": _ref("HistoryChallengeRequest")}}},
            "responses": {"200": _json(_ref("HistoryChallenge"), "the message to sign"),
                          "400": _error("invalid request or address"), "413": _error("body too large"),
                          "415": _error("not JSON"), "429": _error("rate limited")},
        }},
        "/api/v1/history/session": {"post": {
            "operationId": "historySession",
            "description": "Checks the signature with the account contract's own is_valid_signature on Starknet "
                           "and returns a short-lived session for GET /api/v1/orders (Authorization: Bearer).",
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": _ref("HistorySessionRequest")}}},
            "responses": {"200": _json(_ref("HistorySession"), "a session bound to the address"),
                          "400": _error("invalid request or signature format"),
                          "401": _error("signature refused by the account, no account deployed, or the challenge "
                                        "is not ours, expired or already used"),
                          "413": _error("body too large"), "415": _error("not JSON"), "429": _error("rate limited"),
                          "503": _error("Starknet unreachable")},
        }},
        "/api/v1/orders/{order_id}": {"get": {
            "operationId": "getOrder", "parameters": [ORDER_ID],
            "responses": {"200": _json(_ref("Order"), "the order with its history"), "404": _error("no such order")},
        }},
        "/api/v1/orders/{order_id}/events": {"get": {
            "operationId": "orderEvents", "parameters": [ORDER_ID],
            "responses": {"200": {"description": "Server-Sent Events, one `order` event per state change",
                                  "content": {"text/event-stream": {"schema": {
                                      "type": "object", "required": ["event", "id", "data"],
                                      "properties": {"event": {"type": "string", "enum": ["order"]},
                                                     "id": {"type": "string", "pattern": "^[0-9]+$"},
                                                     "data": {"type": "string", "contentMediaType": "application/json",
                                                              "contentSchema": _ref("Order")}}}}}},
                          "404": _error("no such order"),
                          "429": _error("too many live streams from this client")},
        }},
        "/api/v1/orders/{order_id}/qr.svg": {"get": {
            "operationId": "orderQr", "parameters": [ORDER_ID],
            "responses": {"200": {"description": "lightning:BOLT11 as a QR code",
                                  "content": {"image/svg+xml": {"schema": {"type": "string"}}}},
                          "404": _error("no such order")},
        }},
        "/api/v1/rate": {"get": {"operationId": "rate", "responses": {
            "200": _json(_ref("Rate"), "BTC/USD and pricing settings"), "429": _error("rate limited"),
            "503": _error("oracle unreachable")}}},
        "/api/v1/balance": {"get": {
            "operationId": "balance",
            "parameters": [{"name": "starknet_address", "in": "query", "required": True,
                            "schema": {"type": "string"}}],
            "responses": {"200": _json({"type": "object", "required": ["starknet_address", "vusd", "vusd_base_units"],
                                        "properties": {"starknet_address": {"type": "string"},
                                                       "vusd": {"type": "string"},
                                                       "vusd_base_units": {"type": "string"}}},
                                       "the address's VUSD balance on Starknet"),
                          "400": _error("invalid address"), "429": _error("rate limited"),
                          "503": _error("Starknet unreachable")},
        }},
        "/api/v1/accounts/{starknet_address}": {"get": {
            "operationId": "account",
            "parameters": [{"name": "starknet_address", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {"200": _json({"type": "object", "required": ["starknet_address", "deployed"],
                                        "properties": {"starknet_address": {"type": "string"},
                                                       "deployed": {"type": "boolean"}}},
                                       "whether a contract (an account) is deployed at the address"),
                          "400": _error("invalid address"), "429": _error("too many requests"),
                          "503": _error("Starknet unreachable")},
        }},
        "/api/v1/health": {"get": {"operationId": "health", "responses": {
            "200": _json(_ref("Health"), "all components up"), "429": _error("rate limited"),
            "503": _json(_ref("Health"), "something is down")}}},
        "/api/v1/webhooks/lightning": {"post": {
            "operationId": "lightningNotice",
            "parameters": [{"name": "Volta-Signature", "in": "header", "schema": {"type": "string"}},
                           {"name": "Volta-Delivery", "in": "header", "schema": {"type": "string"}}],
            "requestBody": {"content": {"application/json": {"schema": {
                "type": "object", "properties": {"payment_hash": {"type": "string"}}}}}},
            "responses": {"200": _json(_ref("WebhookAck"), "duplicate delivery, ignored"),
                          "202": _json(_ref("WebhookAck"), "accepted; the invoice is re-checked with our node"),
                          "400": _error("malformed or nested too deep"), "401": _error("bad or stale signature"),
                          "413": _error("body over 64 KiB"),
                          "404": _error("not enabled or unknown payment hash")},
        }},
        "/api/v1/webhooks/deliveries": {"get": {
            "operationId": "webhookDeliveries",
            "parameters": [{"name": "order_id", "in": "query", "schema": {"type": "string"}}],
            "responses": {"200": _json({"type": "object", "required": ["deliveries"], "properties": {
                "deliveries": {"type": "array", "items": _ref("Delivery")}}}, "the delivery log"),
                "401": _error("operator token required"), "403": _error("closed: VOLTA_ADMIN_TOKEN is not set")},
        }},
        "/api/v1/webhooks/deliveries/{delivery_id}/redeliver": {"post": {
            "operationId": "redeliverWebhook",
            "parameters": [{"name": "delivery_id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {"202": _json({"type": "object"}, "queued again"), "401": _error("operator token required"),
                          "403": _error("closed: VOLTA_ADMIN_TOKEN is not set"),
                          "404": _error("no such delivery")},
        }},
        "/api/v1/openapi.json": {"get": {"operationId": "openapi", "responses": {
            "200": _json({"type": "object"}, "this document")}}},
        "/metrics": {"get": {"operationId": "metrics", "responses": {"200": {
            "description": "Prometheus metrics", "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
    },
    "components": {"schemas": SCHEMAS, "securitySchemes": {"historySession": {
        "type": "http", "scheme": "bearer",
        "description": "a session from POST /api/v1/history/session, bound to one Starknet address"}}},
}
