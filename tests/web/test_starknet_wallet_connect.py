"""The Starknet wallet on the buy and done pages: the buy page fills the address from the wallet (an injected
provider backed by a devnet account) and buys; the done page links the mint in the explorer the operator set
(`explorer_tx_url`) and asks the wallet to watch VUSD. Without a wallet the wallet buttons stay hidden; a
declined request says so."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from harness.network import Network
from harness.purchase import Buyer
from harness.util import Timeouts
from service.config import SettingsError, load_settings
from service.domain.pricing import VUSD_DECIMALS
from service.starknet.client import StarknetClient
from tests.web.starknet_wallet import inject_starknet_wallet
from tests.web.support import assert_contrast, assert_good_layout, snap

pytestmark = pytest.mark.regtest

EXPLORER = "https://voyager.online/tx/{tx_hash}"
TEXT_SELECTORS = ["h1", "h2", "label", ".btn", ".msg", ".status-detail", ".hash"]


@pytest.fixture(scope="module")
def phone() -> Iterator[ThreadPoolExecutor]:
    """Pays in the background, as the Lightning wallet next to the screen would."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="phone-wallet")
    yield pool
    pool.shutdown(wait=True)


@pytest.mark.parametrize("value", ["javascript:alert(1)//{tx_hash}", "https://voyager.online/tx/",
                                   "voyager.online/tx/{tx_hash}", "https://voyager.online/tx/ {tx_hash}"])
def test_the_explorer_setting_takes_only_a_web_address_with_the_hash(value: str) -> None:
    with pytest.raises(SettingsError, match="explorer_tx_url"):
        load_settings(environ={"VOLTA_EXPLORER_TX_URL": value})
    assert load_settings(environ={"VOLTA_EXPLORER_TX_URL": EXPLORER}).explorer_tx_url == EXPLORER
    assert load_settings(environ={}).explorer_tx_url == ""


