"""GET /api/v1/accounts/<address> says whether anything is deployed there, as the devnet itself says."""

from __future__ import annotations

import secrets

import httpx
import pytest
from starknet_py.net.client_errors import ClientError
from starknet_py.net.full_node_client import FullNodeClient

from harness.network import Network

pytestmark = pytest.mark.regtest


def deployed_per_devnet(rpc_url: str, address: int) -> bool:
    try:
        FullNodeClient(node_url=rpc_url).get_class_hash_at_sync(address)
    except ClientError:
        return False
    return True


def test_the_answer_is_the_devnets(network: Network) -> None:
    assert network.service is not None and network.devnet is not None
    nobody = int("0x" + secrets.token_hex(30), 16)
    for address in (int(network.users[0]["address"], 16), nobody):
        answer = httpx.get(f"{network.service.url}/api/v1/accounts/{address:#x}", timeout=30)
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"starknet_address": f"0x{address:064x}",
                                 "deployed": deployed_per_devnet(network.devnet.rpc_url, address)}
    assert deployed_per_devnet(network.devnet.rpc_url, int(network.users[0]["address"], 16))
    assert not deployed_per_devnet(network.devnet.rpc_url, nobody)


@pytest.mark.parametrize("bad", ["0x_1", "0X1", "1", "0x" + "f" * 64])
def test_a_malformed_address_gets_a_json_400(network: Network, bad: str) -> None:
    assert network.service is not None
    answer = httpx.get(f"{network.service.url}/api/v1/accounts/{bad}", timeout=30)
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_starknet_address", answer.text
