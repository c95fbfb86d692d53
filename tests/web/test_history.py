"""The history page asks the Starknet wallet in the browser to sign the service's challenge, then lists every
purchase of the address; without a wallet it lists only the purchases this browser made. The wallet is an
injected provider that signs with a devnet account's key; the service checks the signature with the account
contract on the real devnet."""

from __future__ import annotations

import re
import secrets
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, Request, expect

from harness.network import Network
from tests.service.history_signing import bearer, history_session
from tests.web.starknet_wallet import inject_starknet_wallet
from tests.web.support import assert_contrast, assert_good_layout, snap

pytestmark = pytest.mark.regtest

TEXT_SELECTORS = ["h1", "h2", "label", ".btn", "#proof p", "#results-summary", ".purchase-meta", ".badge"]


@pytest.fixture(scope="module")
def base(network: Network) -> str:
    assert network.service is not None
    return network.service.url


def padded(address: str) -> str:
    return f"0x{int(address, 16):064x}"


def proven_history(base: str, account: dict[str, str]) -> dict[str, Any]:
    with httpx.Client(base_url=base, timeout=60) as http:
        session = history_session(http, account)
        listed = http.get("/api/v1/orders", params={"starknet_address": account["address"], "limit": 100},
                          headers=bearer(session))
    assert listed.status_code == 200, listed.text
    return listed.json()


def list_requests(page: Page) -> list[str]:
    """Every request the page sends for an address's list of orders."""
    seen: list[str] = []

    def record(request: Request) -> None:
        if re.search(r"/api/v1/orders\?", request.url):
            seen.append(request.url)

    page.on("request", record)
    return seen


def test_the_wallet_signs_and_the_page_lists_every_purchase(page: Page, base: str, network: Network) -> None:
    account = network.users[1]
    address = padded(account["address"])
    httpx.post(f"{base}/api/v1/orders", json={"starknet_address": address, "vusd_amount": "4.00"},
               timeout=60).raise_for_status()
    asked = inject_starknet_wallet(page, account, decline_first=True)

    page.goto(f"{base}/history?starknet_address={address}")
    sign = page.get_by_role("button", name="Sign in with your Starknet wallet")
    expect(sign).to_be_visible()
    expect(page.locator("#proof-text")).to_contain_text("Signing is free and sends no transaction.")
    expect(page.locator("#results-title")).to_have_text("Made in this browser")
    expect(page.locator("#results-summary")).to_have_text("No purchases for this address were made in this browser.")
    assert_good_layout(page)
    assert_contrast(page, TEXT_SELECTORS)
    snap(page, "history-sign-in")

    sign.click()  # the wallet's first answer is a refusal, as when the person taps "reject"
    expect(page.locator("#proof-msg")).to_have_text(
        "You declined to sign in your wallet. Nothing was shared; sign when you are ready.")
    expect(page.locator("#results-title")).to_have_text("Made in this browser")

    sign.click()
    expect(page.locator("#results-title")).to_have_text("Purchases")
    expect(page.locator("#proof")).to_be_hidden()
    listed = proven_history(base, account)  # what the API says, with a proof of the test's own
    total = listed["total"]
    assert total >= 1
    items = page.locator("#purchases .purchase")
    expect(items).to_have_count(min(total, 10))
    expect(page.locator("#results-summary")).to_contain_text(f"{total} purchase")
    expect(items.first).to_have_attribute("data-order-id", listed["orders"][0]["order_id"])

    assert len(asked) == 1, "the declined request never reached the key"
    assert asked[0]["domain"]["name"] == "VOLTA Lightning" and asked[0]["domain"]["revision"] == "1"
    assert padded(asked[0]["message"]["account"]) == address
    assert_good_layout(page)
    assert_contrast(page, TEXT_SELECTORS)
    snap(page, "history-signed-in")

    page.reload()  # the session lives in this tab until it expires: no second signature
    expect(page.locator("#results-title")).to_have_text("Purchases")
    expect(items).to_have_count(min(total, 10))
    assert len(asked) == 1


def test_without_a_wallet_the_page_shows_this_browsers_purchases(page: Page, base: str) -> None:
    address = f"0x{secrets.randbits(248) | 1:064x}"
    elsewhere = httpx.post(f"{base}/api/v1/orders", json={"starknet_address": address, "vusd_amount": "2.00"},
                           timeout=60)
    elsewhere.raise_for_status()  # made by someone else, not in this browser: it must not show

    page.goto(f"{base}/?amount=3&address={address}")
    expect(page.locator("#sats")).to_contain_text("sats")
    page.get_by_role("button", name="Buy VUSD").click()
    page.wait_for_url(re.compile(r"/checkout/ord_[0-9a-f]+$"))
    bought_here = page.url.rsplit("/", 1)[1]

    lists = list_requests(page)
    page.goto(f"{base}/history?starknet_address={address}")
    expect(page.locator("#no-wallet")).to_be_visible()
    expect(page.locator("#no-wallet")).to_contain_text("No Starknet wallet was found in this browser.")
    expect(page.get_by_role("button", name="Sign in with your Starknet wallet")).to_be_hidden()
    expect(page.locator("#results-title")).to_have_text("Made in this browser")
    items = page.locator("#purchases .purchase")
    expect(items).to_have_count(1)
    expect(items.first).to_have_attribute("data-order-id", bought_here)
    expect(items.first.locator(".purchase-amount")).to_have_text("3.00 VUSD")
    expect(page.locator("#results-summary")).to_have_text("1 purchase made in this browser, newest first.")
    assert lists == [], "without a proof the page must not ask for the address's list"
    assert_good_layout(page)
    assert_contrast(page, TEXT_SELECTORS)
    snap(page, "history-this-browser")


def test_a_wallet_on_another_account_is_told_which_one(page: Page, base: str, network: Network) -> None:
    wallet_account, shown = network.users[1], padded(network.users[2]["address"])
    asked = inject_starknet_wallet(page, wallet_account)
    page.goto(f"{base}/history?starknet_address={shown}")
    page.get_by_role("button", name="Sign in with your Starknet wallet").click()
    message = page.locator("#proof-msg")
    expect(message).to_contain_text(f"Your wallet's account is {wallet_account['address']}, not this address.")
    link = message.get_by_role("link", name="or see that account's purchases")
    expect(link).to_have_attribute("href", re.compile(r"^/history\?starknet_address="))
    assert asked == [], "nothing is signed for an address the wallet does not hold"
    link.click()
    page.get_by_role("button", name="Sign in with your Starknet wallet").click()
    expect(page.locator("#results-title")).to_have_text("Purchases")
    assert len(asked) == 1
