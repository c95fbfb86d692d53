"""The pages in the reader's language, in a real browser against the real network: German when the browser asks
for it (Accept-Language), with German number formats on the server and in the scripts; the switch on every page
changes the language and it sticks (the `lang` cookie); English stays the default; the checkout's live status
(Server-Sent Events) arrives in German too."""

from __future__ import annotations

import math
import re
import secrets
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from harness.network import Network
from harness.util import Timeouts
from service.domain.pricing import VUSD_DECIMALS
from service.starknet.client import StarknetClient
from tests.web.support import MOBILE, UI_TIMEOUT_MS, PageProblems, assert_contrast, assert_good_layout, snap

pytestmark = pytest.mark.regtest

VUSD = 10**VUSD_DECIMALS
TEXT_SELECTORS = ["h1", "h2", "label", ".help", ".msg", ".estimate-sats", ".estimate-rate", ".btn", ".topbar a",
                  ".footer p", ".language", "dt", "dd", ".status-detail", ".countdown"]


def german(number: int | Decimal, decimals: int = 0) -> str:
    """A number as German readers write it: 25773 -> "25.773", 1000.5 -> "1.000,50"."""
    english = f"{number:,.{decimals}f}"
    return english.replace(",", "\0").replace(".", ",").replace("\0", ".")


def fresh_address() -> str:
    return f"0x{secrets.randbits(248) | 1:064x}"


def expected_sats(rate: dict[str, Any], vusd: str) -> int:
    effective = Decimal(str(rate["btc_usd"])) * (1 - Decimal(str(rate["spread_bps"])) / 10_000)
    return math.ceil(Decimal(vusd) / effective * 100_000_000)


@pytest.fixture
def base(network: Network) -> str:
    assert network.service is not None
    return network.service.url


@pytest.fixture
def reader(browser: Browser, page_problems: PageProblems) -> Iterator[Callable[[str], Page]]:
    """A phone-sized page whose browser speaks `locale` (Chromium sends it as Accept-Language), as conftest's
    `page` is but with the language chosen by the test."""
    contexts: list[BrowserContext] = []

    def open_reader(locale: str) -> Page:
        context = browser.new_context(viewport=MOBILE, device_scale_factor=1, is_mobile=True, has_touch=True,
                                      locale=locale, timezone_id="UTC", color_scheme="light")
        context.set_default_timeout(UI_TIMEOUT_MS)
        context.set_default_navigation_timeout(UI_TIMEOUT_MS)
        contexts.append(context)
        opened = context.new_page()
        page_problems.watch(opened)
        return opened

    yield open_reader
    for context in contexts:
        context.close()
    assert not page_problems.errors, page_problems.errors


