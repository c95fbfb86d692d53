"""Per-order metadata and reference against the running service: stored as given, returned by create and read,
shown on the checkout page, and carried by webhooks (verified with the standardwebhooks library). A redirect_url to
a host the operator has not allowed, and metadata over the bound, get a 400 JSON error saying what to do."""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from harness.network import Network
from harness.service_process import VoltaService
from harness.util import wait_until
from tests.service.webhook_receiver import Post, WebhookReceiver, webhook_receiver

pytestmark = pytest.mark.regtest

SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
METADATA = {"cart": [{"sku": "VUSD-25", "qty": 1}], "customer": {"id": 7, "name": "Zoë"}, "campaign": None}
REFERENCE = "INV-2026-11-0042"


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    with webhook_receiver() as server:
        yield server


@pytest.fixture(scope="module")
def service(network: Network, receiver: WebhookReceiver) -> Iterator[VoltaService]:
    assert network.service is not None
    network.service.restart({"VOLTA_WEBHOOK_URLS": receiver.url("/hook"), "VOLTA_WEBHOOK_SECRET": SECRET,
                             "VOLTA_REDIRECT_HOSTS": "shop.example"})
    yield network.service
    network.service.restart()


@pytest.fixture(scope="module")
def created(service: VoltaService, network: Network) -> dict[str, Any]:
    response = httpx.post(f"{service.url}/api/v1/orders", timeout=30, json={
        "starknet_address": network.users[2]["address"], "vusd_amount": "4.00",
        "metadata": METADATA, "reference": REFERENCE})
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_create_and_read_return_them_as_given(service: VoltaService, created: dict[str, Any]) -> None:
    assert (created["metadata"], created["reference"], created["redirect_url"]) == (METADATA, REFERENCE, None)
    read = httpx.get(created["status_url"], timeout=30).json()
    assert (read["metadata"], read["reference"], read["redirect_url"]) == (METADATA, REFERENCE, None)


def test_a_redirect_to_a_host_the_operator_allows_is_kept(service: VoltaService, network: Network) -> None:
    response = httpx.post(f"{service.url}/api/v1/orders", timeout=30, json={
        "starknet_address": network.users[2]["address"], "vusd_amount": "4.00",
        "redirect_url": "https://shop.example/thanks?order=7"})
    assert response.status_code == 201, response.text
    assert httpx.get(response.json()["status_url"], timeout=30).json()["redirect_url"] == (
        "https://shop.example/thanks?order=7")


def test_the_checkout_page_shows_the_reference(created: dict[str, Any]) -> None:
    page = httpx.get(created["checkout_url"], timeout=30)
    assert page.status_code == 200 and REFERENCE in page.text


def test_webhooks_carry_them(created: dict[str, Any], receiver: WebhookReceiver) -> None:
    def delivered() -> Post | None:
        return next((post for post in receiver.seen if created["order_id"].encode() in post.body), None)

    post = wait_until(delivered, timeout=60, what="the order's first webhook")
    headers, body = post.headers, post.body
    event = Webhook(SECRET).verify(body, headers)
    assert event["data"]["metadata"] == METADATA and event["data"]["reference"] == REFERENCE
    assert json.loads(body)["data"]["redirect_url"] is None


@pytest.mark.parametrize(("extra", "code", "words"), [
    ({"redirect_url": "https://evil.example/thanks"}, "redirect_not_allowed", "shop.example"),
    ({"metadata": {"blob": "x" * 5000}}, None, "metadata"),
    ({"reference": "a\u0000b"}, None, "reference"),
])
def test_refusals_are_json_errors_that_say_what_to_do(
    service: VoltaService, network: Network, extra: dict[str, Any], code: str | None, words: str,
) -> None:
    response = httpx.post(f"{service.url}/api/v1/orders", timeout=30, json={
        "starknet_address": network.users[2]["address"], "vusd_amount": "4.00", **extra})
    assert response.status_code == 400, response.text
    body = response.json()
    assert set(body) == {"error", "message", "hint"} and all(body.values()), body
    if code:
        assert body["error"] == code
    assert words in body["message"] + body["hint"], body
