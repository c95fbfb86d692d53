"""Webhooks out and the operator's delivery log, against the running service and receivers on loopback.

Standard Webhooks signatures are checked with the `standardwebhooks` library (PyPI), Volta-Signature as the README
words it (tests/service/readme_signing.py), never with the service's helper. A receiver's 4xx stops the
retries, a 5xx is retried up to VOLTA_WEBHOOK_MAX_ATTEMPTS and no more, the log and redelivery need the
operator's token (and are closed while none is set), and the log survives a restart of the service.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from harness.network import Network
from harness.service_process import VoltaService
from harness.util import wait_until
from tests.service.readme_signing import signed_by_readme
from tests.service.webhook_receiver import WebhookReceiver, webhook_receiver

pytestmark = pytest.mark.regtest

RECEIVER_SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()  # the spec's form
ADMIN_TOKEN = f"admin_{secrets.token_hex(16)}"
MAX_ATTEMPTS = 3
BACKOFF_S = 0.2
ANSWERS = {"/ok": 200, "/gone": 410, "/down": 503}  # what each receiver path answers, always
DELIVERIES = "/api/v1/webhooks/deliveries"


@pytest.fixture(scope="module")
def receivers() -> Iterator[WebhookReceiver]:
    with webhook_receiver(lambda path, seen_before: ANSWERS.get(path, 404)) as server:
        yield server


def webhook_env(receivers: WebhookReceiver, admin_token: str | None) -> dict[str, str]:
    env = {"VOLTA_WEBHOOK_URLS": ",".join(receivers.url(path) for path in ANSWERS),
           "VOLTA_WEBHOOK_SECRET": RECEIVER_SECRET, "VOLTA_WEBHOOK_BACKOFF_S": str(BACKOFF_S),
           "VOLTA_WEBHOOK_MAX_ATTEMPTS": str(MAX_ATTEMPTS)}
    return env | ({"VOLTA_ADMIN_TOKEN": admin_token} if admin_token else {})


@pytest.fixture(scope="module")
def service(network: Network, receivers: WebhookReceiver) -> Iterator[VoltaService]:
    """The network's service delivering to the three receivers, with an operator token; plain again afterwards."""
    assert network.service is not None
    network.service.restart(webhook_env(receivers, ADMIN_TOKEN))
    yield network.service
    network.service.restart()


def create_order(service: VoltaService, network: Network) -> str:
    response = httpx.post(f"{service.url}/api/v1/orders", timeout=30,
                          json={"starknet_address": network.users[1]["address"], "vusd_amount": "3.00"})
    assert response.status_code == 201, response.text
    return str(response.json()["order_id"])


