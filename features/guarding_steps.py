"""Step definitions for guarding.feature: webhooks in and out, rate limits, idempotency."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx
import pytest
from pytest_bdd import given, parsers, then, when

from features.conftest import Story
from harness.network import Network
from harness.purchase import Buyer
from harness.util import Timeouts, wait_until
from tests.service.readme_signing import readme_signature, signed_by_readme
from tests.service.webhook_receiver import WebhookReceiver, webhook_receiver

RECEIVER_SECRET = "whsec_feature_tests"
ADMIN_TOKEN = "admin_feature_tests"  # the delivery log is closed without one


@dataclass
class Exchange:
    responses: list[httpx.Response] = field(default_factory=list)
    notice_body: bytes = b""
    notice_headers: dict[str, str] = field(default_factory=dict)


@pytest.fixture
def exchange() -> Exchange:
    return Exchange()


def fail_twice_then_succeed(path: str, seen_before: int) -> int:
    """A merchant's webhook endpoint that answers 500 to its first two requests, 200 after."""
    return 500 if seen_before < 2 else 200


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with webhook_receiver(fail_twice_then_succeed) as server:
        yield server


# -- inbound payment notices ---------------------------------------------------------------------------


def post_notice(network: Network, story: Story, exchange: Exchange, secret: str, signed_at: int | None) -> None:
    body = json.dumps({"payment_hash": story.purchase.order["payment_hash"]}).encode()
    headers = {"Content-Type": "application/json", "Volta-Signature": readme_signature(secret, body, signed_at),
               "Volta-Delivery": f"dlv_{story.purchase.order_id}_{len(exchange.responses)}"}
    exchange.notice_body, exchange.notice_headers = body, headers
    exchange.responses.append(httpx.post(f"{network.service.url}/api/v1/webhooks/lightning", content=body,
                                         headers=headers))


@when("a payment notice for the order arrives signed with the wrong secret")
def forged_notice(network: Network, story: Story, exchange: Exchange) -> None:
    post_notice(network, story, exchange, "not-the-secret", None)


@when(parsers.parse("a payment notice for the order arrives signed {minutes:d} minutes ago"))
def stale_notice(network: Network, story: Story, exchange: Exchange, minutes: int) -> None:
    post_notice(network, story, exchange, network.service.inbound_webhook_secret, int(time.time()) - minutes * 60)


@when("a correctly signed payment notice for the order arrives")
def valid_notice(network: Network, story: Story, exchange: Exchange) -> None:
    post_notice(network, story, exchange, network.service.inbound_webhook_secret, None)


@when("the same notice is delivered again")
def replayed_notice(network: Network, exchange: Exchange) -> None:
    exchange.responses.append(httpx.post(f"{network.service.url}/api/v1/webhooks/lightning",
                                         content=exchange.notice_body, headers=exchange.notice_headers))


@then(parsers.parse("it is refused with {status:d} {code}"))
def refused(exchange: Exchange, status: int, code: str) -> None:
    response = exchange.responses[-1]
    assert (response.status_code, response.json()["error"]) == (status, code), response.text


@then("it is accepted for a re-check")
def accepted(exchange: Exchange) -> None:
    assert exchange.responses[-1].status_code == 202, exchange.responses[-1].text


@then("it is ignored as a duplicate")
def duplicate(exchange: Exchange) -> None:
    response = exchange.responses[-1]
    assert (response.status_code, response.json()["status"]) == (200, "duplicate")


@then(parsers.parse("the order is still {status}"))
def order_still(story: Story, buyer: Buyer, status: str) -> None:
    time.sleep(1)  # give a wrongly accepted notice the chance to change something
    assert buyer.get(story.purchase.order_id)["status"] == status


# -- rate limits -------------------------------------------------------------------------------------------


@given(parsers.parse("order creation is limited to {count:d} per minute per client"))
def limited(network: Network, service_env: dict[str, str], count: int) -> None:
    service_env["VOLTA_RATE_LIMIT_ORDERS_PER_IP"] = f"{count}/minute"
    network.service.restart(dict(service_env))


def order_body(story: Story) -> dict[str, str]:
    return {"starknet_address": story.address, "vusd_amount": "5.00"}


@when(parsers.parse("one client sends {count:d} orders at once"))
def burst(network: Network, story: Story, exchange: Exchange, count: int) -> None:
    """Truly at once: every request waits at a barrier, then all leave together on their own connections."""
    start = threading.Barrier(count)

    def order(_: int) -> httpx.Response:
        with httpx.Client(base_url=network.service.url, timeout=30) as client:
            start.wait()
            return client.post("/api/v1/orders", json=order_body(story))

    with ThreadPoolExecutor(max_workers=count) as pool:
        exchange.responses = list(pool.map(order, range(count)))


