"""Incoming payment notices from a hosted node or processor. A valid one only makes the worker ask our
own node about that invoice again; it never marks anything paid by itself."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from service.json_depth import loads_bounded
from service.storage.models import InboundWebhookRow
from service.storage.orders import OrderRepository
from service.webhooks.signing import verify_signature

PAYMENT_HASH = re.compile(r"^[0-9a-f]{64}$")


class InboundRejected(Exception):
    def __init__(self, http_status: int, code: str, message: str, hint: str) -> None:
        super().__init__(message)
        self.http_status, self.code, self.message, self.hint = http_status, code, message, hint


@dataclass
class InboundWebhooks:
    sessions: sessionmaker[Session]
    secret: str
    repository: OrderRepository
    clock: Callable[[], datetime]

    def accept(self, signature: str, delivery_id: str, raw_body: bytes) -> str | None:
        """Verify and de-duplicate; return the order id to re-check, or None for a repeated delivery."""
        if not self.secret:
            raise InboundRejected(404, "not_enabled", "Inbound Lightning webhooks are not enabled here.",
                                  "The operator sets VOLTA_INBOUND_WEBHOOK_SECRET to enable them.")
        try:
            verify_signature(self.secret, signature, raw_body, now=self.clock().timestamp())
        except ValueError as exc:
            raise InboundRejected(401, getattr(exc, "code", "signature_invalid"), str(exc),
                                  "Sign t.<raw body> with HMAC-SHA256 and send Volta-Signature: t=…,v1=….") from exc
        if not delivery_id or len(delivery_id) > 255:
            raise InboundRejected(400, "delivery_id_missing", "Volta-Delivery header is missing or too long.",
                                  "Send a unique id per delivery, at most 255 characters.")
        order_id = self.repository.get_by_payment_hash(self._payment_hash(raw_body)).id  # 404 before recording
        return order_id if self._first_time(delivery_id) else None

    def _payment_hash(self, raw_body: bytes) -> str:
        try:
            payment_hash = str(loads_bounded(raw_body)["payment_hash"]).lower()
        except (ValueError, KeyError, TypeError) as exc:
            raise InboundRejected(400, "invalid_body", "The body must be JSON with a payment_hash.",
                                  '{"payment_hash": "<64 hex digits>"}') from exc
        if not PAYMENT_HASH.match(payment_hash):
            raise InboundRejected(400, "invalid_body", "payment_hash must be 64 hex digits.",
                                  '{"payment_hash": "<64 hex digits>"}')
        return payment_hash

    def _first_time(self, delivery_id: str) -> bool:
        try:
            with self.sessions() as session, session.begin():
                session.add(InboundWebhookRow(delivery_id=delivery_id, received_at=self.clock()))
        except IntegrityError:
            return False
        return True
