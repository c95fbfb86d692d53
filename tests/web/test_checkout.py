"""Whole purchases in a real browser against the real network: order on the buy page, pay the checkout page's
invoice from the payer's lnd (as a phone wallet would) or through a WebLN provider in the page, and watch the
page reach its end by itself; a refund when the price moves; the purchase history."""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from playwright.sync_api import Page, expect

from harness.contracts.deploy import set_price
from harness.lnd import quiet_local_msat
from harness.network import Network
from harness.util import Timeouts
from service.domain.pricing import VUSD_DECIMALS
from service.starknet.client import StarknetClient
from tests.service.history_signing import bearer, history_session
from tests.web.starknet_wallet import inject_starknet_wallet
from tests.web.support import PageProblems, assert_contrast, assert_good_layout, run_async, snap, start_again_prefills

pytestmark = pytest.mark.regtest

VUSD = 10**VUSD_DECIMALS
BASE_PRICE = Decimal("97000")
TEXT_SELECTORS = ["h1", "h2", ".status-detail", ".status-reason", ".step-label", ".countdown", ".btn", "dt", "dd",
                  ".msg", ".topbar a", ".hash", ".invoice-text summary"]

# Records every status the page shows, so the test can see it only ever moves forward.
STATUS_RECORDER = """
() => {
  window.__voltaSeen = [document.getElementById('checkout').dataset.status];
  new MutationObserver(() => {
    const status = document.getElementById('checkout').dataset.status;
    if (window.__voltaSeen[window.__voltaSeen.length - 1] !== status) window.__voltaSeen.push(status);
  }).observe(document.getElementById('checkout'), {attributes: true, attributeFilter: ['data-status']});
  window.__voltaNotReloaded = true;
}
"""
ORDER_OF = ["awaiting_payment", "payment_held", "minting", "minted", "completed"]

WEBLN_PROVIDER = """
window.webln = {
  calls: 0,
  async enable() {},
  async sendPayment(paymentRequest) {
    this.calls += 1;
    if (this.calls === 1) throw new Error("User rejected the payment request");
    return { preimage: await window.volta_pay(paymentRequest) };
  },
};
"""


@pytest.fixture(scope="module")
def shopper_account(network: Network) -> dict[str, str]:
    """A devnet account for this module's purchases: its wallet can prove the address on the history page."""
    return network.users[3]


@pytest.fixture(scope="module")
def shopper(shopper_account: dict[str, str]) -> str:
    """The account's address as the service writes it, so its history page has something to show."""
    return f"0x{int(shopper_account['address'], 16):064x}"


@pytest.fixture(scope="module")
def base(network: Network) -> str:
    assert network.service is not None
    return network.service.url


@pytest.fixture(scope="module")
def wallet() -> Iterator[ThreadPoolExecutor]:
    """Pays in the background, as the phone next to the screen would."""
    pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="phone-wallet")
    yield pool
    pool.shutdown(wait=True)


def api_order(base: str, order_id: str) -> dict[str, Any]:
    return httpx.get(f"{base}/api/v1/orders/{order_id}", timeout=30).raise_for_status().json()


def order_through_page(page: Page, base: str, address: str, amount: str = "25") -> str:
    """Fill the buy form and press Buy; returns the order id of the checkout page it lands on."""
    page.goto(f"{base}/")
    expect(page.locator("#rate-line")).to_contain_text("1 BTC =")
    page.get_by_label("Amount", exact=True).fill(amount)
    page.get_by_label("Your Starknet address").fill(address)
    expect(page.locator("#sats")).to_contain_text("sats")
    estimate = int(page.locator("#sats").inner_text().removesuffix(" sats").replace(",", ""))
    page.get_by_role("button", name="Buy VUSD").click()
    page.wait_for_url(re.compile(r"/checkout/ord_[0-9a-f]+$"))
    order_id = page.url.rsplit("/", 1)[1]
    expect(page.locator("#status-headline")).to_have_text("Waiting for your payment")
    page.wait_for_function("() => document.getElementById('qr').complete && document.getElementById('qr').naturalWidth")
    assert math.ceil(api_order(base, order_id)["amount_msat"] / 1000) == estimate  # the page quoted what we charge
    page.evaluate(STATUS_RECORDER)
    return order_id


def assert_moved_forward_without_reload(page: Page, final: str) -> None:
    assert page.evaluate("window.__voltaNotReloaded === true"), "the page reloaded"
    seen = page.evaluate("window.__voltaSeen")
    assert seen[0] == "awaiting_payment" and seen[-1] == final, seen
    progress = [ORDER_OF.index(status) for status in seen if status in ORDER_OF]
    assert progress == sorted(progress), seen


