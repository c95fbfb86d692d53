"""Rate limits on order creation, per client IP and per Starknet address (Flask-Limiter)."""

from __future__ import annotations

from flask import Flask, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from service.config import Settings
from service.domain.orders import normalize_starknet_address

limiter = Limiter(key_func=get_remote_address)


def starknet_address_key() -> str:
    body = request.get_json(silent=True)
    try:
        return "address:" + normalize_starknet_address(str(body["starknet_address"]))  # type: ignore[index]
    except (TypeError, KeyError, ValueError):
        return "address:invalid:" + get_remote_address()


def init_app(app: Flask, settings: Settings) -> None:
    app.config["RATELIMIT_STORAGE_URI"] = settings.rate_limit_storage_url
    app.config["RATELIMIT_HEADERS_ENABLED"] = True
    limiter.init_app(app)
