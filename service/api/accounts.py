"""/api/v1/accounts/<address>: whether a Starknet account is deployed there, so the buy page can warn about
a mistyped address before VUSD is minted to it. A warning, never a refusal: accounts are often deployed on
their first transaction, after the VUSD has arrived."""

from __future__ import annotations

from flask import Blueprint
from flask.typing import ResponseReturnValue

from service.api import container
from service.api.errors import error_response
from service.api.limits import limiter
from service.domain.orders import normalize_starknet_address

blueprint = Blueprint("accounts", __name__, url_prefix="/api/v1/accounts")


@blueprint.get("/<address>")
@limiter.limit(lambda: container().settings.rate_limit_accounts_per_ip)  # each answer asks the Starknet node
def account(address: str) -> ResponseReturnValue:
    try:
        normalized = normalize_starknet_address(address)
    except ValueError as exc:
        return error_response(400, "invalid_starknet_address", f"The address is not valid: {exc}.",
                              "Use 0x followed by up to 64 hex digits.")
    try:
        deployed = container().starknet.has_contract(int(normalized, 16))
    except Exception:  # the node unreachable or slow: say so, never a 500
        return error_response(503, "starknet_unavailable", "Starknet could not be asked about this address.",
                              "Try again in a minute.")
    return {"starknet_address": normalized, "deployed": deployed}, 200, {"Cache-Control": "max-age=60"}
