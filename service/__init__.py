"""VOLTA Lightning: buy VUSD on Starknet by paying a Lightning invoice.

`create_app()` is the Flask application factory (blueprints in service/api); the domain logic lives in
service/domain and knows nothing of Flask.
"""

from __future__ import annotations

import atexit
import logging
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from service.config import Settings, load_settings
from service.container import build_container


def create_app(settings: Settings | None = None, overrides: dict[str, Any] | None = None) -> Flask:
    settings = settings or load_settings(overrides)
    app = Flask(__name__)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    if settings.proxy_hops:
        # The client's address for the limits, and the scheme it used: behind a TLS proxy the language cookie is
        # Secure and URLs built from the request (LNURL callbacks) are https.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.proxy_hops,  # type: ignore[method-assign]
                                x_proto=settings.proxy_hops)
    container = build_container(settings, with_worker=settings.run_worker)
    app.extensions["volta"] = container

    from service import web
    from service.api import accounts, bodies, errors, history, limits, lnurl, meta, orders, webhooks
    from service.web import i18n

    errors.init_app(app)
    i18n.init_app(app)
    bodies.init_app(app)  # before the limiter, whose key functions may read the body
    limits.init_app(app, settings)
    for blueprint in (orders.blueprint, history.blueprint, accounts.blueprint, meta.blueprint, meta.operations,
                      webhooks.blueprint, web.blueprint, lnurl.blueprint):
        app.register_blueprint(blueprint)

    container.start_background()
    atexit.register(container.close)
    logging.getLogger("volta").info("VOLTA service ready (worker %s)", "on" if container.worker else "off")
    return app

