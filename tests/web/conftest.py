"""Browser fixtures: Debian's headless Chromium driven by Playwright, against the real service of the regtest
network (no fakes). `make browser` installs Chromium; Playwright never downloads a browser here.

Screenshots always go to artifacts/web/ (with a screenshot and a Playwright trace of every failed test);
with VOLTA_UPDATE_SCREENSHOTS=1 the documentation's copies in docs/screenshots/ are rewritten too.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from harness.network import Network
from tests.web.support import ARTIFACTS, DESKTOP, MOBILE, UI_TIMEOUT_MS, PageProblems, safe_name

CHROMIUM = os.environ.get("VOLTA_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-quic", "--disable-sync"]
expect.set_options(timeout=UI_TIMEOUT_MS)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="module")
def browser(network: Network) -> Iterator[Browser]:
    """One Chromium per test module. Module-scoped on purpose: while Playwright's sync API runs, its event loop
    counts as running in this thread, so other suites' asyncio.run() must not share the session with it."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make browser` (apt-get install chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=UI_TIMEOUT_MS)
        yield launched
        launched.close()


def _new_context(browser: Browser, viewport: dict[str, int], mobile: bool) -> BrowserContext:
    context = browser.new_context(viewport=viewport, device_scale_factor=1, is_mobile=mobile, has_touch=mobile,
                                  locale="en-US", timezone_id="UTC", color_scheme="light")
    context.set_default_timeout(UI_TIMEOUT_MS)
    context.set_default_navigation_timeout(UI_TIMEOUT_MS)
    return context


@pytest.fixture
def page_problems() -> PageProblems:
    return PageProblems()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest, page_problems: PageProblems) -> Iterator[Page]:
    """A phone-sized page (360 x 740, touch) in a fresh context; traced, kept as an artifact if the test fails."""
    context = _new_context(browser, MOBILE, mobile=True)
    context.tracing.start(screenshots=True, snapshots=True)
    opened = context.new_page()
    page_problems.watch(opened)
    yield opened
    report = getattr(request.node, "report_call", None)
    failed = report is None or report.failed
    name = safe_name(request.node.name)
    if failed:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        try:
            opened.screenshot(path=ARTIFACTS / f"FAILED-{name}.png", full_page=True)
        finally:
            context.tracing.stop(path=ARTIFACTS / f"FAILED-{name}-trace.zip")
    else:
        context.tracing.stop()
    context.close()
    if not failed:
        assert not page_problems.errors, page_problems.errors


@pytest.fixture
def desktop(browser: Browser, page_problems: PageProblems) -> Iterator[Callable[[str], Page]]:
    """Opens a URL in a 1280 x 800 desktop page (for the desktop screenshots and layout checks)."""
    contexts: list[BrowserContext] = []

    def open_page(url: str) -> Page:
        context = _new_context(browser, DESKTOP, mobile=False)
        contexts.append(context)
        opened = context.new_page()
        page_problems.watch(opened)
        opened.goto(url)
        return opened

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture
def restarted(network: Network) -> Iterator[Callable[[dict[str, str]], str]]:
    """Restarts the service with extra environment; plain again afterwards.

    Tests name this fixture before `page` and `desktop`: fixtures are torn down in reverse order, so their
    pages close before the service restarts (a page still open would log the restart's dropped connection,
    net::ERR_CONNECTION_RESET, as a console error)."""
    assert network.service is not None
    used: list[bool] = []

    def restart(env: dict[str, str]) -> str:
        used.append(True)
        network.service.restart(env)
        return network.service.url

    yield restart
    if used:
        network.service.restart()
