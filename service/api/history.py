"""An address's purchase history, for whoever proves they control the address.

`GET /api/v1/orders?starknet_address=` lists purchases (order ids are the checkout capability, invoices name the
merchant node, payment hashes tie Lightning payments to the address), so it needs a session bound to that
address: `POST /api/v1/history/challenge` gives a SNIP-12 message to sign, `POST /api/v1/history/session` checks
the signature with the account contract on chain and gives the session (service/api/address_proof.py).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from flask import Blueprint, current_app, request
from flask.blueprints import BlueprintSetupState
from flask.typing import ResponseReturnValue

from service.api import container
from service.api.address_proof import SESSION_HINT, AddressProof, ProofRefused, parse_signature, site_of
from service.api.errors import error_response
from service.api.limits import limiter, reads_per_ip
from service.api.serializers import iso, order_json
from service.domain.orders import normalize_starknet_address

blueprint = Blueprint("history", __name__, url_prefix="/api/v1")
log = logging.getLogger("volta.api")

MAX_PAGE = 100
MAX_OFFSET = 10**9
PRIVATE = {"Cache-Control": "no-store", "Vary": "Authorization"}
EXTENSION = "volta.address_proof"


@blueprint.record_once
def _build_address_proof(state: BlueprintSetupState) -> None:
    state.app.extensions[EXTENSION] = AddressProof.from_settings(state.app.extensions["volta"].settings)


def address_proof() -> AddressProof:
    return current_app.extensions[EXTENSION]


@blueprint.errorhandler(ProofRefused)
def _refused(exc: ProofRefused) -> ResponseReturnValue:
    response, status = error_response(exc.status, exc.code, exc.message, exc.hint)
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="volta-history"'
    return response, status


@blueprint.get("/orders")
@limiter.limit(reads_per_ip)
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
    _require_session_for(address)
    rows, total = container().repository.for_address(address, limit, offset)
    next_offset = offset + len(rows) if offset + len(rows) < total else None
    return {"orders": [order_json(row, with_history=False) for row in rows], "total": total,
            "limit": limit, "offset": offset, "next_offset": next_offset}, 200, PRIVATE


def _require_session_for(address: str) -> None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ProofRefused(401, "history_proof_required", f"Listing the purchases of {address} needs proof that "
                           "you control that account.", SESSION_HINT)
    proven = address_proof().session_address(token.strip())
    if proven != address:
        raise ProofRefused(403, "session_for_other_address", f"This session proves {proven}, not {address}.",
                           "Ask for the purchases of the address your session proves, or prove this one: "
                           "POST /api/v1/history/challenge with its starknet_address.")


@blueprint.post("/history/challenge")
@limiter.limit(lambda: container().settings.rate_limit_history_per_ip)
def history_challenge() -> ResponseReturnValue:
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("starknet_address"), str):
        return error_response(400, "invalid_json", "The body must be a JSON object with a starknet_address string.",
                              'Send {"starknet_address": "0x…"}.')
    try:
        address = normalize_starknet_address(body["starknet_address"])
    except ValueError as exc:
        return error_response(400, "invalid_address", f"starknet_address is not valid: {exc}.",
                              "Send the address of your Starknet account: 0x and up to 64 hex digits.")
    proof = address_proof()
    challenge, token = proof.issue(address, site_of(request.host_url))
    return {"starknet_address": address, "challenge": token, "typed_data": proof.typed_data(challenge),
            "expires_at": iso(datetime.fromtimestamp(challenge.expires_at, UTC))}, 200, PRIVATE


@blueprint.post("/history/session")
@limiter.limit(lambda: container().settings.rate_limit_history_per_ip)
def history_session() -> ResponseReturnValue:
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("challenge"), str):
        return error_response(400, "invalid_json", "The body must be a JSON object with the challenge string and "
                              "the signature array.", 'Send {"challenge": "<from /history/challenge>", '
                              '"signature": ["0x…", "0x…"]}.')
    try:
        signature = parse_signature(body.get("signature"))
    except ValueError as exc:
        return error_response(400, "invalid_signature_format", f"The signature is not valid: {exc}.",
                              "Send the array your wallet's signMessage returned, e.g. [\"0x…\", \"0x…\"].")
    try:
        session = address_proof().redeem(body["challenge"], signature, container().starknet)
    except ProofRefused:
        raise
    except Exception as exc:  # the node did not answer: say so, never a 500 (nor the node's words)
        log.warning("history: Starknet could not check a signature: %s", type(exc).__name__)
        return error_response(503, "starknet_unavailable", "Starknet could not be asked to check the signature.",
                              "Try again in a minute; the same challenge works until it expires.")
    return {"session": session.token, "token_type": "Bearer", "starknet_address": session.address,
            "expires_at": iso(datetime.fromtimestamp(session.expires_at, UTC)),
            "expires_in_s": address_proof().session_lifetime_s}, 200, PRIVATE
