"""Bounds on every request body, checked before any view, rate-limit key or JSON decoder reads it.

Size: at most MAX_BODY_BYTES, else 413: a longer Content-Length is refused unread (Flask's MAX_CONTENT_LENGTH),
a chunked body is cut off one byte past the bound while it is read.
The largest body we accept, an order, is about 200 bytes; 64 KiB is 300 times that and bounds what a request
can make a thread hold. Depth: at most MAX_JSON_DEPTH nested arrays or objects, else 400 (service.json_depth).
"""

from __future__ import annotations

from flask import Flask, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import RequestEntityTooLarge

from service.api.errors import error_response
from service.json_depth import MAX_JSON_DEPTH, nesting_depth

MAX_BODY_BYTES = 64 * 1024


def init_app(app: Flask) -> None:
    """Call before any extension that reads bodies in its own before_request (Flask-Limiter's key functions):
    before_request functions run in the order they were registered."""
    # One byte more than we accept: a chunked body (no Content-Length) is cut off there rather than refused, so a
    # body that long is one too long.
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES + 1
    app.before_request(refuse_hostile_body)


def refuse_hostile_body() -> ResponseReturnValue | None:
    try:
        raw = request.get_data(cache=True)  # what views and get_json() read later: read once, bounded
    except RequestEntityTooLarge:  # its Content-Length is above the bound: nothing was read
        return _too_large()
    if len(raw) > MAX_BODY_BYTES:  # a chunked body, cut off one byte past the bound
        return _too_large()
    if nesting_depth(raw) > MAX_JSON_DEPTH:
        return error_response(400, "json_too_deep", f"The request body nests deeper than {MAX_JSON_DEPTH} levels.",
                              "Send a flat JSON object, as the API description at /api/v1/openapi.json shows.")
    return None


def _too_large() -> ResponseReturnValue:
    return error_response(413, "body_too_large", f"The request body is larger than {MAX_BODY_BYTES} bytes.",
                          "Send a JSON object of a few hundred bytes, as the API description shows.")