def watch_requests(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [call for call in requests if call.get("type") == "wallet_watchAsset"]


def assert_watches_vusd(call: dict[str, Any], starknet: StarknetClient) -> None:
    options = call["params"]["options"]
    assert call["params"]["type"] == "ERC20", call
    assert int(options["address"], 16) == starknet.config.vusd_address, call
    assert options["symbol"] == "VUSD" and options["decimals"] == VUSD_DECIMALS == 18, call


def test_the_wallet_fills_the_address_and_the_done_page_links_the_mint(
        restarted: Callable[[dict[str, str]], str], page: Page, desktop: Callable[[str], Page], network: Network,
        starknet: StarknetClient, phone: ThreadPoolExecutor) -> None:
    base = restarted({"VOLTA_EXPLORER_TX_URL": EXPLORER})
    account = network.users[0]
    requests: list[dict[str, Any]] = []
    inject_starknet_wallet(page, account, declines=["enable"], requests=requests)
    vusd_before = starknet.vusd_balance(int(account["address"], 16))

    page.goto(f"{base}/")
    expect(page.locator("#rate-line")).to_contain_text("1 BTC =")
    page.get_by_label("Amount", exact=True).fill("3")
    use_wallet = page.get_by_role("button", name="Use my Starknet wallet")
    expect(use_wallet).to_be_visible()
    use_wallet.click()  # the first answer is a refusal, as when the person taps "reject"
    expect(page.locator("#wallet-msg")).to_have_text(
        "You did not connect your wallet, so the address was not filled in. Type it, or try again.")
    expect(page.get_by_label("Your Starknet address")).to_have_value("")
    use_wallet.click()
    expect(page.get_by_label("Your Starknet address")).to_have_value(account["address"])
    expect(page.locator("#wallet-msg")).to_have_text("Filled in from your wallet.")
    expect(page.locator("#address-msg")).to_have_text("Looks like a Starknet address.")
    page.wait_for_load_state("networkidle")
    assert_good_layout(page)
    assert_contrast(page, TEXT_SELECTORS)
    snap(page, "buy-starknet-wallet")

    page.get_by_role("button", name="Buy VUSD").click()
    page.wait_for_url(re.compile(r"/checkout/ord_[0-9a-f]+$"))
    order_id = page.url.rsplit("/", 1)[1]
    bolt11 = page.get_by_role("button", name="Copy invoice").get_attribute("data-bolt11")
    assert bolt11
    payment = phone.submit(network.payer.client().pay, bolt11, int(Timeouts.PAYMENT))

    expect(page.locator("#status-headline")).to_have_text("Done: 3.00 VUSD is yours")
    assert payment.result(timeout=Timeouts.PAYMENT)["status"] == "SUCCEEDED"
    order = httpx.get(f"{base}/api/v1/orders/{order_id}", timeout=30).raise_for_status().json()
    assert int(order["starknet_address"], 16) == int(account["address"], 16)
    assert starknet.vusd_balance(int(account["address"], 16)) - vusd_before == 3 * 10**VUSD_DECIMALS
    explorer_url = EXPLORER.replace("{tx_hash}", order["mint_tx_hash"])
    # The page reached "done" by itself: the link is built in the page from the setting.
    expect(page.get_by_role("link", name="See it in the explorer")).to_have_attribute("href", explorer_url)
    expect(page.locator("#tx-hash")).to_have_text(order["mint_tx_hash"])

    add = page.get_by_role("button", name="Add VUSD to my wallet")
    expect(add).to_be_visible()
    add.click()
    expect(page.locator("#watch-msg")).to_have_text("VUSD is in your wallet's token list.")
    watched = watch_requests(requests)
    assert len(watched) == 1, requests
    assert_watches_vusd(watched[0], starknet)
    assert_good_layout(page)
    assert_contrast(page, TEXT_SELECTORS)
    snap(page, "checkout-done-starknet-wallet")

    # The same page from the server, in a browser without a wallet: the link is there, "add VUSD" is not.
    wide = desktop(page.url)
    expect(wide.get_by_role("link", name="See it in the explorer")).to_have_attribute("href", explorer_url)
    expect(wide.locator("#tx-hash")).to_have_text(order["mint_tx_hash"])
    wide.wait_for_timeout(1000)  # past the page's second look for a wallet that injects itself late
    expect(wide.get_by_role("button", name="Add VUSD to my wallet")).to_be_hidden()
    assert_good_layout(wide)


def test_without_an_explorer_or_a_wallet_the_page_shows_the_hash(
        page: Page, desktop: Callable[[str], Page], network: Network, buyer: Buyer,
        starknet: StarknetClient) -> None:
    assert network.service is not None
    base = network.service.url
    account = network.users[0]
    order = buyer.buy(account["address"], "2.00").order
    assert order["status"] == "completed"
    requests: list[dict[str, Any]] = []
    inject_starknet_wallet(page, account, declines=["wallet_watchAsset"], requests=requests)

    page.goto(f"{base}/checkout/{order['order_id']}")
    expect(page.locator("#tx-hash")).to_have_text(order["mint_tx_hash"])
    expect(page.locator("#tx-link")).to_have_count(0)  # no explorer set: no link, only the hash
    add = page.get_by_role("button", name="Add VUSD to my wallet")
    add.click()  # the first answer is a refusal
    expect(page.locator("#watch-msg")).to_have_text(
        "You declined adding VUSD in your wallet. Your VUSD is at your address either way.")
    add.click()
    expect(page.locator("#watch-msg")).to_have_text("VUSD is in your wallet's token list.")
    watched = watch_requests(requests)
    assert len(watched) == 2, requests
    for call in watched:
        assert_watches_vusd(call, starknet)
    assert_good_layout(page)
    assert_contrast(page, TEXT_SELECTORS)

    # No wallet in the browser: neither page offers one.
    buy = desktop(f"{base}/")
    expect(buy.locator("#rate-line")).to_contain_text("1 BTC =")
    buy.wait_for_timeout(1000)  # past the page's second look for a wallet that injects itself late
    expect(buy.get_by_role("button", name="Use my Starknet wallet")).to_be_hidden()
    done = desktop(f"{base}/checkout/{order['order_id']}")
    expect(done.locator("#tx-hash")).to_have_text(order["mint_tx_hash"])
    done.wait_for_timeout(1000)
    expect(done.get_by_role("button", name="Add VUSD to my wallet")).to_be_hidden()
    expect(done.locator("#tx-link")).to_have_count(0)
