"""What the browser tests share: screenshots (artifacts and docs), layout, tap target and contrast checks,
and reaching the network from a thread that has Playwright's sync API running."""

from __future__ import annotations

import asyncio
import os
import re
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from playwright.sync_api import ConsoleMessage, Locator, Page, expect

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "artifacts" / "web"
DOCS_SCREENSHOTS = REPO_ROOT / "docs" / "screenshots"
MOBILE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 800}
# Generous: other suites share this 2-core machine. Nothing asserts how long anything took.
UI_TIMEOUT_MS = 120_000


class PageProblems:
    """JavaScript errors and console errors (CSP violations included) a page produced; the tests want none."""

    # Chromium logs every 4xx/5xx response as an error, also the ones the page expects and handles.
    EXPECTED = re.compile(r"Failed to load resource: the server responded with a status of (4\d\d|503)")

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.allowed: list[re.Pattern[str]] = [self.EXPECTED]

    def allow(self, pattern: str) -> None:
        """A console error this test causes on purpose."""
        self.allowed.append(re.compile(pattern))

    def watch(self, page: Page) -> None:
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))
        page.on("console", self._console)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error" and not any(pattern.search(message.text) for pattern in self.allowed):
            self.errors.append(f"console: {message.text}")


def safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def snap(page: Page, name: str) -> Path:
    """Screenshot of the whole page as artifacts/web/<name>-<w>x<h>.png; with VOLTA_UPDATE_SCREENSHOTS=1 also a
    small (palette) copy in docs/screenshots/."""
    viewport = page.viewport_size or MOBILE
    filename = f"{name}-{viewport['width']}x{viewport['height']}.png"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / filename
    page.evaluate("document.activeElement && document.activeElement.blur()")  # no focus ring or caret in docs
    page.screenshot(path=path, full_page=True, animations="disabled", caret="hide")
    if os.environ.get("VOLTA_UPDATE_SCREENSHOTS") == "1":
        DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        _save_small(path, DOCS_SCREENSHOTS / filename)
    return path


def _save_small(source: Path, target: Path) -> None:
    try:
        from PIL import Image
    except ImportError:  # Pillow comes with matplotlib (dev extra); without it the PNG is copied as it is
        target.write_bytes(source.read_bytes())
        return
    with Image.open(source) as image:
        image.convert("RGB").quantize(colors=256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE).save(
            target, optimize=True)


# -- checks every page gets ----------------------------------------------------------------------------

LAYOUT_CHECK_JS = (Path(__file__).parent / "layout_check.js").read_text()
CONTRAST_CHECK_JS = (Path(__file__).parent / "contrast_check.js").read_text()


def assert_good_layout(page: Page) -> None:
    problems = page.evaluate(LAYOUT_CHECK_JS)
    assert not problems, problems


def assert_contrast(page: Page, selectors: list[str], minimum: float = 4.5) -> None:
    low = [(selector, ratio) for selector, ratio in page.evaluate(CONTRAST_CHECK_JS, selectors) if ratio < minimum]
    assert not low, f"text below {minimum}:1 contrast: {low}"


# -- the network, from a test that has a browser open --------------------------------------------------


def run_async(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """asyncio.run() in a thread of its own: Playwright's sync API marks this thread's loop as running."""
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["value"] = asyncio.run(coroutine)
        except BaseException as exc:  # handed to the caller below
            result["error"] = exc

    thread = threading.Thread(target=target, name="volta-async")
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result.get("value")




def start_again_prefills(page: Page, restart: Locator, amount: str, address: str) -> None:
    """The "start again" link leads to the buy form with the same amount and address filled in."""
    restart.click()
    page.wait_for_url(re.compile(r"/\?amount=" + re.escape(amount) + "&address="))
    expect(page.get_by_label("Amount", exact=True)).to_have_value(amount)
    expect(page.get_by_label("Your Starknet address")).to_have_value(address)
    page.wait_for_load_state("networkidle")  # the form's own checks (the address's account) have answered
