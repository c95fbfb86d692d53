"""The per-address order limit counts orders that exist, and holds for requests that arrive together.

Judged from the merchant's lnd: the invoices it created are the orders that were let through."""

from __future__ import annotations

import base64
import secrets
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from harness.network import Network

pytestmark = pytest.mark.regtest
PER_ADDRESS = 3


@pytest.fixture(scope="module")
def limited_service(network: Network) -> Iterator[str]:
    """The service with 3 orders per minute per address, and no per-IP limit in the way."""
    assert network.service is not None
    network.service.restart({"VOLTA_RATE_LIMIT_ORDERS_PER_ADDRESS": f"{PER_ADDRESS}/minute"})
    yield network.service.url
    network.service.restart()


def fresh_address() -> str:
    return "0x" + secrets.token_hex(30)


def post_from(host: str, url: str, body: object) -> httpx.Response:
    """An order request from another loopback address (127.0.0.0/8 reaches the service on 127.0.0.1)."""
    with httpx.Client(transport=httpx.HTTPTransport(local_address=host), timeout=60) as client:
        return client.post(f"{url}/api/v1/orders", json=body)


def test_invalid_requests_in_a_buyers_name_do_not_lock_the_buyer_out(limited_service: str) -> None:
    victim = fresh_address()
    hostile = [{"starknet_address": victim, "vusd_amount": "lots"},  # 400: not an amount
               {"starknet_address": victim, "vusd_amount": "5.00", "max_slippage_bps": 9_000},  # 400: above the cap
               {"starknet_address": victim, "vusd_amount": "0.50"}]  # 400: below the minimum order
    answers = [post_from(f"127.0.0.{10 + i}", limited_service, hostile[i % len(hostile)]) for i in range(10)]
    assert {answer.status_code for answer in answers} == {400}, [answer.text for answer in answers]

    mine = post_from("127.0.0.1", limited_service, {"starknet_address": victim, "vusd_amount": "5.00"})
    assert mine.status_code == 201, mine.text


def test_orders_sent_together_get_exactly_the_limit(limited_service: str, network: Network) -> None:
    address, sent = fresh_address(), 2 * PER_ADDRESS
    merchant = network.merchant.client()
    before = merchant.last_invoice_index()
    start = threading.Barrier(sent)

    def order(i: int) -> httpx.Response:
        start.wait()  # all requests leave at the same moment
        return post_from(f"127.0.1.{i + 1}", limited_service, {"starknet_address": address, "vusd_amount": "5.00"})

    with ThreadPoolExecutor(max_workers=sent) as pool:
        answers = list(pool.map(order, range(sent)))

    codes = sorted(answer.status_code for answer in answers)
    assert codes == [201] * PER_ADDRESS + [429] * PER_ADDRESS, [answer.text for answer in answers]
    for refused in (answer for answer in answers if answer.status_code == 429):
        assert refused.json()["error"] == "address_rate_limited"
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
    created = {answer.json()["payment_hash"] for answer in answers if answer.status_code == 201}
    invoiced = {invoice_hash(invoice) for invoice in merchant.invoices_since(before)}
    assert invoiced == created  # lnd holds an invoice for each order let through, and no other


def invoice_hash(invoice: dict[str, object]) -> str:
    return base64.b64decode(str(invoice["r_hash"])).hex()
