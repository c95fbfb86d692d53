"""Bitcoin Connect on the checkout, in a real browser against the real network: the buyer connects a Nostr
Wallet Connect wallet through Bitcoin Connect's own modal (pasting the wallet's connection secret, as a person
does) and pays with one tap. The wallet is harness/nostr.py's NIP-47 service on a local Nostr relay, paying with
the payer's lnd. The money is judged from outside: the merchant's invoice is SETTLED and the vault marks the
payment hash used. The page's policy stays strict: no CSP violation while the modal is open, connects or pays."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from nostr_sdk import Client, EventBuilder, Filter, Kind, RelayUrl, ReqTarget, Tag, Timestamp
from playwright.sync_api import Page, expect

from harness.network import Network
from harness.nostr import REQUEST_KIND, RESPONSE_KIND, NostrRelay, NwcWalletService
from harness.util import Timeouts
from service.config import load_settings
from service.starknet.client import StarknetClient
from service.web.security import bitcoin_connect_style_hashes, content_security_policy
from tests.web.support import PageProblems, assert_good_layout, run_async, snap

pytestmark = pytest.mark.regtest

REPO_ROOT = Path(__file__).resolve().parents[2]
VENDOR = REPO_ROOT / "service" / "web" / "static" / "vendor" / "bitcoin-connect"
SCRIPT = REPO_ROOT / "scripts" / "vendor_bitcoin_connect.sh"

# Every CSP violation the page sees, with the directive and where it came from (the console says less).
CSP_RECORDER = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(`${event.effectiveDirective} blocked ${event.blockedURI || event.sample || "?"}`
    + ` (${event.sourceFile}:${event.lineNumber})`);
});
"""


@pytest.fixture(scope="module")
def relay(network: Network) -> Iterator[NostrRelay]:
    """A Nostr relay on 127.0.0.1, its log in the network's run directory (kept when a test fails)."""
    process = NostrRelay(network.run_dir / "nostr-relay")
    try:  # stopped whatever happens from here on, also when it never came up
        process.start()
        yield process
    finally:
        process.stop()  # SIGTERM, then SIGKILL after Timeouts.PROCESS_STOP


@pytest.fixture(scope="module")
def wallet(relay: NostrRelay, network: Network) -> Iterator[NwcWalletService]:
    """The buyer's phone wallet: NIP-47 on the relay, paying with the payer's lnd."""
    service = NwcWalletService(relay.url, network.payer.client())
    try:
        service.start()
        yield service
    finally:
        service.stop()


def test_the_vendored_bundle_is_the_pinned_version() -> None:
    pinned = re.search(r"^VERSION=([0-9.]+)$", SCRIPT.read_text(), re.MULTILINE)
    assert pinned, f"{SCRIPT} pins no VERSION"
    assert (VENDOR / "VERSION").read_text().strip() == pinned.group(1)
    bundle = (VENDOR / "bitcoin-connect.js").read_text()
    assert bundle.startswith('"use strict";var bitcoinConnect=') or "var bitcoinConnect=" in bundle[:200]
    assert "@getalby/bitcoin-connect@" in (VENDOR / "LICENSES.txt").read_text()


def connect_in_the_modal(page: Page, connection_uri: str, screenshot: str = "") -> None:
    """Through Bitcoin Connect's modal as a person would: Connect wallet, the NWC tile, paste, Connect."""
    page.get_by_role("button", name="Connect wallet").click()
    modal = page.locator("bc-modal")
    expect(modal.get_by_role("heading", name="How would you like to connect to VOLTA?")).to_be_visible()
    if screenshot:
        page.wait_for_timeout(500)  # the modal's slide-in
        snap(page, screenshot)
    modal.get_by_role("button", name="Connect with NWC").click()
    secret = modal.get_by_placeholder("nostr+walletconnect://...")
    expect(secret).to_be_visible()
    secret.fill(connection_uri)
    modal.get_by_role("button", name="Connect", exact=True).click()


