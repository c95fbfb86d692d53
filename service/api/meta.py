"""/api/v1/rate and /api/v1/health."""

from __future__ import annotations

import time

from flask import Blueprint
from sqlalchemy.exc import SQLAlchemyError

from service.api import services

blueprint = Blueprint("meta", __name__, url_prefix="/api/v1")


@blueprint.get("/rate")
def rate():  # type: ignore[no-untyped-def]
    registry = services()
    price = registry.starknet.btc_usd()
    age_s = price.age_s(time.time())
    return {
        "btc_usd": str(price.btc_usd),
        "updated_at_unix": price.updated_at_unix,
        "age_s": round(age_s, 1),
        "stale": age_s > registry.settings.max_price_age_s,
        "spread_bps": registry.settings.spread_bps,
        "default_max_slippage_bps": registry.settings.default_max_slippage_bps,
        "max_allowed_slippage_bps": registry.settings.max_allowed_slippage_bps,
        "min_order_vusd": str(registry.settings.min_order_vusd),
        "max_order_vusd": str(registry.settings.max_order_vusd),
        "quote_lifetime_s": registry.settings.quote_lifetime_s,
    }


@blueprint.get("/health")
def health():  # type: ignore[no-untyped-def]
    registry = services()
    checks = {
        "lnd": registry.lightning.is_reachable(),
        "devnet": registry.starknet.is_reachable(),
        "database": _database_up(),
        "worker": registry.worker.is_alive() if registry.worker else None,
    }
    components = {name: ("up" if ok else "down") for name, ok in checks.items() if ok is not None}
    if checks["worker"] is None:
        components["worker"] = "separate process"
    healthy = all(ok for ok in checks.values() if ok is not None)
    return {"status": "ok" if healthy else "degraded", "components": components}, 200 if healthy else 503


def _database_up() -> bool:
    try:
        services().repository.counts_by_status()
    except SQLAlchemyError:
        return False
    return True
