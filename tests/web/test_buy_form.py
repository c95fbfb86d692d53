"""The buy page in a real browser: the live sats estimate, the address and amount checks, price protection,
keyboard order, and that bad input creates no order."""

from __future__ import annotations

import math
import re
import secrets
from collections.abc import Callable
from decimal import Decimal

import httpx
import pytest
from playwright.sync_api import Page, Request, expect

from harness.network import Network
from tests.service.history_signing import bearer, history_session
from tests.web.support import assert_contrast, assert_good_layout, snap

pytestmark = pytest.mark.regtest

TEXT_SELECTORS = ["h1", ".lead", "label", ".help", ".msg", ".estimate-sats", ".estimate-rate", ".btn", ".chip",
                  ".topbar a", ".alert-title", "summary"]


def fresh_address() -> str:
    return f"0x{secrets.randbits(248) | 1:064x}"


def expected_sats(rate: dict[str, object], vusd: str) -> int:
    effective = Decimal(str(rate["btc_usd"])) * (1 - Decimal(str(rate["spread_bps"])) / 10_000)
    return math.ceil(Decimal(vusd) / effective * 100_000_000)


def orders_total(base: str, account: dict[str, str]) -> int:
    """How many orders the service has for a devnet account (its history needs the account's signature)."""
    with httpx.Client(base_url=base, timeout=60) as http:
        response = http.get("/api/v1/orders", params={"starknet_address": account["address"]},
                            headers=bearer(history_session(http, account)))
    response.raise_for_status()
    return int(response.json()["total"])


@pytest.fixture
def base(network: Network) -> str:
    assert network.service is not None
    return network.service.url


@pytest.fixture
def posts(page: Page) -> list[Request]:
    """Every POST the page sends."""
    sent: list[Request] = []
    page.on("request", lambda request: sent.append(request) if request.method == "POST" else None)
    return sent


def open_buy_page(page: Page, base: str, query: str = "") -> None:
    page.goto(f"{base}/{query}")
    expect(page.locator("#rate-line")).to_contain_text("1 BTC =")


def test_estimate_follows_the_amount_at_the_current_rate(page: Page, base: str,
                                                         desktop: Callable[[str], Page]) -> None:
    open_buy_page(page, base)
    rate = httpx.get(f"{base}/api/v1/rate", timeout=30).json()
    amount = page.get_by_label("Amount", exact=True)

    amount.fill("25")
    expect(page.locator("#sats")).to_have_text(f"{expected_sats(rate, '25'):,} sats")
    amount.fill("12.34")
    expect(page.locator("#sats")).to_have_text(f"{expected_sats(rate, '12.34'):,} sats")
    page.get_by_role("button", name="50", exact=True).click()
    expect(amount).to_have_value("50.00")
    expect(page.get_by_role("button", name="50", exact=True)).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#sats")).to_have_text(f"{expected_sats(rate, '50'):,} sats")
    expect(page.locator("#max-vusd")).to_have_text("1,000.00")
    assert rate["quote_lifetime_s"] == 300  # the service's default quote lifetime
    expect(page.locator("#lifetime-line")).to_have_text("You will have 5 minutes to pay the invoice.")

    # Price protection: shown, starts at the service's default, bounded by its maximum, moved by keyboard.
    expect(page.locator("#slippage-summary")).to_have_text(f"{rate['default_max_slippage_bps'] / 100:.2f}\u00a0%")
    page.locator("#slippage-toggle").click()
    slider = page.get_by_label("Largest price move you accept")
    expect(slider).to_have_attribute("max", str(rate["max_allowed_slippage_bps"]))
    slider.focus()
    page.keyboard.press("ArrowRight")
    expect(page.locator("#slippage-summary")).to_have_text("1.10\u00a0%")
    page.keyboard.press("End")
    expect(page.locator("#slippage-value")).to_have_text(f"{rate['max_allowed_slippage_bps'] / 100:.2f}\u00a0%")
    slider.fill(str(rate["default_max_slippage_bps"]))
    expect(page.locator("#slippage-summary")).to_have_text(f"{rate['default_max_slippage_bps'] / 100:.2f}\u00a0%")

    page.get_by_label("Your Starknet address").fill(fresh_address())
    expect(page.locator("#address-msg")).to_have_text("Looks like a Starknet address.")
    assert_good_layout(page)
    assert_contrast(page, TEXT_SELECTORS)
    snap(page, "buy")

    wide = desktop(f"{base}/?amount=25.00&address={fresh_address()}")
    expect(wide.locator("#sats")).to_have_text(f"{expected_sats(rate, '25'):,} sats")
    assert wide.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    snap(wide, "buy")


BAD_ADDRESSES = [
    ("04a1b2", "starts with 0x"),
    ("0x12zz", "“z” cannot be in an address"),
    ("0x0", "zero address cannot receive VUSD"),
    ("0x" + "1" * 65, "a Starknet address has at most 64"),
    (hex(2**251), "too large to be a Starknet address"),
]

