"""Lightning Address and LNURL-pay end to end: the payer resolves `<starknet-address>@volta.test` with the `lnurl`
library as a wallet does (LUD-16 → LUD-06), asks for an invoice for an amount of its choosing, checks the invoice's
description hash against the metadata (decoded by the payer's own lnd), pays from the payer node, and the VUSD
arrives. Judged from the vault (is_payment_used, the balance) and the merchant's lnd, never the service's word.

A wallet reaches `https://volta.test/...`; on regtest there is no DNS name or TLS proxy, so the test's HTTP transport
stands in for both, sending requests for volta.test to the service on 127.0.0.1 with the Host header kept. The service
is told its public URL (VOLTA_LNURL_PUBLIC_URL), as behind a real proxy."""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import httpx
import lnurl
import pytest

from harness.lnd_client import HarnessLndClient
from harness.network import Network
from harness.util import Timeouts
from service.config import Settings
from service.domain.pricing import quote_for_sat, vusd_base_units
from service.starknet.client import StarknetClient

pytestmark = pytest.mark.regtest

PUBLIC_HOST = "volta.test"
LOOKUPS_PER_MINUTE = 20
ALIAS_ADDRESS = hex(secrets.randbits(248) | 1)


def fresh_address() -> str:
    return hex(secrets.randbits(248) | 1)


# The service with a public URL, one alias, and a per-IP limit on lookups low enough to reach.
SERVICE_ENV = {
    "VOLTA_LNURL_PUBLIC_URL": f"https://{PUBLIC_HOST}",
    "VOLTA_LNURL_ALIASES": json.dumps({"alice": ALIAS_ADDRESS}),
    "VOLTA_RATE_LIMIT_READS_PER_IP": f"{LOOKUPS_PER_MINUTE}/minute",
}


@pytest.fixture(scope="module")
def service_url(network: Network) -> Iterator[str]:
    assert network.service is not None
    network.service.restart(SERVICE_ENV)
    yield network.service.url
    network.service.restart()


class PublicHostOnLoopback(httpx.AsyncHTTPTransport):
    """Stands in for DNS and the TLS proxy: https://volta.test/… goes to the service on loopback, from
    `local_address` (each test its own, so per-IP limits of one test do not reach another)."""

    def __init__(self, service_url: str, local_address: str) -> None:
        super().__init__(local_address=local_address)
        self.service = httpx.URL(service_url)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == PUBLIC_HOST:
            request.url = request.url.copy_with(scheme="http", host=self.service.host, port=self.service.port)
        return await super().handle_async_request(request)


