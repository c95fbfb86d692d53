"""/api/v1/rate, /balance, /health, /openapi.json and /metrics.

Rate, balance and health ask the oracle, the devnet, lnd or the database. Each is limited per client IP
(VOLTA_RATE_LIMIT_READS_PER_IP); their calls run on small pools of their own and are awaited a few seconds at
most (service.api.dependency_reads); the oracle's price is shared by every request for 2 s, each health check
for 1 s. So a flood of GETs neither multiplies the calls nor holds the threads settlement needs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, wait
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from flask import Blueprint, Response, current_app, request
from flask.blueprints import BlueprintSetupState
from flask.typing import ResponseReturnValue
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service.api import container
from service.api.dependency_reads import BoundedCalls, SharedAnswer
from service.api.errors import error_response
from service.api.limits import limiter, reads_per_ip
from service.api.openapi import OPENAPI
from service.domain.orders import normalize_starknet_address
from service.domain.pricing import Price, vusd_from_base_units

if TYPE_CHECKING:
    from service.container import Container

blueprint = Blueprint("meta", __name__, url_prefix="/api/v1")
operations = Blueprint("operations", __name__)

RATE_SHARED_S = 2.0  # the oracle moves every few minutes; a buyer's quote is priced afresh anyway
HEALTH_SHARED_S = 1.0
RATE_TIMEOUT_S = 5.0
BALANCE_TIMEOUT_S = 5.0
HEALTH_TIMEOUT_S = 2.0  # a component that has not answered by then is reported down
BALANCE_THREADS = 4


@dataclass
class DependencyReads:
    """This app's shared and bounded reads (one per app, built when the blueprint is registered)."""

    price: SharedAnswer[Price]
    health_checks: dict[str, SharedAnswer[bool]]
    balances: BoundedCalls

    @classmethod
    def of(cls, parts: Container) -> DependencyReads:
        health_calls = BoundedCalls("health", threads=3, timeout_s=HEALTH_TIMEOUT_S)  # one per check: never queued
        checks: dict[str, Callable[[], bool]] = {
            "lnd": parts.lightning.is_reachable, "devnet": parts.starknet.is_reachable,
            "database": partial(_database_up, parts),
        }
        return cls(
            price=SharedAnswer(parts.starknet.btc_usd, RATE_SHARED_S, BoundedCalls("rate", 1, RATE_TIMEOUT_S)),
            health_checks={name: SharedAnswer(check, HEALTH_SHARED_S, health_calls) for name, check in checks.items()},
            balances=BoundedCalls("balance", BALANCE_THREADS, BALANCE_TIMEOUT_S),
        )


@blueprint.record_once
def _build_reads(state: BlueprintSetupState) -> None:
    state.app.extensions["volta_reads"] = DependencyReads.of(state.app.extensions["volta"])


def reads() -> DependencyReads:
    return current_app.extensions["volta_reads"]


@operations.get("/metrics")
def metrics() -> ResponseReturnValue:
    return Response(generate_latest(container().metrics.registry), mimetype=CONTENT_TYPE_LATEST)


@blueprint.get("/openapi.json")
def openapi() -> ResponseReturnValue:
    return OPENAPI


@blueprint.get("/rate")
@limiter.limit(reads_per_ip)
def rate() -> ResponseReturnValue:
    container_ = container()
    try:
        price = reads().price.get()
    except Exception:  # oracle or devnet unreachable or slow (NoAnswer): say so, never a 500
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
        "max_price_drop_bps": container_.settings.max_price_drop_bps,
        "max_price_age_s": container_.settings.max_price_age_s,
        "min_order_vusd": str(container_.settings.min_order_vusd),
        "max_order_vusd": str(container_.settings.max_order_vusd),
        "quote_lifetime_s": container_.settings.quote_lifetime_s,
    }


@blueprint.get("/balance")
@limiter.limit(reads_per_ip)
def balance() -> ResponseReturnValue:
    try:
        address = normalize_starknet_address(request.args.get("starknet_address", ""))
    except ValueError as exc:
        return error_response(400, "invalid_query", f"starknet_address is not valid: {exc}.",
                              "Use ?starknet_address=0x….")
    try:
        base_units = reads().balances.call(partial(container().starknet.vusd_balance, int(address, 16)))
    except Exception:  # devnet unreachable or slow (NoAnswer): say so, never a 500
        return error_response(503, "starknet_unavailable", "Starknet could not be asked for the balance.",
                              "Try again in a minute.")
    return {"starknet_address": address, "vusd": f"{vusd_from_base_units(base_units):f}",
            "vusd_base_units": str(base_units)}


@blueprint.get("/health")
@limiter.limit(reads_per_ip)
def health() -> ResponseReturnValue:
    container_ = container()
    answers = {name: check.future() for name, check in reads().health_checks.items()}
    wait(answers.values(), timeout=HEALTH_TIMEOUT_S)
    checks: dict[str, bool | None] = {name: _answered_yes(future) for name, future in answers.items()}
    checks["worker"] = container_.worker.is_alive() if container_.worker else None
    components = {name: ("up" if ok else "down") for name, ok in checks.items() if ok is not None}
    if checks["worker"] is None:
        components["worker"] = "separate process"
    healthy = all(ok for ok in checks.values() if ok is not None)
    return {"status": "ok" if healthy else "degraded", "components": components}, 200 if healthy else 503


def _answered_yes(future: Future[bool]) -> bool:
    return future.done() and not future.cancelled() and future.exception() is None and bool(future.result())


def _database_up(parts: Container) -> bool:
    parts.repository.counts_by_status()  # raises when the database does not answer: "down"
    return True
