"""A merchant shows the checkout in an iframe on a page of their own: Chromium shows it when the page's origin is
one the operator allows (VOLTA_FRAME_ANCESTORS, the CSP's frame-ancestors) and blocks it otherwise, and by
default (no origin allowed). The merchant's pages are served from loopback ports of their own: two origins,
http://127.0.0.1:<port>, one allowed and one not."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from playwright.sync_api import ConsoleMessage, Page, expect

from harness.network import Network
from tests.web.support import PageProblems

pytestmark = pytest.mark.regtest

# Chromium's console message when frame-ancestors forbids the framing page, e.g. "Framing 'http://127.0.0.1:
# 29100/' violates the following Content Security Policy directive: "frame-ancestors 'none'". The request has
# been blocked."
REFUSED = "violates the following Content Security Policy directive: \"frame-ancestors"


class MerchantSite:
    """A shop's page on its own loopback origin, with the checkout of one order in an iframe."""

    def __init__(self) -> None:
        self.checkout_url = ""
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>A shop</title></head>'
                        f'<body><h1>Pay for your order</h1><iframe id="checkout" title="VOLTA checkout" '
                        f'src="{site.checkout_url}" width="400" height="700"></iframe></body></html>').encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # no request log on the test's output
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, name=f"shop {self.origin}", daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def shops() -> Iterator[tuple[MerchantSite, MerchantSite]]:
    allowed, other = MerchantSite(), MerchantSite()
    yield allowed, other
    allowed.close()
    other.close()


def new_checkout(base: str, network: Network) -> str:
    order = httpx.post(f"{base}/api/v1/orders", json={"starknet_address": network.users[1]["address"],
                                                       "vusd_amount": "3.00"}, timeout=30)
    assert order.status_code == 201, order.text
    return f"{base}/checkout/{order.json()['order_id']}"


def open_shop(page: Page, shop: MerchantSite, checkout_url: str) -> list[str]:
    """Opens the shop's page; returns the console messages of the page and its frames, as they come."""
    shop.checkout_url = checkout_url
    messages: list[str] = []
    page.on("console", lambda message: messages.append(message.text) if isinstance(message, ConsoleMessage) else None)
    page.goto(f"{shop.origin}/")
    expect(page.get_by_role("heading", name="Pay for your order")).to_be_visible()
    return messages


def checkout_frame_url(page: Page) -> str:
    frames = [frame for frame in page.frames if frame is not page.main_frame]
    assert len(frames) == 1, [frame.url for frame in frames]
    return frames[0].url


def assert_blocked(page: Page, messages: list[str], checkout_url: str) -> None:
    """Chromium replaced the frame's document with its error page and said why on the console. Polled from here:
    the shop's page cannot look into a frame of another origin."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (refusals(messages) and checkout_frame_url(page).startswith("chrome")):
        page.wait_for_timeout(100)
    assert checkout_frame_url(page).startswith("chrome-error://"), checkout_frame_url(page)
    refused = refusals(messages)
    service_origin = checkout_url.split("/checkout/")[0]
    assert refused and refused[0].startswith(f"Framing '{service_origin}/"), messages
    expect(page.frame_locator("#checkout").locator("#checkout")).to_have_count(0)


def refusals(messages: list[str]) -> list[str]:
    return [text for text in messages if REFUSED in text]


def test_the_default_lets_no_site_frame_the_checkout(network: Network, page: Page, page_problems: PageProblems,
                                                     shops: tuple[MerchantSite, MerchantSite]) -> None:
    assert network.service is not None
    page_problems.allow(REFUSED)
    checkout_url = new_checkout(network.service.url, network)
    policy = httpx.get(checkout_url, timeout=30).headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy, policy
    shop, _ = shops
    assert_blocked(page, open_shop(page, shop, checkout_url), checkout_url)


def test_an_allowed_origin_shows_the_checkout_and_another_is_refused(
        restarted: Callable[[dict[str, str]], str], network: Network, page: Page, page_problems: PageProblems,
        shops: tuple[MerchantSite, MerchantSite]) -> None:
    allowed, other = shops
    base = restarted({"VOLTA_FRAME_ANCESTORS": allowed.origin})
    checkout_url = new_checkout(base, network)
    policy = httpx.get(checkout_url, timeout=30).headers["content-security-policy"]
    assert f"frame-ancestors {allowed.origin}" in policy, policy

    messages = open_shop(page, allowed, checkout_url)
    inside = page.frame_locator("#checkout")
    expect(inside.locator("#checkout")).to_be_visible()  # the checkout page itself, live inside the shop's page
    expect(inside.locator("#checkout")).to_have_attribute("data-status", "awaiting_payment")
    expect(inside.get_by_role("img").first).to_be_visible()  # the invoice's QR code
    assert checkout_frame_url(page) == checkout_url
    assert not refusals(messages), messages

    page_problems.allow(REFUSED)
    elsewhere = page.context.new_page()
    assert_blocked(elsewhere, open_shop(elsewhere, other, checkout_url), checkout_url)
    elsewhere.close()