def test_pay_from_a_phone_wallet(page: Page, base: str, network: Network, starknet: StarknetClient, shopper: str,
                                 wallet: ThreadPoolExecutor, desktop: Callable[[str], Page]) -> None:
    vusd_before = starknet.vusd_balance(int(shopper, 16))
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    order_id = order_through_page(page, base, shopper)
    order = api_order(base, order_id)

    # What a phone needs: the QR (of "lightning:" + the invoice), the invoice to copy, a wallet link.
    copy_button = page.get_by_role("button", name="Copy invoice")
    bolt11 = copy_button.get_attribute("data-bolt11")
    assert bolt11 == order["bolt11"]
    expect(page.locator("#qr")).to_have_attribute("src", f"/api/v1/orders/{order_id}/qr.svg")
    expect(page.get_by_role("link", name="Open in wallet")).to_have_attribute("href", f"lightning:{bolt11}")
    expect(page.get_by_role("button", name="Pay with browser wallet")).to_be_hidden()
    expect(page.locator("#pay-title")).to_contain_text("sats")
    expect(page.locator("#countdown")).to_have_text(re.compile(r"^Expires in \d+:\d\d$"))
    assert_good_layout(page)
    assert_contrast(page, TEXT_SELECTORS)
    snap(page, "checkout")
    copy_button.click()
    expect(page.locator("#copy-msg")).to_have_text("Invoice copied. Paste it in your Lightning wallet.")
    assert page.evaluate("navigator.clipboard.readText()") == bolt11
    wide = desktop(page.url)
    expect(wide.locator("#qr")).to_be_visible()
    assert wide.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    snap(wide, "checkout")

    payment: Future[dict[str, Any]] = wallet.submit(network.payer.client().pay, bolt11, int(Timeouts.PAYMENT))

    expect(page.locator("#status-headline")).to_have_text("Done: 25.00 VUSD is yours")
    final = api_order(base, order_id)
    assert final["status"] == "completed"
    expect(page.locator("#tx-hash")).to_have_text(final["mint_tx_hash"])
    expect(page.locator("#status-detail")).to_contain_text("at your Starknet address")
    expect(page.locator("#pay-card")).to_be_hidden()
    expect(page.locator("#steps .step.is-done")).to_have_count(4)
    expect(page.locator("#announcer")).to_contain_text("Done: 25.00 VUSD is yours")
    assert_moved_forward_without_reload(page, "completed")
    assert payment.result(timeout=Timeouts.PAYMENT)["status"] == "SUCCEEDED"
    balance_after = starknet.vusd_balance(int(shopper, 16))
    assert balance_after - vusd_before == 25 * VUSD
    whole, cents = divmod(balance_after // 10**16, 100)
    expect(page.locator("#new-balance")).to_have_text(f"Your VUSD balance is now {whole:,}.{cents:02d} VUSD.")
    assert_good_layout(page)
    snap(page, "checkout-done")
    snap(desktop(page.url), "checkout-done")


def test_pay_with_a_webln_browser_wallet(page: Page, base: str, network: Network, starknet: StarknetClient,
                                         shopper: str) -> None:
    """The provider in the page pays through the payer's lnd for real. Its first answer is a refusal, as when the
    person taps "reject": the page says so, keeps the QR, and the second try pays."""
    vusd_before = starknet.vusd_balance(int(shopper, 16))
    payer = network.payer.client()
    preimages: list[str] = []

    def volta_pay(bolt11: str) -> Any:
        async def pay() -> str:  # awaited by Playwright's loop, so the page keeps running while lnd pays
            result = await asyncio.to_thread(payer.pay, bolt11, int(Timeouts.PAYMENT))
            if result.get("status") != "SUCCEEDED":
                raise RuntimeError(f"payment failed: {result.get('failure_reason')}")
            preimages.append(result["payment_preimage"])
            return result["payment_preimage"]

        return pay()

    page.expose_function("volta_pay", volta_pay)
    page.add_init_script(WEBLN_PROVIDER)
    order_id = order_through_page(page, base, shopper)

    pay_button = page.get_by_role("button", name="Pay with browser wallet")
    expect(pay_button).to_be_visible()
    expect(page.get_by_role("link", name="Open in wallet")).to_have_class(re.compile(r"\bbtn-secondary\b"))
    pay_button.click()
    message = page.locator("#webln-msg")
    expect(message).to_contain_text("You declined the payment in your wallet.")
    expect(message).to_contain_text("Scan the QR code")
    expect(page.locator("#qr")).to_be_visible()
    assert api_order(base, order_id)["status"] == "awaiting_payment"
    assert_good_layout(page)
    snap(page, "checkout-webln-declined")

    page.get_by_role("button", name="Try the browser wallet again").click()
    expect(page.locator("#status-headline")).to_have_text("Done: 25.00 VUSD is yours")
    final = api_order(base, order_id)
    expect(page.locator("#tx-hash")).to_have_text(final["mint_tx_hash"])
    assert_moved_forward_without_reload(page, "completed")
    assert len(preimages) == 1
    assert hashlib.sha256(bytes.fromhex(preimages[0])).hexdigest() == final["payment_hash"]
    assert starknet.vusd_balance(int(shopper, 16)) - vusd_before == 25 * VUSD


def test_status_still_arrives_when_the_event_stream_is_blocked(page: Page, base: str, network: Network,
                                                                shopper: str, wallet: ThreadPoolExecutor,
                                                                page_problems: PageProblems) -> None:
    """A proxy that breaks Server-Sent Events: the page falls back to polling and still reaches the end."""
    page_problems.allow(r"Failed to load resource: net::ERR_FAILED")
    blocked: list[str] = []

    def block(route: Any) -> None:
        blocked.append(route.request.url)
        route.abort()

    page.route(re.compile(r"/api/v1/orders/[^/]+/events$"), block)
    order_through_page(page, base, shopper)
    bolt11 = page.get_by_role("button", name="Copy invoice").get_attribute("data-bolt11")
    payment = wallet.submit(network.payer.client().pay, bolt11, int(Timeouts.PAYMENT))
    expect(page.locator("#status-headline")).to_have_text("Done: 25.00 VUSD is yours")
    assert blocked, "the page never tried the event stream"
    assert_moved_forward_without_reload(page, "completed")
    assert payment.result(timeout=Timeouts.PAYMENT)["status"] == "SUCCEEDED"


@pytest.fixture
def price_restored(network: Network) -> Iterator[None]:
    yield
    run_async(set_price(network.owner_account(), network.contracts.oracle, BASE_PRICE))


def test_refund_when_the_price_moves_beyond_the_bound(page: Page, base: str, network: Network,
                                                      starknet: StarknetClient, shopper: str,
                                                      wallet: ThreadPoolExecutor, price_restored: None,
                                                      desktop: Callable[[str], Page]) -> None:
    run_async(set_price(network.owner_account(), network.contracts.oracle, BASE_PRICE))
    payer = network.payer.client()
    payer_before = quiet_local_msat(payer)
    vusd_before = starknet.vusd_balance(int(shopper, 16))
    order_id = order_through_page(page, base, shopper)
    bolt11 = page.get_by_role("button", name="Copy invoice").get_attribute("data-bolt11")

    run_async(set_price(network.owner_account(), network.contracts.oracle, Decimal("99000")))  # +2.06 % > 1 %
    payment = wallet.submit(payer.pay, bolt11, int(Timeouts.PAYMENT))

    expect(page.locator("#status-headline")).to_have_text("Refunded: your wallet has your sats back")
    expect(page.locator("#status-reason")).to_have_text(
        "The bitcoin price moved more than your 1.00\u00a0% price protection between the quote and your payment.")
    restart = page.get_by_role("link", name="Start again with a new quote")
    expect(restart).to_be_visible()
    query = parse_qs(urlparse(restart.get_attribute("href") or "").query)
    assert query == {"amount": ["25.00"], "address": [shopper]}
    expect(page.locator("#announcer")).to_contain_text("your wallet has your sats back")
    assert api_order(base, order_id)["refund_reason"] == "slippage_exceeded"
    assert_moved_forward_without_reload(page, "refunded")
    assert payment.result(timeout=Timeouts.PAYMENT)["status"] == "FAILED"
    assert quiet_local_msat(payer) == payer_before
    assert starknet.vusd_balance(int(shopper, 16)) == vusd_before
    assert_good_layout(page)
    assert_contrast(page, TEXT_SELECTORS)
    snap(page, "checkout-refunded")
    snap(desktop(page.url), "checkout-refunded")

    start_again_prefills(page, restart, "25.00", shopper)
    expect(page.locator("#rate-line")).to_contain_text("1 BTC = 99,000.00 USD")  # a new quote at the new price


def proven_history(base: str, account: dict[str, str], limit: int = 20) -> dict[str, Any]:
    """The address's purchases as the API lists them, with a proof of the test's own."""
    with httpx.Client(base_url=base, timeout=60) as client:
        session = history_session(client, account)
        listed = client.get("/api/v1/orders", params={"starknet_address": account["address"], "limit": limit},
                            headers=bearer(session))
    assert listed.status_code == 200, listed.text
    return listed.json()


def sign_in_on_history_page(page: Page, base: str, account: dict[str, str]) -> None:
    """Open the account's history page with its wallet in the browser and sign the challenge."""
    inject_starknet_wallet(page, account)
    page.goto(f"{base}/history?starknet_address={account['address']}")
    page.get_by_role("button", name="Sign in with your Starknet wallet").click()
    expect(page.locator("#results-title")).to_have_text("Purchases")


def test_history_lists_the_purchases(page: Page, base: str, shopper_account: dict[str, str],
                                     desktop: Callable[[str], Page]) -> None:
    listed = proven_history(base, shopper_account)
    if listed["total"] == 0:
        pytest.skip("needs the purchases of the tests above in this module")
    sign_in_on_history_page(page, base, shopper_account)
    items = page.locator("#purchases .purchase")
    expect(items).to_have_count(listed["total"])
    expect(page.locator("#results-summary")).to_contain_text(f"{listed['total']} purchase")
    for index, order in enumerate(listed["orders"]):
        item = items.nth(index)
        expect(item).to_have_attribute("data-order-id", order["order_id"])
        expect(item.locator(".purchase-amount")).to_have_text(f"{Decimal(order['vusd_amount']):,.2f} VUSD")
        expect(item.locator("time")).to_have_attribute("datetime", order["created_at"])
        if order["mint_tx_hash"]:
            expect(item.locator(".hash")).to_have_text(order["mint_tx_hash"])
        expect(item.get_by_role("link")).to_have_attribute("href", f"/checkout/{order['order_id']}")
    expect(page.locator("#pager")).to_be_hidden()
    assert_good_layout(page)
    assert_contrast(page, ["h1", "h2", "label", ".badge", ".purchase-meta", ".purchase-amount", ".hash", "a.more"])
    snap(page, "history")
    # The desktop page is another browser context: it proves the address with its own wallet and signature.
    wide = desktop(f"{base}/")
    sign_in_on_history_page(wide, base, shopper_account)
    expect(wide.locator("#purchases .purchase")).to_have_count(listed["total"])
    snap(wide, "history")


def test_history_pages_through_many_orders(page: Page, base: str, network: Network) -> None:
    account = network.users[1]  # a devnet account, so the page can prove it; other tests may buy for it too
    address = f"0x{int(account['address'], 16):064x}"
    with httpx.Client(base_url=base, timeout=60) as client:
        for _ in range(12):
            client.post("/api/v1/orders", json={"starknet_address": address, "vusd_amount": "1.00"}).raise_for_status()
    listed = proven_history(base, account, limit=100)
    newest_first, total = [order["order_id"] for order in listed["orders"]], listed["total"]
    assert total >= 12, total  # at least two pages of ten (other tests may have bought for this account too)
    second_page = min(10, total - 10)

    sign_in_on_history_page(page, base, account)
    items = page.locator("#purchases .purchase")
    expect(items).to_have_count(10)
    expect(page.locator("#results-summary")).to_have_text(f"{total} purchases, newest first; showing 1\u201310.")
    expect(items.first).to_have_attribute("data-order-id", newest_first[0])
    expect(items.first.locator(".badge")).to_have_text("Waiting for payment")
    expect(page.get_by_role("link", name="Newer")).to_be_hidden()

    page.get_by_role("link", name="Older").click()  # a new page load: the session lives on in this tab
    page.wait_for_url(re.compile(r"offset=10"))
    expect(items).to_have_count(second_page)
    expect(page.locator("#results-summary")).to_have_text(
        f"{total} purchases, newest first; showing 11\u2013{10 + second_page}.")
    expect(items.last).to_have_attribute("data-order-id", newest_first[10 + second_page - 1])
    older = page.get_by_role("link", name="Older")
    if total <= 20:
        expect(older).to_be_hidden()
    else:
        expect(older).to_be_visible()

    page.get_by_role("link", name="Newer").click()
    expect(items).to_have_count(10)
    expect(items.first).to_have_attribute("data-order-id", newest_first[0])
    assert_good_layout(page)
