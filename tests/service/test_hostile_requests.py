"""Hostile request bodies against the running service, a separate process: each gets a JSON error (400 or
413), and after each one the process is still alive and still answering.

Before the bounds, a 1 MB body nested 100,000 levels deep ended the process with SIGSEGV: the JSON decoder
recursed once per level (starknet-py's py_ecc raises Python's recursion limit to 100,000), past the end of the
request thread's C stack, and the settlement worker died with it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from harness.network import Network
from harness.service_process import VoltaService
from tests.service.readme_signing import notice_headers

pytestmark = pytest.mark.regtest

ONE_MB = 1_000_000


def nested_objects(depth: int, size: int = 0) -> bytes:
    """`{"a":{"a":…1…}}`, `depth` levels, padded with inner whitespace to `size` bytes."""
    body = '{"a":' * depth + "1" + "}" * depth
    return (body[: len(body) - depth] + " " * max(0, size - len(body)) + "}" * depth).encode()


def nested_arrays(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def chunks(body: bytes, size: int = 16_384) -> Iterator[bytes]:
    """Sent without Content-Length (Transfer-Encoding: chunked), so only reading can find the size."""
    for start in range(0, len(body), size):
        yield body[start:start + size]


@pytest.fixture
def service(network: Network) -> Iterator[VoltaService]:
    """The network's service; started again afterwards if a request killed it, so later tests still have one."""
    assert network.service is not None
    yield network.service
    if not network.service.is_running():
        network.service.restart()


def assert_alive_and_answering(service: VoltaService, after: str) -> None:
    assert service.is_running(), f"the service process died after {after}:\n{service.log_tail()}"
    health = httpx.get(f"{service.url}/api/v1/health", timeout=30)
    assert health.status_code in (200, 503) and "components" in health.json(), health.text
    assert httpx.get(f"{service.url}/api/v1/openapi.json", timeout=30).status_code == 200


def assert_json_error(response: httpx.Response, statuses: set[int]) -> dict[str, str]:
    assert response.status_code in statuses, (response.status_code, response.text[:300])
    body = response.json()
    assert set(body) == {"error", "message", "hint"} and all(body.values()), body
    return body


def post(service: VoltaService, path: str, body: bytes | Iterator[bytes],
         headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(f"{service.url}{path}", content=body, timeout=60,
                      headers=headers or {"Content-Type": "application/json"})


def test_a_deeply_nested_megabyte_order_is_refused_and_the_service_lives(service: VoltaService) -> None:
    body = nested_objects(100_000, size=ONE_MB)
    assert len(body) == ONE_MB
    response = post(service, "/api/v1/orders", body)
    assert_json_error(response, {413})
    assert_alive_and_answering(service, "a 1 MB order body nested 100,000 deep")


# In UTF-16 (which json.loads detects), "∀" is the bytes 00 22: a scanner reading bytes would see a quote there.
HIDDEN_IN_UTF16 = ('["\u2200",' + "[" * 10_000 + "]" * 10_000 + "]").encode("utf-16-le")


@pytest.mark.parametrize("body", [nested_objects(10_000), nested_arrays(30_000), nested_arrays(40), HIDDEN_IN_UTF16],
                         ids=["objects-10000-deep", "arrays-30000-deep", "arrays-40-deep", "utf16-10000-deep"])
def test_deep_nesting_within_the_size_bound_is_refused_before_parsing(service: VoltaService, body: bytes) -> None:
    assert len(body) < 64 * 1024
    error = assert_json_error(post(service, "/api/v1/orders", body), {400})
    assert error["error"] == "json_too_deep"
    assert_alive_and_answering(service, f"an order body of {len(body)} bytes nested deep")


def test_a_deeply_nested_but_correctly_signed_payment_notice_is_refused(service: VoltaService) -> None:
    body = nested_arrays(30_000)
    response = post(service, "/api/v1/webhooks/lightning", body, notice_headers(service.inbound_webhook_secret, body))
    assert assert_json_error(response, {400})["error"] == "json_too_deep"
    assert_alive_and_answering(service, "a signed payment notice nested 30,000 deep")


@pytest.mark.parametrize("path", ["/api/v1/orders", "/api/v1/webhooks/lightning"])
def test_a_large_flat_body_is_refused_with_413(service: VoltaService, path: str) -> None:
    body = json.dumps({"starknet_address": "0x1", "vusd_amount": "5.00", "padding": "x" * ONE_MB}).encode()
    assert_json_error(post(service, path, body), {413})
    assert_alive_and_answering(service, f"a 1 MB flat body to {path}")


def test_a_large_chunked_body_without_content_length_is_refused_with_413(service: VoltaService) -> None:
    body = nested_objects(100_000, size=4 * ONE_MB)
    assert_json_error(post(service, "/api/v1/orders", chunks(body)), {413})
    assert_alive_and_answering(service, "a 4 MB chunked order body nested 100,000 deep")


def test_an_ordinary_order_body_still_works_after_the_hostile_ones(service: VoltaService, network: Network) -> None:
    response = httpx.post(f"{service.url}/api/v1/orders", timeout=30,
                          json={"starknet_address": network.users[0]["address"], "vusd_amount": "2.00"})
    assert response.status_code == 201, response.text


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_the_size_bound_is_64_kib_exactly(service: VoltaService, network: Network, chunked: bool) -> None:
    order = json.dumps({"starknet_address": network.users[0]["address"], "vusd_amount": "2.00"})
    at_the_bound = (order[:-1] + " " * (64 * 1024 - len(order)) + "}").encode()
    assert len(at_the_bound) == 64 * 1024
    one_more = at_the_bound[:-1] + b" }"
    accepted = post(service, "/api/v1/orders", chunks(at_the_bound) if chunked else at_the_bound)
    assert accepted.status_code == 201, accepted.text
    assert_json_error(post(service, "/api/v1/orders", chunks(one_more) if chunked else one_more), {413})
    assert_alive_and_answering(service, f"a body one byte over the bound ({'chunked' if chunked else 'sized'})")
