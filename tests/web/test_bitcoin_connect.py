"""Bitcoin Connect on the checkout, in a real browser against the real network: the buyer connects a Nostr
Wallet Connect wallet through Bitcoin Connect's own modal (pasting the wallet's connection secret, as a person
does) and pays with one tap. The wallet is harness/nostr.py's NIP-47 service on a local Nostr relay, paying with
the payer's lnd. The money is judged from outside: the merchant's invoice is SETTLED and the vault marks the
payment hash used. The page's policy stays strict: no CSP violation while the modal is open, connects or pays."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from harness.network import Network
from harness.nostr import NostrRelay, NwcWalletService
from service.starknet.client import StarknetClient
from tests.web.support import assert_good_layout, snap

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


def connect_in_the_modal(page: Page, connection_uri: str) -> None:
    """Through Bitcoin Connect's modal as a person would: Connect wallet, the NWC tile, paste, Connect."""
    page.get_by_role("button", name="Connect wallet").click()
    modal = page.locator("bc-modal")
    expect(modal.get_by_role("heading", name="How would you like to connect to VOLTA?")).to_be_visible()
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
        starknet: StarknetClient, relay: NostrRelay, wallet: NwcWalletService) -> None:
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

    connect_in_the_modal(page, wallet.connection_uri)
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

    pay.click()  # the one tap
    expect(page.locator("#status-headline")).to_have_text("Done: 2.00 VUSD is yours")
    paid = [request for request in wallet.handled if request.method == "pay_invoice"]
    assert len(paid) == 1, wallet.handled
    assert paid[0].params["invoice"] == order["bolt11"] and paid[0].error is None, paid[0]

    # Judged from outside the service: the merchant's lnd and the vault on Starknet.
    payment_hash = bytes.fromhex(order["payment_hash"])
    assert network.merchant.client().lookup_invoice(payment_hash)["state"] == "SETTLED"
    assert starknet.is_payment_used(payment_hash)
    assert_no_csp_violations(page)
