"""An address's purchase history needs proof of the address (issue #13), against the real service and devnet:
the test signs the service's SNIP-12 challenge as a wallet would (starknet-py's TypedData and the devnet
account's key), the account contract on the devnet vouches for the signature, and only then does the history
open, for that address only. Wrong signatures, other accounts' sessions, no session, reused or expired
challenges, and sessions from before a restart are all refused with a 4xx that says what to do."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starknet_py.cairo.felt import encode_shortstring
from starknet_py.hash.selector import get_selector_from_name
from starknet_py.net.client_models import Call
from starknet_py.net.full_node_client import FullNodeClient
from starknet_py.utils.typed_data import TypedData

from harness.network import Network
from tests.service.history_signing import bearer, challenge_for, history_session, sign_typed_data

pytestmark = pytest.mark.regtest

CHALLENGE_HINT = "/api/v1/history/challenge"


@pytest.fixture(scope="module", autouse=True)
def service_with_fresh_budget(network: Network) -> None:
    """The service's rate limits live in its memory (memory://): a restart gives this module its own per-minute
    history budget, which the schemathesis run just before it may have spent."""
    assert network.service is not None
    network.service.restart()


@pytest.fixture
def http(network: Network) -> Iterator[httpx.Client]:
    assert network.service is not None
    with httpx.Client(base_url=network.service.url, timeout=60) as client:
        yield client


@pytest.fixture
def alice(network: Network) -> dict[str, str]:
    return network.users[2]


@pytest.fixture
def bob(network: Network) -> dict[str, str]:
    return network.users[3]


def padded(address: str) -> str:
    return f"0x{int(address, 16):064x}"


def list_orders(http: httpx.Client, address: str, session: str | None = None) -> httpx.Response:
    return http.get("/api/v1/orders", params={"starknet_address": address},
                    headers=bearer(session) if session else {})


def assert_refused(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "message", "hint"} and body["error"] == code, body
    assert body["message"] and body["hint"], body
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    return body


def redeem(http: httpx.Client, challenge: dict[str, Any], signature: list[str]) -> httpx.Response:
    return http.post("/api/v1/history/session", json={"challenge": challenge["challenge"], "signature": signature})


def account_says(network: Network, address: str, typed_data: dict[str, Any], signature: list[str]) -> int:
    """The account contract's own answer, asked by the test directly on the devnet."""
    assert network.devnet is not None
    message_hash = TypedData.from_dict(typed_data).message_hash(int(address, 16))  # type: ignore[arg-type]
    felts = [int(felt, 16) for felt in signature]
    call = Call(to_addr=int(address, 16), selector=get_selector_from_name("is_valid_signature"),
                calldata=[message_hash, len(felts), *felts])
    return asyncio.run(FullNodeClient(node_url=network.devnet.rpc_url).call_contract(call))[0]


def test_a_signed_challenge_opens_that_addresss_history(http: httpx.Client, network: Network,
                                                         alice: dict[str, str]) -> None:
    assert network.devnet is not None
    created = [http.post("/api/v1/orders", json={"starknet_address": alice["address"], "vusd_amount": amount})
               for amount in ("2.00", "3.00")]
    assert all(response.status_code == 201 for response in created), [response.text for response in created]

    challenge = challenge_for(http, alice["address"])
    typed = challenge["typed_data"]
    chain_name = bytes.fromhex(network.devnet.chain_id()[2:]).decode()
    assert typed["domain"] == {"name": "VOLTA Lightning", "version": "1", "chainId": chain_name, "revision": "1"}
    assert typed["types"]["StarknetDomain"] == [{"name": field, "type": "shortstring"}
                                                for field in ("name", "version", "chainId", "revision")]
    message = typed["message"]
    assert padded(message["account"]) == padded(alice["address"])
    assert int(message["nonce"], 16) > 0 and message["expires_at"] > time.time()
    assert message["site"] == network.service.url

    signature = sign_typed_data(typed, alice["address"], alice["private_key"])
    assert account_says(network, alice["address"], typed, signature) == encode_shortstring("VALID")
    granted = redeem(http, challenge, signature)
    assert granted.status_code == 200, granted.text
    session = granted.json()
    assert session["token_type"] == "Bearer" and session["starknet_address"] == padded(alice["address"])
    assert 0 < session["expires_in_s"] <= 86_400
    assert granted.headers["Cache-Control"] == "no-store"

    listed = list_orders(http, alice["address"], session["session"])
    assert listed.status_code == 200, listed.text
    assert listed.headers["Cache-Control"] == "no-store"
    ids = {order["order_id"] for order in listed.json()["orders"]}
    assert {response.json()["order_id"] for response in created} <= ids
    assert all(order["starknet_address"] == padded(alice["address"]) for order in listed.json()["orders"])
    # The same session with the address written another way (no leading zeros) still matches.
    short = hex(int(alice["address"], 16))
    assert list_orders(http, short, session["session"]).status_code == 200


