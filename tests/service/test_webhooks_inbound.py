"""Payment notices from a hosted node (POST /api/v1/webhooks/lightning) against the running service, signed in
the test as the README says (tests/service/readme_signing.py): a valid one is accepted once, then ignored as a
duplicate; a tampered body, another secret, an old or future timestamp and every malformed header get 401 with
the JSON error body, never a 500, and change nothing."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator

import httpx
import pytest

from harness.network import Network
from harness.service_process import VoltaService
from tests.service.readme_signing import notice_headers, readme_signature

pytestmark = pytest.mark.regtest

NOTICES = "/api/v1/webhooks/lightning"


@pytest.fixture(scope="module")
def service(network: Network) -> VoltaService:
    assert network.service is not None
    return network.service


@pytest.fixture(scope="module")
def order(service: VoltaService, network: Network) -> dict[str, str]:
    """An order nobody pays: a notice about it may only make the service ask its node again."""
    response = httpx.post(f"{service.url}/api/v1/orders", timeout=30,
                          json={"starknet_address": network.users[0]["address"], "vusd_amount": "3.00"})
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture
def http(service: VoltaService) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=service.url, timeout=30) as client:
        yield client


def notice(order: dict[str, str]) -> bytes:
    return json.dumps({"payment_hash": order["payment_hash"]}).encode()


def assert_refused(response: httpx.Response, status: int, codes: set[str]) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "message", "hint"} and body["error"] in codes and body["hint"], body


def assert_still_awaiting_payment(http: httpx.Client, order: dict[str, str]) -> None:
    time.sleep(0.5)  # a wrongly accepted notice would have the worker ask lnd and move the order
    assert http.get(f"/api/v1/orders/{order['order_id']}").json()["status"] == "awaiting_payment"


def test_a_valid_notice_is_accepted_once_and_a_repeated_delivery_id_is_ignored(
    service: VoltaService, http: httpx.Client, order: dict[str, str],
) -> None:
    body = notice(order)
    headers = notice_headers(service.inbound_webhook_secret, body)
    first = http.post(NOTICES, content=body, headers=headers)
    assert first.status_code == 202, first.text
    assert first.json()["order_id"] == order["order_id"]
    again = http.post(NOTICES, content=body, headers=headers)
    assert (again.status_code, again.json()["status"]) == (200, "duplicate")
    resigned = http.post(NOTICES, content=body, headers=notice_headers(
        service.inbound_webhook_secret, body, int(time.time()) - 1, delivery_id=headers["Volta-Delivery"]))
    assert (resigned.status_code, resigned.json()["status"]) == (200, "duplicate"), "the id counts, not the signature"
    assert_still_awaiting_payment(http, order)


def test_a_tampered_body_is_refused(service: VoltaService, http: httpx.Client, order: dict[str, str]) -> None:
    signed = notice(order)
    tampered = signed.replace(order["payment_hash"][:8].encode(), b"00000000")
    assert tampered != signed
    response = http.post(NOTICES, content=tampered, headers=notice_headers(service.inbound_webhook_secret, signed))
    assert_refused(response, 401, {"signature_invalid"})


def test_a_notice_signed_with_another_secret_is_refused(http: httpx.Client, order: dict[str, str]) -> None:
    body = notice(order)
    response = http.post(NOTICES, content=body, headers=notice_headers("whsec_not_ours", body))
    assert_refused(response, 401, {"signature_invalid"})
    assert_still_awaiting_payment(http, order)


@pytest.mark.parametrize("offset_s", [-600, 600], ids=["ten-minutes-old", "ten-minutes-ahead"])
def test_a_notice_signed_outside_the_five_minute_tolerance_is_refused(
    service: VoltaService, http: httpx.Client, order: dict[str, str], offset_s: int,
) -> None:
    body = notice(order)
    headers = notice_headers(service.inbound_webhook_secret, body, int(time.time()) + offset_s)
    assert_refused(http.post(NOTICES, content=body, headers=headers), 401, {"signature_expired"})


def malformed_headers(secret: str, body: bytes) -> dict[str, bytes]:
    now = int(time.time())
    valid_v1 = readme_signature(secret, body, now).split("v1=", 1)[1]
    return {
        "empty": b"",
        "no-fields": b"garbage",
        "no-timestamp": f"v1={valid_v1}".encode(),
        "no-signature": f"t={now}".encode(),
        "timestamp-not-a-number": f"t=yesterday,v1={valid_v1}".encode(),
        "timestamp-400-digits": f"t={'9' * 400},v1={valid_v1}".encode(),
        "timestamp-negative-400-digits": f"t=-{'9' * 400},v1={valid_v1}".encode(),
        "signature-not-ascii": f"t={now},v1=é".encode(),
        "signature-not-ascii-latin1": f"t={now},v1=".encode() + "é".encode("latin-1"),
        "signature-not-hex-64": f"t={now},v1={'z' * 64}".encode(),
        "signature-too-short": f"t={now},v1={valid_v1[:10]}".encode(),
        "huge-header": f"t={now},".encode() + b"v1=" + b"ab" * 4000,
    }


@pytest.mark.parametrize("case", list(malformed_headers("x", b"")))
def test_a_malformed_signature_header_is_refused_with_401(
    service: VoltaService, http: httpx.Client, order: dict[str, str], case: str,
) -> None:
    body = notice(order)
    header = malformed_headers(service.inbound_webhook_secret, body)[case]
    response = http.post(NOTICES, content=body, headers={
        "Content-Type": "application/json", "Volta-Signature": header, "Volta-Delivery": f"dlv_{secrets.token_hex(8)}"})
    assert_refused(response, 401, {"signature_malformed", "signature_invalid"})
    assert service.is_running()


@pytest.mark.parametrize("delivery_id", ["", "x" * 256], ids=["missing", "too-long"])
def test_a_valid_notice_without_a_usable_delivery_id_is_refused_with_400(
    service: VoltaService, http: httpx.Client, order: dict[str, str], delivery_id: str,
) -> None:
    body = notice(order)
    headers = notice_headers(service.inbound_webhook_secret, body) | {"Volta-Delivery": delivery_id}
    assert_refused(http.post(NOTICES, content=body, headers=headers), 400, {"delivery_id_missing"})


@pytest.mark.parametrize("body", [b"[]", b'{"payment_hash": 5}', b'{"payment_hash": "zz"}', b"\xff\xfe\xfd", b"{"],
                         ids=["array", "number", "not-hex", "not-utf8", "truncated"])
def test_a_correctly_signed_notice_with_a_bad_body_is_refused_with_400(
    service: VoltaService, http: httpx.Client, body: bytes,
) -> None:
    response = http.post(NOTICES, content=body, headers=notice_headers(service.inbound_webhook_secret, body))
    assert_refused(response, 400, {"invalid_body"})