@pytest.fixture
def wallet() -> Iterator[ThreadPoolExecutor]:
    """Pays in the background, as the phone next to the screen would."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="phone-wallet")
    yield pool
    pool.shutdown(wait=True)


def test_german_buy_page_in_german_numbers(reader: Callable[[str], Page], base: str) -> None:
    page = reader("de-DE")
    page.goto(f"{base}/")
    expect(page.locator("html")).to_have_attribute("lang", "de")
    expect(page.get_by_role("heading", level=1)).to_have_text("VUSD mit Lightning kaufen")
    expect(page.locator("#rate-line")).to_contain_text("Kurs abgefragt um")
    rate = httpx.get(f"{base}/api/v1/rate", timeout=30).json()
    assert rate["quote_lifetime_s"] == 300  # the service's default quote lifetime

    # The scripts' numbers: grouping with ".", decimal comma; their words from the server's German catalogue.
    amount = page.get_by_label("Betrag", exact=True)
    amount.fill("25")
    sats = expected_sats(rate, "25")
    assert sats >= 1000  # so the grouping shows
    expect(page.locator("#sats")).to_have_text(f"{german(sats)} sats")
    amount.fill("12,34")  # German readers type a decimal comma
    expect(page.locator("#sats")).to_have_text(f"{german(expected_sats(rate, '12.34'))} sats")
    amount.fill("1.000")  # and a dot between thousands: one thousand, not one with three decimals
    expect(page.locator("#sats")).to_have_text(f"{german(expected_sats(rate, '1000'))} sats")
    expect(page.locator("#amount-msg")).to_have_text("")
    page.get_by_role("button", name="50", exact=True).click()
    expect(amount).to_have_value("50,00")
    expect(page.locator("#max-vusd")).to_have_text("1.000,00")
    expect(page.locator("#rate-line")).to_contain_text(f"1 BTC = {german(Decimal(rate['btc_usd']), 2)} USD")
    expect(page.locator("#slippage-summary")).to_have_text("1,00\u00a0%")
    expect(page.locator("#lifetime-line")).to_have_text("Sie haben 5 Minuten Zeit, die Rechnung zu bezahlen.")
    amount.fill("5000")
    expect(page.locator("#amount-msg")).to_have_text("Die größte Bestellung ist 1.000,00 VUSD.")
    page.get_by_label("Ihre Starknet-Adresse").fill("0xg")
    expect(page.locator("#address-msg")).to_have_text(
        "„g“ kann nicht in einer Adresse stehen: Nach 0x sind nur 0\u20139 und a\u2013f erlaubt.")
    expect(page.get_by_role("button", name="VUSD kaufen")).to_be_visible()
    assert_good_layout(page)  # longer German words still fit 360 px
    assert_contrast(page, TEXT_SELECTORS)
    snap(page, "buy-de")


def test_switch_changes_the_language_and_it_sticks(reader: Callable[[str], Page], base: str) -> None:
    page = reader("en-US")
    page.goto(f"{base}/?amount=25")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    switch = page.get_by_role("form", name="Language")
    expect(switch.get_by_role("button", name="English")).to_have_attribute("aria-current", "true")

    # With the keyboard: the switch's buttons are ordinary buttons in the tab order.
    german_button = switch.get_by_role("button", name="Deutsch")
    german_button.focus()
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/?amount=25")  # back on the same page, query and all
    expect(page.locator("html")).to_have_attribute("lang", "de")
    expect(page.get_by_role("heading", level=1)).to_have_text("VUSD mit Lightning kaufen")
    expect(page.get_by_label("Betrag", exact=True)).to_have_value("25")
    expect(page.get_by_role("form", name="Sprache").get_by_role("button", name="Deutsch")).to_have_attribute(
        "aria-current", "true")
    cookies = {cookie["name"]: cookie for cookie in page.context.cookies(base)}
    assert cookies["lang"]["value"] == "de" and cookies["lang"]["httpOnly"] and cookies["lang"]["sameSite"] == "Lax"

    # It sticks: another page, and the same page again, are German although the browser asks for English.
    page.get_by_role("link", name="Käufe", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Ihre Käufe")
    page.goto(f"{base}/checkout/ord_{'0' * 32}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Wir finden diese Bestellung nicht")
    page.goto(f"{base}/")
    expect(page.locator("html")).to_have_attribute("lang", "de")

    page.get_by_role("form", name="Sprache").get_by_role("button", name="English").click()
    page.wait_for_url(f"{base}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Buy VUSD with Lightning")
    expect(page.locator("#lifetime-line")).to_have_text("You will have 5 minutes to pay the invoice.")


@pytest.mark.parametrize("locale", ["en-US", "fr-FR"])
def test_english_is_the_default(reader: Callable[[str], Page], base: str, locale: str) -> None:
    page = reader(locale)
    page.goto(f"{base}/")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("heading", level=1)).to_have_text("Buy VUSD with Lightning")
    expect(page.locator("#max-vusd")).to_have_text("1,000.00")
    expect(page.locator("#slippage-summary")).to_have_text("1.00\u00a0%")
    amount = page.get_by_label("Amount", exact=True)
    amount.fill("1,000")  # an English reader's comma groups thousands
    expect(page.locator("#sats")).not_to_have_text("\u2013")  # the page's dash for no estimate
    expect(page.locator("#amount-msg")).to_have_text("")
    amount.fill("1.000")  # and a dot is the decimal point: three decimals are refused
    expect(page.locator("#amount-msg")).to_have_text("VUSD is sold in whole cents: use at most 2 decimals.")


def test_the_switch_only_leads_back_to_this_site(base: str) -> None:
    """`next` is a path on this site or nothing: the switch is no open redirect."""
    with httpx.Client(base_url=base, timeout=30, follow_redirects=False) as http:
        for target in ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)", ""]:
            answer = http.post("/language", data={"lang": "de", "next": target})
            assert answer.status_code == 303 and answer.headers["location"] == "/", (target, answer.headers)
        answer = http.post("/language", data={"lang": "de", "next": "/history?starknet_address=0x1"})
        assert answer.headers["location"] == "/history?starknet_address=0x1"
        assert answer.cookies.get("lang") == "de"
        ignored = http.post("/language", data={"lang": "xx", "next": "/"})
        assert "lang=" not in ignored.headers.get("set-cookie", "")
        page = http.get("/", headers={"Accept-Language": "de"})
        assert {"Accept-Language", "Cookie"} <= {part.strip() for part in page.headers["vary"].split(",")}


def test_german_checkout_and_its_live_status(reader: Callable[[str], Page], base: str, network: Network,
                                            starknet: StarknetClient, wallet: ThreadPoolExecutor) -> None:
    address = fresh_address()
    created = httpx.post(f"{base}/api/v1/orders", json={"starknet_address": address, "vusd_amount": "25"},
                         timeout=60).raise_for_status().json()
    page = reader("de-DE")
    streams: list[str] = []
    page.on("request", lambda request: streams.append(request.url) if request.url.endswith("/events") else None)
    page.goto(created["checkout_url"])
    expect(page.locator("html")).to_have_attribute("lang", "de")
    expect(page.get_by_role("heading", level=1)).to_have_text("25,00 VUSD kaufen")
    expect(page.locator("#pay-sats")).to_have_text(f"{german(created['amount_msat'] // 1000)} sats")
    expect(page.locator("#status-headline")).to_have_text("Wir warten auf Ihre Zahlung")
    expect(page.locator("#countdown")).to_have_text(re.compile(r"^Läuft ab in \d+:\d\d$"))
    rate_row = page.locator(".details div", has=page.get_by_text("Kurs", exact=True)).locator("dd")
    expect(rate_row).to_have_text(re.compile(r"^1 BTC = \d{1,3}(\.\d{3})*,\d\d USD, Gebühr \d+,\d\d\u00a0%$"))
    expect(page.get_by_role("button", name="Rechnung kopieren")).to_be_visible()
    assert_good_layout(page)
    assert_contrast(page, TEXT_SELECTORS)
    snap(page, "checkout-de")
    page.evaluate("window.__voltaNotReloaded = true")

    vusd_before = starknet.vusd_balance(int(address, 16))
    payment = wallet.submit(network.payer.client().pay, created["bolt11"], int(Timeouts.PAYMENT))

    # The stream carries the order's state; the words for it are the German ones the page was given.
    expect(page.locator("#status-headline")).to_have_text("Fertig: 25,00 VUSD gehören Ihnen")
    expect(page.locator("#status-detail")).to_have_text("Die VUSD sind auf Ihrer Starknet-Adresse.")
    expect(page.locator("#announcer")).to_contain_text("Fertig: 25,00 VUSD gehören Ihnen")
    expect(page.locator("#steps .step-label")).to_have_text(["Bezahlen", "Erhalten", "Prägen", "Fertig"])
    assert page.evaluate("window.__voltaNotReloaded === true"), "the page reloaded"
    assert streams, "the page never opened the order's event stream"
    # Judged from outside: the payer's lnd paid, and the vault minted 25 VUSD to the address.
    assert payment.result(timeout=Timeouts.PAYMENT)["status"] == "SUCCEEDED"
    assert starknet.vusd_balance(int(address, 16)) - vusd_before == 25 * VUSD
    expect(page.locator("#new-balance")).to_have_text("Ihr VUSD-Guthaben beträgt jetzt 25,00 VUSD.")
    assert page.title().startswith("Fertig · 25,00 VUSD")
    snap(page, "checkout-done-de")
