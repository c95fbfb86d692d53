"""/api/v1/rate and /api/v1/health."""

from __future__ import annotations

import time

from flask import Blueprint, Response, request
from flask.typing import ResponseReturnValue
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import SQLAlchemyError

from service.api import container
from service.api.errors import error_response
from service.api.openapi import OPENAPI
from service.domain.orders import normalize_starknet_address
from service.domain.pricing import vusd_from_base_units

blueprint = Blueprint("meta", __name__, url_prefix="/api/v1")
operations = Blueprint("operations", __name__)


@operations.get("/metrics")
def metrics() -> ResponseReturnValue:
    return Response(generate_latest(container().metrics.registry), mimetype=CONTENT_TYPE_LATEST)


@blueprint.get("/openapi.json")
def openapi() -> ResponseReturnValue:
    return OPENAPI


@blueprint.get("/rate")
def rate() -> ResponseReturnValue:
    container_ = container()
    try:
        price = container_.starknet.btc_usd()
    except Exception:  # oracle or devnet unreachable: say so, never a 500
        return error_response(503, "price_unavailable", "The BTC/USD price oracle is unreachable.",
                              "Try again in a minute.")
    age_s = price.age_s(time.time())
    return {
        "btc_usd": str(price.btc_usd),
        "updated_at_unix": price.updated_at_unix,
        "age_s": round(age_s, 1),
        "stale": age_s > container_.settings.max_price_age_s,
        "spread_bps": container_.settings.spread_bps,
        "default_max_slippage_bps": container_.settings.default_max_slippage_bps,
        "max_allowed_slippage_bps": container_.settings.max_allowed_slippage_bps,
        "min_order_vusd": str(container_.settings.min_order_vusd),
        "max_order_vusd": str(container_.settings.max_order_vusd),
        "quote_lifetime_s": container_.settings.quote_lifetime_s,
    }


@blueprint.get("/balance")
def balance() -> ResponseReturnValue:
    try:
        address = normalize_starknet_address(request.args.get("starknet_address", ""))
    except ValueError as exc:
        return error_response(400, "invalid_query", f"starknet_address is not valid: {exc}.",
                              "Use ?starknet_address=0x….")
    try:
        base_units = container().starknet.vusd_balance(int(address, 16))
    except Exception:  # devnet unreachable: say so, never a 500
        return error_response(503, "starknet_unavailable", "Starknet could not be asked for the balance.",
                              "Try again in a minute.")
    return {"starknet_address": address, "vusd": f"{vusd_from_base_units(base_units):f}",
            "vusd_base_units": str(base_units)}


@blueprint.get("/health")
def health() -> ResponseReturnValue:
    container_ = container()
    checks = {
        "lnd": container_.lightning.is_reachable(),
        "devnet": container_.starknet.is_reachable(),
        "database": _database_up(),
        "worker": container_.worker.is_alive() if container_.worker else None,
    }
    components = {name: ("up" if ok else "down") for name, ok in checks.items() if ok is not None}
    if checks["worker"] is None:
        components["worker"] = "separate process"
    healthy = all(ok for ok in checks.values() if ok is not None)
    return {"status": "ok" if healthy else "degraded", "components": components}, 200 if healthy else 503


def _database_up() -> bool:
    try:
        container().repository.counts_by_status()
    except SQLAlchemyError:
        return False
    return True