@pytest.fixture
def wallet(service_url: str, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """Route the lnurl library's HTTP through `PublicHostOnLoopback`; call it with the source address to use."""
    real_client = httpx.AsyncClient

    def route_from(local_address: str) -> None:
        def client(*args: Any, **kwargs: Any) -> httpx.AsyncClient:
            return real_client(*args, **kwargs, transport=PublicHostOnLoopback(service_url, local_address))

        monkeypatch.setattr(lnurl.core.httpx, "AsyncClient", client)

    return route_from


def lookup(service_url: str, username: str, local_address: str) -> httpx.Response:
    with httpx.Client(transport=httpx.HTTPTransport(local_address=local_address), timeout=30) as client:
        return client.get(f"{service_url}/.well-known/lnurlp/{username}")


def callback(service_url: str, username: str, amount: str, local_address: str) -> httpx.Response:
    with httpx.Client(transport=httpx.HTTPTransport(local_address=local_address), timeout=30) as client:
        return client.get(f"{service_url}/api/v1/lnurlp/{username}/callback", params={"amount": amount})


def pay_lightning_address(address: str, pick_msat: Callable[[lnurl.LnurlPayResponse], int]
                          ) -> tuple[lnurl.LnurlPayResponse, int, lnurl.LnurlPayActionResponse]:
    """What a wallet does: resolve the address, choose an amount in the range, get the invoice (the library checks
    the invoice's amount)."""
    offer = asyncio.run(lnurl.handle(address))
    assert isinstance(offer, lnurl.LnurlPayResponse), offer
    amount_msat = pick_msat(offer)
    action = asyncio.run(lnurl.execute_pay_request(offer, amount_msat))
    return offer, amount_msat, action


def five_times_the_minimum(offer: lnurl.LnurlPayResponse) -> int:
    return int(offer.minSendable) * 5 // 1000 * 1000


def assert_vusd_arrives(starknet: StarknetClient, merchant: HarnessLndClient, payer: HarnessLndClient,
                        recipient: str, offer: lnurl.LnurlPayResponse, amount_msat: int,
                        action: lnurl.LnurlPayActionResponse) -> None:
    # LUD-06 step 6, checked on what the payer's own lnd decodes: `h` is sha256 of the metadata string.
    invoice = payer.decode(action.pr)
    assert invoice["description_hash"] == hashlib.sha256(str(offer.metadata).encode("utf-8")).hexdigest()
    assert int(invoice["num_msat"]) == amount_msat
    assert not invoice.get("description")  # the hash replaces the memo

    # The VUSD the amount buys, from the oracle on the devnet and the service's published spread.
    expected_vusd = quote_for_sat(amount_msat // 1000, starknet.btc_usd().btc_usd, Settings().spread_bps).vusd_amount
    assert isinstance(action.successAction, lnurl.MessageAction), action.successAction
    assert action.successAction.message.startswith(f"{expected_vusd} VUSD minted to {hex(int(recipient, 16))[:6]}")

    payment_hash = bytes.fromhex(invoice["payment_hash"])
    balance_before = starknet.vusd_balance(int(recipient, 16))
    assert not starknet.is_payment_used(payment_hash)
    payment = payer.pay(action.pr, int(Timeouts.PAYMENT))
    assert payment["status"] == "SUCCEEDED", payment
    assert merchant.lookup_invoice(payment_hash)["state"] == "SETTLED"
    assert starknet.is_payment_used(payment_hash)
    assert starknet.vusd_balance(int(recipient, 16)) - balance_before == vusd_base_units(expected_vusd)


def test_paying_a_starknet_address_as_a_lightning_address_mints_vusd_there(
        wallet: Callable[[str], None], starknet: StarknetClient, merchant: HarnessLndClient,
        payer: HarnessLndClient) -> None:
    wallet("127.0.2.1")
    recipient = fresh_address()
    offer, amount_msat, action = pay_lightning_address(f"{recipient}@{PUBLIC_HOST}", five_times_the_minimum)

    assert str(offer.callback) == f"https://{PUBLIC_HOST}/api/v1/lnurlp/{recipient}/callback"
    entries = dict(json.loads(str(offer.metadata)))
    assert entries["text/identifier"] == f"{recipient}@{PUBLIC_HOST}"
    assert f"0x{int(recipient, 16):064x}" in entries["text/plain"]
    assert_vusd_arrives(starknet, merchant, payer, recipient, offer, amount_msat, action)


def test_an_alias_pays_the_address_the_operator_gave_it(
        wallet: Callable[[str], None], starknet: StarknetClient, merchant: HarnessLndClient,
        payer: HarnessLndClient) -> None:
    wallet("127.0.2.2")
    # An amount no order form offers: any whole number of sats in the range is an order.
    offer, amount_msat, action = pay_lightning_address(
        f"alice@{PUBLIC_HOST}", lambda offer: int(offer.minSendable) + 7_777_000)
    assert dict(json.loads(str(offer.metadata)))["text/identifier"] == f"alice@{PUBLIC_HOST}"
    assert_vusd_arrives(starknet, merchant, payer, ALIAS_ADDRESS, offer, amount_msat, action)


def test_a_static_lnurl_of_the_same_url_resolves_to_the_same_offer(wallet: Callable[[str], None],
                                                                  payer: HarnessLndClient) -> None:
    """LUD-01: the lookup URL, bech32-encoded, is an LNURL for a printed QR code; it leads to the same invoice."""
    wallet("127.0.2.9")
    recipient = fresh_address()
    bech32 = str(lnurl.encode(f"https://{PUBLIC_HOST}/.well-known/lnurlp/{recipient}").bech32)
    assert bech32.startswith("LNURL1")
    offer = asyncio.run(lnurl.handle(bech32))
    assert isinstance(offer, lnurl.LnurlPayResponse), offer
    action = asyncio.run(lnurl.execute_pay_request(offer, int(offer.minSendable)))
    invoice = payer.decode(action.pr)  # not paid: the order expires with its quote
    assert invoice["description_hash"] == hashlib.sha256(str(offer.metadata).encode("utf-8")).hexdigest()


def test_an_unknown_alias_gets_lnurls_error_form_through_the_library(wallet: Callable[[str], None]) -> None:
    wallet("127.0.2.3")
    answer = asyncio.run(lnurl.handle(f"nobody@{PUBLIC_HOST}"))
    assert isinstance(answer, lnurl.LnurlErrorResponse)
    assert "No Lightning Address nobody here" in answer.reason


@pytest.mark.parametrize(("username", "reason"), [
    ("nobody", "No Lightning Address nobody here"),
    ("0xnothex", "after 0x only hex digits"),
    ("0x0", "must not be zero"),
    ("0x" + "f" * 64, "below 2**251"),
    ("Not%20a%20name", "Not a Lightning Address username"),
])
def test_bad_usernames_get_lnurls_error_form(service_url: str, username: str, reason: str) -> None:
    for answer in (lookup(service_url, username, "127.0.2.4"),
                   callback(service_url, username, "5000000", "127.0.2.4")):
        assert answer.status_code == 200  # LUD-01: status codes carry no meaning; the body says ERROR
        assert answer.json()["status"] == "ERROR"
        assert reason in answer.json()["reason"]


def test_amounts_outside_the_range_get_lnurls_error_form_and_make_no_invoice(
        service_url: str, merchant: HarnessLndClient) -> None:
    recipient = fresh_address()
    offer = lookup(service_url, recipient, "127.0.2.5").json()
    low, high = offer["minSendable"], offer["maxSendable"]
    invoices_before = merchant.last_invoice_index()
    cases = {
        str(low // 2 // 1000 * 1000): "An order must be between",  # below the minimum order
        str(high * 2 // 1000 * 1000): "An order must be between",  # above the maximum order
        str(low + 1): "whole number of sats",  # LUD-06 wants the invoice for exactly this amount
        "-1000": "millisatoshis",
        "": "millisatoshis",
        "1e9": "millisatoshis",
        "9" * 5000: "millisatoshis",  # more digits than Python converts to an int: a refusal, not a 500
    }
    for amount, reason in cases.items():
        answer = callback(service_url, recipient, amount, "127.0.2.5")
        assert answer.status_code == 200, answer.text
        assert answer.json()["status"] == "ERROR", (amount, answer.json())
        assert reason in answer.json()["reason"], (amount, answer.json())
    assert "At today's rate send from" in callback(service_url, recipient, str(low // 2 // 1000 * 1000),
                                                   "127.0.2.5").json()["reason"]
    assert merchant.last_invoice_index() == invoices_before  # the merchant's lnd made no invoice for any of them


def test_lookups_are_rate_limited_per_client_in_lnurls_error_form(service_url: str) -> None:
    answers = [lookup(service_url, fresh_address(), "127.0.2.6") for _ in range(LOOKUPS_PER_MINUTE + 1)]
    assert [answer.status_code for answer in answers[:-1]] == [200] * LOOKUPS_PER_MINUTE
    limited = answers[-1]
    assert limited.status_code == 429
    assert limited.json()["status"] == "ERROR"
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert lookup(service_url, fresh_address(), "127.0.2.7").status_code == 200  # another client is not affected


def test_the_offered_range_is_the_order_limits_at_the_oracles_price(service_url: str,
                                                                    starknet: StarknetClient) -> None:
    offer = lookup(service_url, fresh_address(), "127.0.2.8").json()
    settings, btc_usd = Settings(), starknet.btc_usd().btc_usd
    low_vusd = quote_for_sat(offer["minSendable"] // 1000, btc_usd, settings.spread_bps).vusd_amount
    high_vusd = quote_for_sat(offer["maxSendable"] // 1000, btc_usd, settings.spread_bps).vusd_amount
    assert settings.min_order_vusd <= low_vusd <= settings.min_order_vusd * Decimal("1.02")
    assert settings.max_order_vusd * Decimal("0.98") <= high_vusd <= settings.max_order_vusd


def test_a_stale_price_is_a_refusal_in_lnurls_form(network: Network, service_url: str,
                                                   merchant: HarnessLndClient) -> None:
    """The regtest oracle's price was set when the network started: older than one second."""
    assert network.service is not None
    network.service.restart(SERVICE_ENV | {"VOLTA_MAX_PRICE_AGE_S": "1"})
    try:
        invoices_before = merchant.last_invoice_index()
        for answer in (lookup(service_url, fresh_address(), "127.0.2.10"),
                       callback(service_url, fresh_address(), "5000000", "127.0.2.10")):
            assert answer.status_code == 200, answer.text
            assert answer.json()["status"] == "ERROR"
            assert "cannot quote right now" in answer.json()["reason"]
        assert merchant.last_invoice_index() == invoices_before
    finally:
        network.service.restart(SERVICE_ENV)