def as_operator(token: str = ADMIN_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def delivery_log(service: VoltaService, order_id: str) -> dict[str, dict[str, Any]]:
    """The order's awaiting_payment deliveries by receiver path, as the operator reads them."""
    response = httpx.get(f"{service.url}{DELIVERIES}", params={"order_id": order_id}, headers=as_operator(),
                         timeout=30)
    assert response.status_code == 200, response.text
    deliveries = response.json()["deliveries"]
    return {httpx.URL(d["url"]).path: d for d in deliveries if d["event"] == "order.awaiting_payment"}


def settled_log(service: VoltaService, order_id: str) -> dict[str, dict[str, Any]]:
    """The log once no delivery of the order's first event is pending any more."""
    def settled() -> dict[str, dict[str, Any]] | None:
        log = delivery_log(service, order_id)
        return log if set(log) == set(ANSWERS) and all(d["state"] != "pending" for d in log.values()) else None

    return wait_until(settled, timeout=60, what=f"every delivery of {order_id}'s first event to be decided")


def delivered_to(receivers: WebhookReceiver, service: VoltaService,
                 order_id: str) -> list[tuple[dict[str, str], bytes]]:
    """Every webhook about the order the receivers got (headers, body), once each delivery of its first event is
    decided; there is at least one."""
    settled_log(service, order_id)
    ours = [(post.headers, post.body) for post in receivers.seen if order_id.encode() in post.body]
    assert ours
    return ours


@pytest.fixture(scope="module")
def order_id(service: VoltaService, network: Network) -> str:
    return create_order(service, network)


@pytest.fixture
def service_without_token(network: Network, receivers: WebhookReceiver) -> Iterator[VoltaService]:
    """Delivering webhooks, as the defaults leave it: no VOLTA_ADMIN_TOKEN."""
    assert network.service is not None
    network.service.restart(webhook_env(receivers, admin_token=None))
    yield network.service
    network.service.restart()


def test_without_an_operator_token_the_log_and_redelivery_are_closed(
    service_without_token: VoltaService, network: Network, receivers: WebhookReceiver,
) -> None:
    order = create_order(service_without_token, network)
    wait_until(lambda: any(order.encode() in post.body for post in receivers.seen), timeout=60,
               what="a first delivery of the order")
    with httpx.Client(base_url=service_without_token.url, timeout=30) as http:
        for response in (http.get(DELIVERIES), http.get(DELIVERIES, params={"order_id": order}),
                         http.get(DELIVERIES, headers=as_operator("anything")),
                         http.post(f"{DELIVERIES}/whd_anything/redeliver")):
            assert response.status_code == 403, response.text
            body = response.json()
            assert body["error"] == "admin_token_not_set" and "VOLTA_ADMIN_TOKEN" in body["hint"], body
            assert receivers.url("/") not in response.text and order not in response.text


def test_every_delivery_carries_a_signature_as_the_readme_words_it(
    service: VoltaService, order_id: str, receivers: WebhookReceiver,
) -> None:
    for headers, body in delivered_to(receivers, service, order_id):
        assert signed_by_readme(RECEIVER_SECRET, headers["Volta-Signature"], body), headers["Volta-Signature"]
        assert not signed_by_readme("whsec_other", headers["Volta-Signature"], body)
        assert headers["Volta-Delivery"].startswith("whd_")


def test_every_delivery_verifies_as_standard_webhooks(
    service: VoltaService, order_id: str, receivers: WebhookReceiver,
) -> None:
    other = Webhook("whsec_" + base64.b64encode(secrets.token_bytes(32)).decode())
    for headers, body in delivered_to(receivers, service, order_id):
        payload = Webhook(RECEIVER_SECRET).verify(body, headers)
        assert payload == json.loads(body)
        assert payload["type"] == f"order.{payload['data']['status']}" and payload["timestamp"]
        assert headers["webhook-id"] == headers["Volta-Delivery"]
        with pytest.raises(WebhookVerificationError):
            other.verify(body, headers)
    # the id is the event's for that receiver: the same on every retry, so receivers can de-duplicate
    down = settled_log(service, order_id)["/down"]
    retried = [post.headers for post in receivers.seen
               if post.path == "/down" and post.headers.get("webhook-id") == down["delivery_id"]]
    assert len(retried) == MAX_ATTEMPTS


def test_a_4xx_answer_stops_the_retries(service: VoltaService, order_id: str, receivers: WebhookReceiver) -> None:
    gone = settled_log(service, order_id)["/gone"]
    time.sleep(BACKOFF_S * 2 ** MAX_ATTEMPTS)  # longer than every retry would have waited
    gone = delivery_log(service, order_id)["/gone"]
    assert (gone["state"], [t["status_code"] for t in gone["tries"]]) == ("failed", [410])
    assert receivers.posts("/gone", gone["delivery_id"]) == 1


def test_a_5xx_answer_is_retried_up_to_the_attempt_limit_and_no_more(
    service: VoltaService, order_id: str, receivers: WebhookReceiver,
) -> None:
    settled_log(service, order_id)
    time.sleep(BACKOFF_S * 2 ** MAX_ATTEMPTS)
    down = delivery_log(service, order_id)["/down"]
    assert (down["state"], [t["status_code"] for t in down["tries"]]) == ("failed", [503] * MAX_ATTEMPTS)
    assert down["attempts"] == MAX_ATTEMPTS
    assert receivers.posts("/down", down["delivery_id"]) == MAX_ATTEMPTS
    ok = delivery_log(service, order_id)["/ok"]
    assert (ok["state"], [t["status_code"] for t in ok["tries"]]) == ("delivered", [200])


@pytest.mark.parametrize("authorization", [None, b"Bearer wrong", b"Bearer " + "é".encode(),
                                           b"Bearer " + "é".encode("latin-1"), b"Basic " + ADMIN_TOKEN.encode(),
                                           b"Bearer " + ADMIN_TOKEN.encode() + b"x"],
                         ids=["none", "wrong", "utf8", "latin1", "basic", "longer"])
def test_the_log_and_redelivery_refuse_anyone_without_the_token(
    service: VoltaService, order_id: str, authorization: bytes | None,
) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    gone = settled_log(service, order_id)["/gone"]
    with httpx.Client(base_url=service.url, timeout=30) as http:
        for response in (http.get(DELIVERIES, headers=headers),
                         http.post(f"{DELIVERIES}/{gone['delivery_id']}/redeliver", headers=headers)):
            assert response.status_code == 401, response.text
            assert response.json()["error"] == "unauthorized"
            assert "whd_" not in response.text


def test_redelivery_with_the_token_sends_the_delivery_again(
    service: VoltaService, order_id: str, receivers: WebhookReceiver,
) -> None:
    gone = settled_log(service, order_id)["/gone"]
    before = receivers.posts("/gone", gone["delivery_id"])
    response = httpx.post(f"{service.url}{DELIVERIES}/{gone['delivery_id']}/redeliver", headers=as_operator(),
                          timeout=30)
    assert response.status_code == 202, response.text
    wait_until(lambda: receivers.posts("/gone", gone["delivery_id"]) == before + 1, timeout=30,
               what="the redelivered webhook to reach the receiver")
    missing = httpx.post(f"{service.url}{DELIVERIES}/whd_none/redeliver", headers=as_operator(), timeout=30)
    assert (missing.status_code, missing.json()["error"]) == (404, "not_found")


def test_the_delivery_log_survives_a_restart(
    service: VoltaService, order_id: str, receivers: WebhookReceiver,
) -> None:
    before = settled_log(service, order_id)
    service.restart(webhook_env(receivers, ADMIN_TOKEN))
    after = delivery_log(service, order_id)
    assert {path: (d["delivery_id"], d["state"], d["tries"]) for path, d in after.items()} == \
           {path: (d["delivery_id"], d["state"], d["tries"]) for path, d in before.items()}
