"""HTTP blueprints: orders (create, read, list, live events, QR), meta (rate, health, OpenAPI, metrics) and
webhooks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import current_app

if TYPE_CHECKING:
    from service.container import Container


def container() -> Container:
    return current_app.extensions["volta"]
