"""VOLTA Lightning: buy VUSD on Starknet by paying a Lightning invoice.

`create_app()` is the Flask application factory (blueprints in service/api); the domain logic lives in
service/domain and knows nothing of Flask.
"""

from __future__ import annotations

import atexit
import logging
from typing import Any

from flask import Flask

from service.config import Settings, load_settings
from service.container import Services, build_services


def create_app(settings: Settings | None = None, overrides: dict[str, Any] | None = None) -> Flask:
    settings = settings or load_settings(overrides)
    app = Flask(__name__)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    services = build_services(settings, with_worker=settings.run_worker)
    app.extensions["volta"] = services

    from service import web
    from service.api import errors, limits, meta, orders, webhooks

    errors.init_app(app)
    limits.init_app(app, settings)
    for blueprint in (orders.blueprint, meta.blueprint, meta.operations, webhooks.blueprint, web.blueprint):
        app.register_blueprint(blueprint)

    if services.worker is not None:
        services.repository.subscribe(_watch_new_orders(services))
    services.start_background()
    atexit.register(services.close)
    logging.getLogger("volta").info("VOLTA service ready (worker %s)", "on" if services.worker else "off")
    return app


def _watch_new_orders(services: Services):  # type: ignore[no-untyped-def]
    def on_change(order):  # type: ignore[no-untyped-def]
        if order.status == "awaiting_payment" and services.worker is not None:
            services.worker.watch(order)

    return on_change
