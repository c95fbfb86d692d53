"""One JSON error shape for every failure: {"error": code, "message": ..., "hint": ...}."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify
from flask.typing import ResponseReturnValue
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException

from service.domain.orders import OrderRejected
from service.validation import validation_problems

log = logging.getLogger("volta.api")

HINTS = {
    400: "Check the request body against the API description at /api/v1/openapi.json.",
    404: "Check the URL; order ids look like ord_…",
    405: "See /api/v1/openapi.json for the methods each path accepts.",
    413: "Send a smaller request body.",
    415: "Send JSON with Content-Type: application/json.",
    429: "Wait before retrying; the Retry-After header says how long.",
}


def error_response(status: int, code: str, message: str, hint: str = "") -> tuple[Response, int]:
    return jsonify({"error": code, "message": message, "hint": hint or HINTS.get(status, "")}), status


def init_app(app: Flask) -> None:
    @app.errorhandler(OrderRejected)
    def _rejected(exc: OrderRejected) -> ResponseReturnValue:
        response, status = error_response(exc.http_status, exc.code, exc.message, exc.hint)
        if exc.retry_after_s is not None:
            response.headers["Retry-After"] = str(exc.retry_after_s)
        return response, status

    @app.errorhandler(ValidationError)
    def _invalid(exc: ValidationError) -> ResponseReturnValue:
        return error_response(400, "invalid_request", "; ".join(validation_problems(exc)),
                              "Send starknet_address and exactly one of vusd_amount or amount_sat.")

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> ResponseReturnValue:
        status = exc.code or 500
        code = (exc.name or "error").lower().replace(" ", "_")
        response, status = error_response(status, code, exc.description or exc.name)
        for header in ("Retry-After", "Allow"):
            if exc.get_response().headers.get(header):
                response.headers[header] = exc.get_response().headers[header]
        return response, status

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> ResponseReturnValue:
        log.exception("unhandled error")
        return error_response(500, "internal_error", "Something went wrong on our side.",
                              "Try again; if it keeps failing, contact support with the time of the request.")
