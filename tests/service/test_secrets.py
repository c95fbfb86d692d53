"""Purchases with the service logging at DEBUG: no preimage, private key or macaroon in any log line
or any response."""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Iterator

import httpx
import pytest

from harness.network import Network
from harness.util import Timeouts
from tests.service.history_signing import bearer, history_session

pytestmark = pytest.mark.regtest

HISTORY_SESSION_KEY = secrets.token_hex(24)  # signs history challenges and sessions: never shown anywhere


@pytest.fixture
def debug_logging_service(network: Network) -> Iterator[None]:
    assert network.service is not None
    network.service.restart({"VOLTA_LOG_LEVEL": "DEBUG", "VOLTA_HISTORY_SESSION_KEY": HISTORY_SESSION_KEY})
    yield
    network.service.restart()


def secrets_of(network: Network, preimages: list[str]) -> dict[str, str]:
    macaroon = network.merchant.macaroon.read_bytes()
    operator_key = int(network.operator["private_key"], 16)
    found = {f"preimage {i}": p for i, p in enumerate(preimages)}
    return found | {
        "operator key (hex)": f"{operator_key:x}",
        "macaroon (hex)": macaroon.hex(),
        "macaroon (base64)": base64.b64encode(macaroon).decode(),
        "history session key": HISTORY_SESSION_KEY,
    }


@pytest.mark.usefixtures("debug_logging_service")
def test_no_secret_in_logs_or_responses(network: Network) -> None:
    base, payer = network.service.url, network.payer.client()
    address = network.users[0]["address"]
    responses: list[str] = []
    preimages: list[str] = []
    with httpx.Client(base_url=base, timeout=30) as http:
        for amount in ("3.00", "4.00"):
            created = http.post("/api/v1/orders", json={"starknet_address": address, "vusd_amount": amount})
            responses.append(created.text)
            order = created.json()
            payment = payer.pay(order["bolt11"], timeout_s=int(Timeouts.PAYMENT))
            assert payment["status"] == "SUCCEEDED", payment.get("failure_reason")
            preimages.append(payment["payment_preimage"])
            with http.stream("GET", f"/api/v1/orders/{order['order_id']}/events") as events:
                responses.append("\n".join(events.iter_lines()))
            final = http.get(f"/api/v1/orders/{order['order_id']}")
            assert final.json()["status"] == "completed"
            responses.append(final.text)
        challenge = http.post("/api/v1/history/challenge", json={"starknet_address": address})
        responses.append(challenge.text)
        session = history_session(http, network.users[0])
        listed = http.get("/api/v1/orders?starknet_address=" + address, headers=bearer(session))
        assert listed.status_code == 200, listed.text
        responses.append(listed.text)
        for path in ("/api/v1/health", "/api/v1/rate", "/metrics", "/api/v1/webhooks/deliveries"):
            responses.append(http.get(path).text)
    logs = network.service.log_path.read_text(errors="replace")
    assert "DEBUG" in logs, "the service really logged at DEBUG"

    haystacks = {"service log": logs.lower(), "responses": json.dumps(responses).lower()}
    leaks = [f"{secret} in {where}" for secret, value in secrets_of(network, preimages).items()
             for where, text in haystacks.items() if value.lower() in text]
    assert leaks == []