def assert_no_csp_violations(page: Page) -> None:
    violations = page.evaluate("window.__cspViolations")
    assert violations == [], violations


def test_connect_a_nostr_wallet_and_pay_with_one_tap(
        restarted: Callable[[dict[str, str]], str], page: Page, desktop: Callable[[str], Page], network: Network,
        starknet: StarknetClient, relay: NostrRelay, wallet: NwcWalletService, page_problems: PageProblems) -> None:
    # Any TLS relay as by default, plus the test's relay, which is plain ws:// on loopback.
    base = restarted({"VOLTA_NWC_RELAYS": f"wss:,{relay.url}"})
    address = network.users[-1]["address"]
    order = httpx.post(f"{base}/api/v1/orders", json={"starknet_address": address, "vusd_amount": "2.00"},
                       timeout=30).raise_for_status().json()
    checkout_url = f"{base}/checkout/{order['order_id']}"
    page.add_init_script(CSP_RECORDER)

    response = page.goto(checkout_url)
    assert response is not None
    policy = response.headers["content-security-policy"]
    assert "script-src 'self';" in policy and "style-src 'self';" in policy, policy
    assert f"connect-src 'self' wss: {relay.url};" in policy, policy
    expect(page.get_by_role("button", name="Connect wallet")).to_be_visible()

    connect_in_the_modal(page, wallet.connection_uri, screenshot="checkout-connect-modal")
    pay_name = re.compile(r"^Pay [0-9,.]+ sats with your connected wallet$")  # the amount as the page writes it
    pay = page.get_by_role("button", name=pay_name)
    expect(pay).to_be_visible()
    expect(page.locator("bc-modal")).to_have_count(0)  # the modal closed itself: the next tap pays
    expect(page.locator("#bc-status")).to_have_text("Wallet connected.")
    assert "get_info" in wallet.methods_asked(), wallet.handled  # Bitcoin Connect asked the wallet itself
    assert all(request.encryption == "nip44_v2" for request in wallet.handled), wallet.handled
    assert_good_layout(page)
    snap(page, "checkout-connect")
    assert_no_csp_violations(page)

    # The same state at desktop width, connected in a page of its own (its own browser storage).
    wide = desktop(checkout_url)
    wide.add_init_script(CSP_RECORDER)
    wide.reload()
    connect_in_the_modal(wide, wallet.connection_uri)
    expect(wide.get_by_role("button", name=pay_name)).to_be_visible()
    assert_good_layout(wide)
    snap(wide, "checkout-connect")
    assert_no_csp_violations(wide)
    # The wallet's secret is not kept: the page forgets the connection, and a new page starts unconnected.
    assert wide.evaluate("localStorage.getItem('bc:config')") is None
    wide.reload()
    expect(wide.get_by_role("button", name="Connect wallet")).to_be_visible()
    expect(wide.get_by_role("button", name=pay_name)).to_be_hidden()

    # The first tap is declined in the wallet: the page says so and keeps every other way to pay.
    page_problems.allow(r"Failed to request pay_invoice .*declined by the wallet's owner")  # the SDK logs it
    wallet.refuse_payments = 1
    pay.click()
    error = page.locator("#bc-error")
    expect(error).to_contain_text("You declined the payment in your wallet.")
    expect(error).to_contain_text("scan the QR code")
    expect(page.locator("#qr")).to_be_visible()
    refused = [request for request in wallet.handled if request.method == "pay_invoice"]
    assert len(refused) == 1 and refused[0].error is not None, wallet.handled  # the refusal did happen
    assert wallet.refuse_payments == 0
    assert httpx.get(f"{base}/api/v1/orders/{order['order_id']}", timeout=30).json()["status"] == "awaiting_payment"
    assert_no_csp_violations(page)

    pay.click()  # the one tap that pays
    expect(page.locator("#status-headline")).to_have_text("Done: 2.00 VUSD is yours")
    paid = [request for request in wallet.handled if request.method == "pay_invoice" and request.error is None]
    assert len(paid) == 1, wallet.handled
    assert paid[0].params["invoice"] == order["bolt11"] and paid[0].result, paid[0]
    assert hashlib.sha256(bytes.fromhex(paid[0].result["preimage"])).hexdigest() == order["payment_hash"]

    # Judged from outside the service: the merchant's lnd and the vault on Starknet.
    payment_hash = bytes.fromhex(order["payment_hash"])
    assert network.merchant.client().lookup_invoice(payment_hash)["state"] == "SETTLED"
    assert starknet.is_payment_used(payment_hash)
    assert wallet.problems == []
    assert_no_csp_violations(page)


