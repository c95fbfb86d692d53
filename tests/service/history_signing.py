"""What a Starknet wallet does for the history page, done in the test with a devnet account's key: the SNIP-12
hash from starknet-py's TypedData (an implementation of the spec, not the service's helper) signed with the
account's Stark key; and the whole challenge → signature → session exchange with the service."""

from __future__ import annotations

from typing import Any

import httpx
from starknet_py.hash.utils import message_signature
from starknet_py.utils.typed_data import TypedData


def sign_typed_data(typed_data: dict[str, Any], address: str, private_key: str) -> list[str]:
    message_hash = TypedData.from_dict(typed_data).message_hash(int(address, 16))  # type: ignore[arg-type]
    r, s = message_signature(message_hash, int(private_key, 16))
    return [hex(r), hex(s)]


def challenge_for(http: httpx.Client, address: str) -> dict[str, Any]:
    response = http.post("/api/v1/history/challenge", json={"starknet_address": address})
    assert response.status_code == 200, response.text
    return response.json()


def history_session(http: httpx.Client, account: dict[str, str]) -> str:
    """A session proving `account` (a devnet account: {"address", "private_key"})."""
    challenge = challenge_for(http, account["address"])
    signature = sign_typed_data(challenge["typed_data"], account["address"], account["private_key"])
    response = http.post("/api/v1/history/session", json={"challenge": challenge["challenge"], "signature": signature})
    assert response.status_code == 200, response.text
    return str(response.json()["session"])


def bearer(session: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {session}"}
