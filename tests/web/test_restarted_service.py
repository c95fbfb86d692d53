"""Pages against a service restarted with other settings: quotes that expire in 5 seconds, and a daily limit
only the service knows about (its 4xx message and hint appear next to the form)."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable

import httpx
import pytest
from playwright.sync_api import Page, Request, expect

from harness.network import Network
from harness.purchase import Buyer
from tests.service.history_signing import bearer, history_session
from tests.web.support import assert_contrast, assert_good_layout, snap, start_again_prefills

pytestmark = pytest.mark.regtest


def fresh_address() -> str:
    return f"0x{secrets.randbits(248) | 1:064x}"


def test_expired_quote_says_no_money_moved(restarted: Callable[[dict[str, str]], str], page: Page,
                                           desktop: Callable[[str], Page]) -> None:
    base = restarted({"VOLTA_QUOTE_LIFETIME_S": "5"})
    address = fresh_address()
    page.goto(f"{base}/")
    expect(page.locator("#lifetime-line")).to_have_text("You will have 5 seconds to pay the invoice.")
    page.get_by_label("Amount", exact=True).fill("25")
    page.get_by_label("Your Starknet address").fill(address)
    page.get_by_role("button", name="Buy VUSD").click()
    page.wait_for_url(re.compile(r"/checkout/ord_[0-9a-f]+$"))
    order_id = page.url.rsplit("/", 1)[1]

    # Nobody pays: the page learns of the expiry by itself and says what happened to the money.
    expect(page.locator("#status-headline")).to_have_text("This quote expired")
    expect(page.locator("#status-detail")).to_have_text(
        "Nobody paid the invoice in time, so no money moved: your sats never left your wallet.")
    expect(page.locator("#pay-card")).to_be_hidden()
    expect(page.locator("#announcer")).to_contain_text("This quote expired")
    order = httpx.get(f"{base}/api/v1/orders/{order_id}", timeout=30).json()
    assert order["status"] == "expired"
    restart = page.get_by_role("link", name="Start again with a new quote")
    expect(restart).to_be_visible()
    assert_good_layout(page)
    assert_contrast(page, ["h1", "h2", ".status-detail", ".btn", "dt", "dd"])
    snap(page, "checkout-expired")
    snap(desktop(page.url), "checkout-expired")

    start_again_prefills(page, restart, "25.00", address)


def test_the_services_refusal_appears_next_to_the_form(restarted: Callable[[dict[str, str]], str], page: Page,
                                                       network: Network, buyer: Buyer) -> None:
    # A devnet account whose history the test can prove; no other test pays for it (its daily total is ours).
    account = network.users[2]
    address = f"0x{int(account['address'], 16):064x}"
    assert buyer.buy(address, "25.00").order["status"] == "completed"
    base = restarted({"VOLTA_MAX_VUSD_PER_ADDRESS_PER_DAY": "30"})
    posts: list[Request] = []
    page.on("request", lambda request: posts.append(request) if request.method == "POST" else None)

    page.goto(f"{base}/?amount=25&address={address}")
    expect(page.locator("#sats")).to_contain_text("sats")
    page.get_by_role("button", name="Buy VUSD").click()

    alert = page.get_by_role("alert")
    expect(alert).to_be_visible()
    expect(page.locator("#form-error-message")).to_have_text(
        re.compile(r"This address has bought 25(\.00)? VUSD in the last 24 hours; the limit is 30 VUSD\."))
    expect(page.locator("#form-error-hint")).to_have_text(re.compile(r"You can still buy up to 5(\.00)? VUSD today\."))
    expect(page.get_by_label("Amount", exact=True)).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_role("button", name="Buy VUSD")).to_be_enabled()
    assert page.url.startswith(f"{base}/?"), "the page must stay on the form"
    assert len(posts) == 1
    assert posts[0].headers.get("idempotency-key"), "the page protects its order against retries"
    with httpx.Client(base_url=base, timeout=60) as http:
        listed = http.get("/api/v1/orders", params={"starknet_address": address},
                          headers=bearer(history_session(http, account))).json()
    assert listed["orders"][0]["status"] == "completed", listed  # the refusal created no order after the purchase
    assert listed["orders"][0]["vusd_amount"] in ("25", "25.00"), listed
    assert_good_layout(page)
    assert_contrast(page, ["#form-error-message", "#form-error-hint", "label", ".btn"])
    snap(page, "buy-refused")