@then(parsers.parse("exactly {created:d} are created and {limited:d} get 429 with a Retry-After header"))
def limited_responses(exchange: Exchange, created: int, limited: int) -> None:
    codes = sorted(response.status_code for response in exchange.responses)
    assert codes == [201] * created + [429] * limited, [r.text for r in exchange.responses]
    refused = [r for r in exchange.responses if r.status_code == 429]
    assert all(r.headers.get("Retry-After") and r.json()["error"] for r in refused)


@then("another client can still create an order")
def other_client(network: Network, story: Story) -> None:
    # Another host on loopback: 127.0.0.2 reaches the service on 127.0.0.1 with its own address.
    transport = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(base_url=network.service.url, transport=transport, timeout=30) as client:
        response = client.post("/api/v1/orders", json=order_body(story) | {"vusd_amount": "6.00"})
    assert response.status_code == 201, response.text


# -- idempotency ---------------------------------------------------------------------------------------------


def post_with_key(network: Network, body: dict[str, str], key: str) -> httpx.Response:
    return httpx.post(f"{network.service.url}/api/v1/orders", json=body, headers={"Idempotency-Key": key})


@when(parsers.parse('the buyer orders 25.00 VUSD with idempotency key "{key}"'))
def keyed_order(network: Network, story: Story, exchange: Exchange, key: str) -> None:
    exchange.notice_headers = {"key": f"{key}-{story.address}"}
    exchange.responses.append(post_with_key(network, {"starknet_address": story.address, "vusd_amount": "25.00"},
                                            exchange.notice_headers["key"]))


@when("the buyer sends the very same request again")
def same_again(network: Network, story: Story, exchange: Exchange) -> None:
    exchange.responses.append(post_with_key(network, {"starknet_address": story.address, "vusd_amount": "25.00"},
                                            exchange.notice_headers["key"]))


@when("the buyer sends another amount with the same idempotency key")
def other_amount(network: Network, story: Story, exchange: Exchange) -> None:
    exchange.responses.append(post_with_key(network, {"starknet_address": story.address, "vusd_amount": "26.00"},
                                            exchange.notice_headers["key"]))


@then("both responses carry the same order and the same invoice")
def same_order(exchange: Exchange) -> None:
    first, second = (response.json() for response in exchange.responses[:2])
    assert [r.status_code for r in exchange.responses[:2]] == [201, 201]
    assert (first["order_id"], first["bolt11"]) == (second["order_id"], second["bolt11"])
    assert exchange.responses[1].headers.get("Idempotent-Replayed") == "true"


@then(parsers.parse("that request is refused with {status:d} {code}"))
def refused_request(exchange: Exchange, status: int, code: str) -> None:
    refused(exchange, status, code)


# -- webhooks out ---------------------------------------------------------------------------------------------


@given("a webhook receiver that fails twice and then succeeds")
def failing_receiver(network: Network, service_env: dict[str, str], receiver: WebhookReceiver) -> None:
    service_env.update({"VOLTA_WEBHOOK_URLS": receiver.url("/hooks/volta"), "VOLTA_WEBHOOK_SECRET": RECEIVER_SECRET,
                        "VOLTA_WEBHOOK_BACKOFF_S": "0.3", "VOLTA_ADMIN_TOKEN": ADMIN_TOKEN})
    network.service.restart(dict(service_env))


@then(parsers.parse("the receiver eventually accepts the {status} event"))
def receiver_accepts(story: Story, receiver: WebhookReceiver, status: str) -> None:
    def accepted_event() -> bool:
        return any(post.status == 200 and json.loads(post.body)["type"] == f"order.{status}" and
                   json.loads(post.body)["data"]["order_id"] == story.purchase.order_id
                   for post in receiver.seen)

    wait_until(accepted_event, timeout=Timeouts.PAYMENT, what=f"the receiver to accept order.{status}")


@then("the delivery log shows three tries for it: 500, 500, 200")
def delivery_log(network: Network, story: Story) -> None:
    log = httpx.get(f"{network.service.url}/api/v1/webhooks/deliveries", params={"order_id": story.purchase.order_id},
                    headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).json()["deliveries"]
    first = next(d for d in log if d["event"] == "order.awaiting_payment")
    assert [t["status_code"] for t in first["tries"]] == [500, 500, 200]
    assert first["state"] == "delivered"


@then("every delivery the receiver saw carried a valid signature")
def signatures_valid(receiver: WebhookReceiver) -> None:
    for post in receiver.seen:
        signature = post.headers["Volta-Signature"]
        assert signed_by_readme(RECEIVER_SECRET, signature, post.body), signature
        assert post.headers["Volta-Delivery"].startswith("whd_")