async def ask_over_nip04(wallet: NwcWalletService, relay_url: str, method: str) -> dict[str, Any]:
    """One NIP-47 request as an older client sends it: NIP-04, no `encryption` tag; the decrypted reply."""
    client = Client()
    await client.add_relay(RelayUrl.parse(relay_url))
    await client.connect(timedelta(seconds=Timeouts.RPC))
    try:
        wallet_key, app = wallet.wallet_keys.public_key(), wallet.client_keys
        await client.subscribe(ReqTarget.auto([Filter().kind(Kind(RESPONSE_KIND)).author(wallet_key)
                                               .since(Timestamp.now())]))
        content = app.nip04_encrypt(wallet_key, json.dumps({"method": method, "params": {}}))
        await client.send_event(EventBuilder(Kind(REQUEST_KIND), content).tags([Tag.public_key(wallet_key)])
                                .finalize(app))
        notifications = client.notifications()
        while True:
            notification = await asyncio.wait_for(notifications.next(), Timeouts.RPC)
            if notification is not None and notification.is_new_event():
                reply: dict[str, Any] = json.loads(app.nip04_decrypt(wallet_key, notification.event.content()))
                return reply
    finally:
        await client.shutdown()


def test_the_wallet_service_answers_nip04_clients_too(wallet: NwcWalletService, relay: NostrRelay,
                                                      network: Network) -> None:
    """Bitcoin Connect speaks NIP-44; a client that predates it sends NIP-04 and gets its answer the same way."""
    reply = run_async(ask_over_nip04(wallet, relay.url, "get_balance"))
    assert reply["result_type"] == "get_balance", reply
    assert reply["result"]["balance"] == network.payer.client().channel_balance()["local_msat"]
    assert wallet.handled[-1].encryption == "nip04" and wallet.problems == []


def test_the_relays_the_policy_allows() -> None:
    """On the checkout: any TLS relay by default, the operator's list otherwise, and an entry that is no relay origin
    never widens it. Every other page stays same-origin only, with no inline style at all."""
    default = content_security_policy(load_settings(environ={}), wallet_connect=True)
    assert "connect-src 'self' wss:;" in default and "ws:" not in default.replace("wss:", "")
    listed = load_settings(environ={"VOLTA_NWC_RELAYS": "wss://relay.example, ws://127.0.0.1:7447/"})
    assert "connect-src 'self' wss://relay.example ws://127.0.0.1:7447;" in content_security_policy(listed, True)
    elsewhere = content_security_policy(listed)
    assert "connect-src 'self';" in elsewhere and "style-src-attr 'none';" in elsewhere and "unsafe" not in elsewhere
    for junk in ("https://evil.example", "*", "'unsafe-inline'", "wss://relay.example; script-src *"):
        with pytest.raises(ValueError, match="not a relay origin"):
            load_settings(environ={"VOLTA_NWC_RELAYS": junk})
    assert load_settings(environ={"VOLTA_NWC_RELAYS": "wss:,ws://127.0.0.1:1"}).nwc_relays == ["wss:",
                                                                                             "ws://127.0.0.1:1"]
    # Inline style: only the vendored tiles' colours, by hash; no 'unsafe-inline' anywhere.
    assert "style-src 'self';" in default and "'unsafe-inline'" not in default
    hashes = bitcoin_connect_style_hashes()
    assert hashes and f"style-src-attr 'unsafe-hashes' {' '.join(hashes)};" in default
