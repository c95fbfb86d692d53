"""Outgoing webhooks: written to the outbox in the same transaction as the state change they announce,
then delivered by a background thread with retries, so neither a crash nor a slow receiver loses one."""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.order_view import iso, order_data
from service.storage.models import OrderRow, WebhookAttemptRow, WebhookDeliveryRow
from service.webhooks.signing import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    STANDARD_ID_HEADER,
    STANDARD_SIGNATURE_HEADER,
    STANDARD_TIMESTAMP_HEADER,
    sign,
    sign_standard,
    signing_key,
    standard_key,
)

log = logging.getLogger("volta.webhooks")
RETRYABLE_STATUS = frozenset({408, 429})
LEASE = timedelta(seconds=60)  # a claimed delivery is not picked up by another dispatcher meanwhile
MAX_BACKOFF_S = 3600


class DeliveryNotFound(KeyError):
    pass


@dataclass
class WebhookOutbox:
    sessions: sessionmaker[Session]
    urls: list[str]
    secret: str
    clock: Callable[[], datetime]
    backoff_base_s: float = 5.0
    max_attempts: int = 10
    on_outcome: Callable[[str], None] = lambda outcome: None

    def __post_init__(self) -> None:
        self._standard_key = signing_key(self.secret)
        if self.urls and standard_key(self.secret) is None:
            log.warning("VOLTA_WEBHOOK_SECRET is not in the Standard Webhooks form (whsec_ + base64 of 24 to 64 "
                        "random bytes): webhook-signature is keyed with the secret's own bytes, so receivers "
                        "must pass whsec_ + base64(secret) to their library. Make a new one with "
                        "`python -m service.webhooks.signing`.")

    # -- writing (inside the order's transaction) -----------------------------------------------------

    def write(self, session: Session, order: OrderRow) -> None:
        now = self.clock()
        # type, timestamp and data as Standard Webhooks recommends; created_at (the same moment) stays for the
        # receivers written before.
        body = json.dumps({"type": f"order.{order.status}", "timestamp": iso(now), "created_at": iso(now),
                           "data": order_data(order)})
        for url in self.urls:
            session.add(WebhookDeliveryRow(
                id=f"whd_{uuid.uuid4().hex}", url=url, order_id=order.id, event=f"order.{order.status}", body=body,
                state="pending", attempts=0, next_attempt_at=now, created_at=now,
            ))

    # -- reading and redelivering ------------------------------------------------------------------------

    def deliveries(self, order_id: str | None = None, limit: int = 100) -> list[WebhookDeliveryRow]:
        with self.sessions() as session:
            query = select(WebhookDeliveryRow).order_by(WebhookDeliveryRow.created_at.desc()).limit(limit)
            if order_id:
                query = query.where(WebhookDeliveryRow.order_id == order_id)
            return list(session.scalars(query))

    def redeliver(self, delivery_id: str) -> WebhookDeliveryRow:
        with self.sessions() as session, session.begin():
            delivery = session.get(WebhookDeliveryRow, delivery_id)
            if delivery is None:
                raise DeliveryNotFound(delivery_id)
            delivery.state, delivery.next_attempt_at = "pending", self.clock()
        return delivery

    # -- delivering ----------------------------------------------------------------------------------------

    def claim_due(self, limit: int = 20) -> list[WebhookDeliveryRow]:
        now = self.clock()
        with self.sessions() as session, session.begin():
            query = (select(WebhookDeliveryRow)
                     .where(WebhookDeliveryRow.state == "pending", WebhookDeliveryRow.next_attempt_at <= now)
                     .order_by(WebhookDeliveryRow.next_attempt_at).limit(limit).with_for_update(skip_locked=True))
            due = list(session.scalars(query))
            for delivery in due:
                delivery.next_attempt_at = now + LEASE
            return due

    def attempt(self, delivery: WebhookDeliveryRow, http: httpx.Client) -> None:
        body = delivery.body.encode()
        # The delivery id names this event for this receiver, the same on every retry and redelivery: the
        # receiver's idempotency key. The timestamp is this attempt's, as the spec asks.
        timestamp = int(self.clock().timestamp())
        headers = {"Content-Type": "application/json",
                   STANDARD_ID_HEADER: delivery.id, STANDARD_TIMESTAMP_HEADER: str(timestamp),
                   STANDARD_SIGNATURE_HEADER: sign_standard(self._standard_key, delivery.id, timestamp, body),
                   SIGNATURE_HEADER: sign(self.secret, body, timestamp), DELIVERY_HEADER: delivery.id}
        started = time.monotonic()
        status_code, error = None, None
        try:
            status_code = http.post(delivery.url, content=body, headers=headers).status_code
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        self._record(delivery.id, status_code, error, int((time.monotonic() - started) * 1000))

    def _record(self, delivery_id: str, status_code: int | None, error: str | None, duration_ms: int) -> None:
        now = self.clock()
        with self.sessions() as session, session.begin():
            delivery = session.get(WebhookDeliveryRow, delivery_id)
            assert delivery is not None
            delivery.attempts += 1
            session.add(WebhookAttemptRow(delivery_id=delivery_id, at=now, status_code=status_code, error=error,
                                          duration_ms=duration_ms))
            outcome = _outcome(status_code)
            if outcome == "retry" and delivery.attempts >= self.max_attempts:
                outcome = "failed"
            if outcome == "retry":
                delay = min(self.backoff_base_s * 2 ** (delivery.attempts - 1), MAX_BACKOFF_S)
                delivery.next_attempt_at = now + timedelta(seconds=delay)
            else:
                delivery.state = outcome
        log.info("webhook %s attempt %s: %s", delivery_id, status_code or error, outcome)
        self.on_outcome(outcome)


def _outcome(status_code: int | None) -> str:
    """5xx, 408, 429 and network errors are worth retrying; other 4xx never will be."""
    if status_code is None or status_code >= 500 or status_code in RETRYABLE_STATUS:
        return "retry"
    return "delivered" if 200 <= status_code < 300 else "failed"


class WebhookDispatcher:
    def __init__(self, outbox: WebhookOutbox, poll_interval_s: float = 0.2) -> None:
        self.outbox = outbox
        self.poll_interval_s = poll_interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="webhooks", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        with httpx.Client(timeout=10) as http:
            while not self._stop.wait(self.poll_interval_s):
                try:
                    for delivery in self.outbox.claim_due():
                        self.outbox.attempt(delivery, http)
                except Exception:  # the dispatcher must outlive any one bad delivery or database hiccup
                    log.exception("webhook dispatch pass failed")
