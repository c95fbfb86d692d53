"""The API docs page (/api/v1/docs) in the real browser, against the running service: Swagger UI, vendored
from its npm package by scripts/vendor_swagger_ui.sh, renders the served OpenAPI document with the pages' strict
Content-Security-Policy, loads nothing from another origin, and logs no error (CSP violations included: the
`page` fixture fails a test on any)."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import Page, Request, expect

from harness.network import Network
from tests.web.support import REPO_ROOT

pytestmark = pytest.mark.regtest

VENDOR = REPO_ROOT / "service" / "web" / "static" / "vendor" / "swagger-ui"
SCRIPT = REPO_ROOT / "scripts" / "vendor_swagger_ui.sh"
STRICT_CSP = {"default-src 'self'", "script-src 'self'", "style-src 'self'", "object-src 'none'",
              "base-uri 'none'", "frame-ancestors 'none'"}


@pytest.fixture(scope="module")
def base(network: Network) -> str:
    assert network.service is not None
    return network.service.url


def test_the_vendored_files_are_the_pinned_version() -> None:
    pinned = re.search(r"^VERSION=([0-9.]+)$", SCRIPT.read_text(), re.MULTILINE)
    assert pinned, f"{SCRIPT} pins no VERSION"
    assert (VENDOR / "VERSION").read_text().strip() == pinned.group(1)
    bundle = (VENDOR / "swagger-ui-bundle.js").read_text()
    assert "SwaggerUIBundle" in bundle and "http://" not in bundle[:200]
    assert (VENDOR / "LICENSE").read_text().lstrip().startswith("Apache License")


def test_the_page_is_served_with_the_strict_policy(base: str) -> None:
    response = httpx.get(f"{base}/api/v1/docs", timeout=30)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    policy = {part.strip() for part in response.headers["content-security-policy"].split(";")}
    assert policy >= STRICT_CSP, policy
    assert "unsafe" not in response.headers["content-security-policy"]
    for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', response.text):
        assert httpx.get(f"{base}{asset}", timeout=30).status_code == 200, asset


def test_swagger_ui_renders_every_operation_of_the_document(page: Page, base: str) -> None:
    requests: list[str] = []

    def record(request: Request) -> None:
        requests.append(request.url)

    page.on("request", record)
    page.goto(f"{base}/api/v1/docs")
    document = httpx.get(f"{base}/api/v1/openapi.json", timeout=30).json()
    operations = [operation["operationId"] for path in document["paths"].values() for operation in path.values()]
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("VOLTA Lightning")
    for operation_id in operations:
        expect(page.locator(f"#operations-default-{operation_id}")).to_have_count(1)
    # a model rendered from the document: the order's status lists the state module's vocabulary
    expect(page.locator("#model-Order")).to_be_visible()
    assert all(url.startswith(base) for url in requests), [url for url in requests if not url.startswith(base)]
