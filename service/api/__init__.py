"""HTTP blueprints: orders (create, read, list, live events, QR) and meta (rate, health)."""

from __future__ import annotations

from flask import current_app

from service.container import Services


def services() -> Services:
    return current_app.extensions["volta"]