def test_without_a_session_the_history_is_refused(http: httpx.Client, alice: dict[str, str]) -> None:
    body = assert_refused(list_orders(http, alice["address"]), 401, "history_proof_required")
    assert CHALLENGE_HINT in body["hint"]
    refused = http.get("/api/v1/orders", params={"starknet_address": alice["address"]},
                       headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert_refused(refused, 401, "history_proof_required")
    assert_refused(list_orders(http, alice["address"], "not-a-session"), 401, "invalid_session")
    forged = "eyJhIjoiMHgwMCIsImUiOjk5OTk5OTk5OTl9.forged"
    assert_refused(list_orders(http, alice["address"], forged), 401, "invalid_session")
    # An invalid query is still a 400 (nothing about anyone's purchases in it).
    assert http.get("/api/v1/orders", params={"starknet_address": "nope"}).status_code == 400


def test_a_wrong_signature_is_refused(http: httpx.Client, network: Network, alice: dict[str, str],
                                      bob: dict[str, str]) -> None:
    challenge = challenge_for(http, alice["address"])
    by_bob = sign_typed_data(challenge["typed_data"], alice["address"], bob["private_key"])
    assert account_says(network, alice["address"], challenge["typed_data"], by_bob) == 0  # the chain agrees
    body = assert_refused(redeem(http, challenge, by_bob), 401, "invalid_signature")
    assert padded(alice["address"]) in body["message"]

    other_message = challenge["typed_data"] | {"message": challenge["typed_data"]["message"] | {"nonce": "0x1"}}
    assert_refused(redeem(http, challenge, sign_typed_data(other_message, alice["address"], alice["private_key"])),
                   401, "invalid_signature")
    assert_refused(redeem(http, challenge, ["0x1"]), 401, "invalid_signature")  # a shape the account refuses

    # The challenge was not used up by the failures: the right signature still buys a session.
    good = sign_typed_data(challenge["typed_data"], alice["address"], alice["private_key"])
    assert redeem(http, challenge, good).status_code == 200


def test_a_session_opens_only_its_own_address(http: httpx.Client, alice: dict[str, str], bob: dict[str, str]) -> None:
    bobs_session = history_session(http, bob)
    body = assert_refused(list_orders(http, alice["address"], bobs_session), 403, "session_for_other_address")
    assert padded(bob["address"]) in body["message"] and CHALLENGE_HINT in body["hint"]
    assert list_orders(http, bob["address"], bobs_session).status_code == 200


def test_a_challenge_buys_one_session(http: httpx.Client, alice: dict[str, str]) -> None:
    challenge = challenge_for(http, alice["address"])
    signature = sign_typed_data(challenge["typed_data"], alice["address"], alice["private_key"])
    assert redeem(http, challenge, signature).status_code == 200
    body = assert_refused(redeem(http, challenge, signature), 401, "challenge_used")
    assert CHALLENGE_HINT in body["hint"]


def test_a_challenge_not_issued_by_the_service_is_refused(http: httpx.Client, alice: dict[str, str]) -> None:
    challenge = challenge_for(http, alice["address"])
    token = challenge["challenge"]
    tampered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    signature = sign_typed_data(challenge["typed_data"], alice["address"], alice["private_key"])
    assert_refused(redeem(http, challenge | {"challenge": tampered}, signature), 401, "invalid_challenge")


def test_only_a_deployed_account_can_prove_an_address(http: httpx.Client, network: Network,
                                                      alice: dict[str, str]) -> None:
    assert network.contracts is not None
    nobody = f"0x{secrets.randbits(240):064x}"
    challenge = challenge_for(http, nobody)
    signature = sign_typed_data(challenge["typed_data"], nobody, alice["private_key"])
    body = assert_refused(redeem(http, challenge, signature), 401, "account_not_deployed")
    assert nobody in body["message"]

    token = hex(network.contracts.vusd)
    challenge = challenge_for(http, token)
    signature = sign_typed_data(challenge["typed_data"], token, alice["private_key"])
    assert_refused(redeem(http, challenge, signature), 401, "not_an_account")


@pytest.mark.parametrize("body", [
    {}, {"challenge": "x"}, {"challenge": "x", "signature": []}, {"challenge": "x", "signature": "0x1,0x2"},
    {"challenge": "x", "signature": ["0xzz"]}, {"challenge": "x", "signature": [-1]},
    {"challenge": "x", "signature": [True, 1]}, {"challenge": "x", "signature": [hex(2**252)]},
    {"challenge": 5, "signature": ["0x1"]},
])
def test_malformed_session_requests_are_400(http: httpx.Client, body: dict[str, Any]) -> None:
    response = http.post("/api/v1/history/session", json=body)
    assert response.status_code == 400, response.text
    assert set(response.json()) == {"error", "message", "hint"}


def test_malformed_challenge_requests_are_400(http: httpx.Client) -> None:
    for body in ({}, {"starknet_address": 5}, {"starknet_address": "0x0"}, {"starknet_address": "hello"}):
        response = http.post("/api/v1/history/challenge", json=body)
        assert response.status_code == 400, (body, response.text)
        assert set(response.json()) == {"error", "message", "hint"}


def test_challenges_and_sessions_expire_and_a_restart_forgets_them(network: Network, alice: dict[str, str]) -> None:
    """With no VOLTA_HISTORY_SESSION_KEY the key is per process: after a restart, history needs a fresh proof.
    Challenges and sessions expire; the history endpoints are rate limited per client."""
    service = network.service
    assert service is not None
    with httpx.Client(base_url=service.url, timeout=60) as http:
        before_restart = history_session(http, alice)
        assert list_orders(http, alice["address"], before_restart).status_code == 200
    try:
        service.restart({"VOLTA_HISTORY_CHALLENGE_LIFETIME_S": "5", "VOLTA_HISTORY_SESSION_LIFETIME_S": "10",
                         "VOLTA_RATE_LIMIT_HISTORY_PER_IP": "4/minute"})
        with httpx.Client(base_url=service.url, timeout=60) as http:
            assert_refused(list_orders(http, alice["address"], before_restart), 401, "invalid_session")

            stale = challenge_for(http, alice["address"])
            signature = sign_typed_data(stale["typed_data"], alice["address"], alice["private_key"])
            time.sleep(6)
            assert_refused(redeem(http, stale, signature), 401, "challenge_expired")

            session = history_session(http, alice)
            assert list_orders(http, alice["address"], session).status_code == 200
            time.sleep(11)
            body = assert_refused(list_orders(http, alice["address"], session), 401, "session_expired")
            assert CHALLENGE_HINT in body["hint"]

            statuses = [http.post("/api/v1/history/challenge", json={"starknet_address": alice["address"]})
                        for _ in range(5)]
            limited = [response for response in statuses if response.status_code == 429]
            assert limited, [response.status_code for response in statuses]
            assert_refused(limited[0], 429, limited[0].json()["error"])
            assert limited[0].headers.get("Retry-After")
    finally:
        service.restart()
