"""Standard Webhooks headers on outgoing deliveries, verified with the `standardwebhooks` library from PyPI
(the reference implementation), never with the service's own signing helper.

The outbox delivers to an httpx mock transport here, on a migrated SQLite file; the same headers are checked
against the running service in tests/service/test_webhooks_outbound.py.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from service.storage.database import make_engine, make_session_factory, migrate
from service.storage.models import WebhookDeliveryRow
from service.webhooks.outbox import WebhookOutbox
from tests.service.readme_signing import signed_by_readme

RECEIVER = "http://receiver.invalid/hook"


def standard_secret() -> str:
    """A secret as the spec serializes one: whsec_ + base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    url = f"sqlite:///{tmp_path / 'volta.sqlite'}"
    migrate(url)
    engine = make_engine(url)
    yield make_session_factory(engine)
    engine.dispose()


def deliver_once(sessions: sessionmaker[Session], secret: str, body: bytes,
                 delivery_id: str = "whd_0123456789abcdef") -> httpx.Request:
    """One delivery through the outbox; returns the request the receiver got."""
    now = datetime.now(UTC)
    with sessions() as session, session.begin():
        session.add(WebhookDeliveryRow(id=delivery_id, url=RECEIVER, order_id="ord_x", event="order.completed",
                                       body=body.decode(), state="pending", attempts=0, next_attempt_at=now,
                                       created_at=now))
    outbox = WebhookOutbox(sessions, [RECEIVER], secret, clock=lambda: datetime.now(UTC))
    seen: list[httpx.Request] = []

    def receiver(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    [delivery] = outbox.claim_due()
    with httpx.Client(transport=httpx.MockTransport(receiver)) as http:
        outbox.attempt(delivery, http)
    assert len(seen) == 1
    return seen[0]


BODY = json.dumps({"type": "order.completed", "timestamp": "2026-11-28T12:00:00Z",
                   "data": {"order_id": "ord_x", "status": "completed"}}).encode()


def test_a_delivery_verifies_with_the_standardwebhooks_library(sessions: sessionmaker[Session]) -> None:
    secret = standard_secret()
    request = deliver_once(sessions, secret, BODY)
    headers = dict(request.headers)
    assert headers["webhook-id"] == "whd_0123456789abcdef"
    assert headers["webhook-timestamp"].isdigit()
    assert headers["webhook-signature"].startswith("v1,")
    assert Webhook(secret).verify(request.content, headers) == json.loads(BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(standard_secret()).verify(request.content, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(request.content.replace(b"completed", b"refunded"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(request.content, headers | {"webhook-id": "whd_other"})


def test_the_volta_signature_stays_for_existing_receivers(sessions: sessionmaker[Session]) -> None:
    secret = standard_secret()
    request = deliver_once(sessions, secret, BODY)
    assert signed_by_readme(secret, request.headers["Volta-Signature"], request.content)
    assert request.headers["Volta-Delivery"] == request.headers["webhook-id"]
    # both signatures are of the same attempt
    assert request.headers["Volta-Signature"].startswith(f"t={request.headers['webhook-timestamp']},")


def test_a_secret_of_another_form_is_used_as_its_own_bytes(sessions: sessionmaker[Session]) -> None:
    """A secret set before (any string): receivers give the library whsec_ + base64 of its UTF-8 bytes."""
    legacy = "whsec_outbound_tests"
    request = deliver_once(sessions, legacy, BODY)
    as_spec = "whsec_" + base64.b64encode(legacy.encode()).decode()
    assert Webhook(as_spec).verify(request.content, dict(request.headers)) == json.loads(BODY)
    assert signed_by_readme(legacy, request.headers["Volta-Signature"], request.content)


def test_an_old_timestamp_is_refused_by_the_library(sessions: sessionmaker[Session]) -> None:
    secret = standard_secret()
    request = deliver_once(sessions, secret, BODY)
    stale = dict(request.headers) | {"webhook-timestamp": str(int(request.headers["webhook-timestamp"]) - 600)}
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(request.content, stale)