BAD_AMOUNTS = [
    ("abc", "Use digits only"),
    ("1.234", "at most 2 decimals"),
    ("0", "above zero"),
    ("0.50", "The smallest order is 1.00 VUSD."),
    ("5000", "The largest order is 1,000.00 VUSD."),
]


def test_bad_input_gets_its_message_and_creates_no_order(page: Page, base: str, network: Network,
                                                         posts: list[Request]) -> None:
    account = network.users[2]  # a devnet account, so the test can read its order count
    good_address = f"0x{int(account['address'], 16):064x}"
    orders_before = orders_total(base, account)
    open_buy_page(page, base)
    amount = page.get_by_label("Amount", exact=True)
    address = page.get_by_label("Your Starknet address")
    buy = page.get_by_role("button", name="Buy VUSD")

    amount.fill("25")
    for text, message in BAD_ADDRESSES:
        address.fill(text)
        expect(page.locator("#address-msg")).to_contain_text(message)  # checked while typing
        expect(address).to_have_attribute("aria-invalid", "true")
        buy.click()
        expect(address).to_be_focused()
        expect(page.locator("#address-msg")).to_contain_text(message)

    address.fill(good_address)
    expect(address).to_have_attribute("aria-invalid", "false")
    for text, message in BAD_AMOUNTS:
        amount.fill(text)
        expect(page.locator("#amount-msg")).to_have_text(re.compile(re.escape(message)))
        buy.click()
        expect(amount).to_be_focused()
        expect(amount).to_have_attribute("aria-invalid", "true")
    amount.fill("")
    buy.click()
    expect(page.locator("#amount-msg")).to_have_text("Enter how much VUSD you want.")
    address.fill("0x12zz")
    assert_good_layout(page)
    assert_contrast(page, TEXT_SELECTORS)
    snap(page, "buy-errors")

    assert page.url == f"{base}/"
    assert posts == [], [request.url for request in posts]
    assert orders_total(base, account) == orders_before


def test_keyboard_order_and_landmarks(page: Page, base: str) -> None:
    open_buy_page(page, base)
    reached: list[str] = []
    for _ in range(25):
        page.keyboard.press("Tab")
        reached.append(page.evaluate("document.activeElement.id || document.activeElement.tagName"))
        if reached[-1] == "buy-button":
            break
    assert reached[0] == "skip-link", reached
    in_form = [name for name in reached if name in ("amount", "address", "slippage-toggle", "buy-button")]
    assert in_form == ["amount", "address", "slippage-toggle", "buy-button"], reached
    expect(page.get_by_role("main")).to_be_visible()
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()


def test_prefilled_from_the_query_string(page: Page, base: str) -> None:
    address = fresh_address()
    open_buy_page(page, base, f"?amount=12.50&address={address}&slippage=200")
    expect(page.get_by_label("Amount", exact=True)).to_have_value("12.50")
    expect(page.get_by_label("Your Starknet address")).to_have_value(address)
    expect(page.locator("#slippage-summary")).to_have_text("2.00\u00a0%")
    expect(page.locator("#history-link")).to_have_attribute("href", f"/history?starknet_address={address}")


def test_pages_send_a_strict_content_security_policy(base: str) -> None:
    for path in ("/", "/history"):
        policy = httpx.get(f"{base}{path}", timeout=30).headers["content-security-policy"]
        assert "script-src 'self'" in policy and "default-src 'self'" in policy
        # Only the checkout carries Bitcoin Connect: relays and its tiles' colours are allowed there alone.
        assert "connect-src 'self';" in policy and "unsafe" not in policy, policy


def test_unknown_order_gets_a_page_not_json(page: Page, base: str) -> None:
    response = page.goto(f"{base}/checkout/ord_doesnotexist")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", name="We cannot find this order")).to_be_visible()
    expect(page.get_by_role("link", name="Buy VUSD", exact=True)).to_have_attribute("href", "/")


def test_an_address_without_an_account_is_warned_about_but_can_still_buy(page: Page, base: str,
                                                                         network: Network) -> None:
    open_buy_page(page, base)
    address = page.get_by_label("Your Starknet address")
    address.fill(fresh_address())  # nothing deployed there: a typo, or an account not deployed yet
    expect(page.locator("#address-msg")).to_contain_text("No Starknet account is deployed at this address yet")
    expect(page.locator("#address-msg")).to_have_class(re.compile("is-warn"))
    expect(address).to_have_attribute("aria-invalid", "false")  # a warning, not a refusal

    address.fill(f"0x{int(network.users[1]['address'], 16):064x}")  # a devnet account
    expect(page.locator("#address-msg")).to_have_text("Looks like a Starknet address.")
    page.wait_for_timeout(1500)  # the account check answers within this; it must not warn
    expect(page.locator("#address-msg")).to_have_text("Looks like a Starknet address.")

    address.fill(fresh_address())
    page.get_by_label("Amount", exact=True).fill("5")
    page.get_by_role("button", name="Buy VUSD").click()
    expect(page).to_have_url(re.compile(r"/checkout/ord_"))
