"""The realistic chain and the fault proxy, on real processes: each test shows its fault fired.

Block modes are judged from the devnet itself (block numbers, transaction statuses, balances); faults
from toxiproxy's own counters and from what a client going through the proxy sees, next to a client
going around it.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import statistics
import time
from pathlib import Path

import httpx
import pytest

from harness.contracts.deploy import invoke, make_account
from harness.devnet import Devnet, DevnetError
from harness.faults import FaultClient
from harness.network import DEVNET_PROXY, MERCHANT_PROXY, Network
from harness.pytest_plugin import REALISTIC_BLOCK_TIME_S
from harness.tools import locate
from harness.util import Timeouts, wait_until
from service.domain.pricing import VUSD_DECIMALS
from service.starknet.client import StarknetClient, split_u256

pytestmark = pytest.mark.regtest

VUSD = 10**VUSD_DECIMALS
LATENCY_MS = 300
SAMPLES = 5
STRK_FRI = 10**18


def blocks_close_at(devnet: Devnet, count: int, timeout: float) -> list[float]:
    """Monotonic times at which the latest block number moved, `count` times."""
    seen, moments = devnet.block_number(), []
    deadline = time.monotonic() + timeout
    while len(moments) < count and time.monotonic() < deadline:
        number = devnet.block_number()
        if number != seen:
            seen = number
            moments.append(time.monotonic())
        time.sleep(0.05)
    return moments


def tx_finality(devnet: Devnet, tx_hash: str) -> str:
    return devnet.rpc("starknet_getTransactionStatus", {"transaction_hash": tx_hash})["finality_status"]


def strk_balance(devnet: Devnet, address: str, block_id: object = "latest") -> int:
    reply = devnet.rpc("devnet_getAccountBalance", {"address": address, "unit": "FRI", "block_id": block_id})
    return int(reply["amount"])


def timed_block_number(rpc_url: str, timeout: float = Timeouts.RPC) -> float:
    """Seconds for one starknet_blockNumber on a fresh connection (closed after, so toxiproxy counts it)."""
    started = time.monotonic()
    with httpx.Client(timeout=timeout) as client:
        reply = client.post(rpc_url, json={"jsonrpc": "2.0", "id": 1, "method": "starknet_blockNumber"})
    assert "result" in reply.json(), reply.text
    return time.monotonic() - started


def median_rpc_s(rpc_url: str) -> float:
    return statistics.median(timed_block_number(rpc_url) for _ in range(SAMPLES))


def proxied_rpc_url(network: Network) -> str:
    return network.fault_proxies[DEVNET_PROXY].url("http", "/rpc")


# -- block modes ---------------------------------------------------------------------------------------


def test_interval_blocks_close_on_their_own(realistic_network: Network) -> None:
    devnet = realistic_network.devnet
    assert devnet is not None and devnet.block_generation == str(REALISTIC_BLOCK_TIME_S)
    user = realistic_network.users[0]["address"]
    blocks_close_at(devnet, count=1, timeout=2 * REALISTIC_BLOCK_TIME_S)  # a whole block time ahead of us
    minted = devnet.rpc("devnet_mint", {"address": user, "amount": STRK_FRI, "unit": "FRI"})

    # Sent, but not in a block yet: a real chain's "received / pre-confirmed" moment.
    assert tx_finality(devnet, minted["tx_hash"]) == "PRE_CONFIRMED"
    wait_until(lambda: tx_finality(devnet, minted["tx_hash"]) == "ACCEPTED_ON_L2",
               timeout=REALISTIC_BLOCK_TIME_S + 1.5, what="the block timer to close the mint's block")

    moments = blocks_close_at(devnet, count=3, timeout=4 * REALISTIC_BLOCK_TIME_S)
    gaps = [later - earlier for earlier, later in itertools.pairwise(moments)]
    assert len(gaps) == 2, f"blocks closed at {moments}"
    assert all(abs(gap - REALISTIC_BLOCK_TIME_S) < 0.5 for gap in gaps), gaps


def test_demand_blocks_close_only_on_create_block(tmp_path: Path) -> None:
    devnet = Devnet(locate("starknet-devnet")["starknet-devnet"], tmp_path / "devnet", block_time=0)
    try:
        devnet.start()
        user = devnet.predeployed_accounts()[2]["address"]
        before, latest = strk_balance(devnet, user), devnet.block_number()
        minted = devnet.rpc("devnet_mint", {"address": user, "amount": STRK_FRI, "unit": "FRI"})
        time.sleep(1.5)

        assert devnet.block_number() == latest, "no block may close without devnet_createBlock"
        assert strk_balance(devnet, user) == before
        assert strk_balance(devnet, user, "pre_confirmed") == before + STRK_FRI

        block_hash = devnet.create_block()

        assert devnet.block_number() == latest + 1
        assert devnet.block_hash(latest + 1) == block_hash
        assert tx_finality(devnet, minted["tx_hash"]) == "ACCEPTED_ON_L2"
        assert strk_balance(devnet, user) == before + STRK_FRI
    finally:
        devnet.stop()


@pytest.mark.parametrize("block_time", [None, 0, 1], ids=["per-transaction", "demand", "interval-1s"])
def test_restart_keeps_state_and_block_numbers(tmp_path: Path, block_time: float | None) -> None:
    devnet = Devnet(locate("starknet-devnet")["starknet-devnet"], tmp_path / "devnet", block_time=block_time)
    try:
        devnet.start()
        user = devnet.predeployed_accounts()[2]["address"]
        before = strk_balance(devnet, user)
        with devnet.blocks_closing():
            minted = devnet.rpc("devnet_mint", {"address": user, "amount": STRK_FRI, "unit": "FRI"})
            wait_until(lambda: tx_finality(devnet, minted["tx_hash"]) == "ACCEPTED_ON_L2", timeout=10,
                       what="the mint in a block")
        # A lost block rolled back before the restart must stay rolled back after it (the dump replays it).
        devnet.create_block()
        devnet.abort_last_blocks(1)
        number = devnet.block_number()

        devnet.restart()

        assert strk_balance(devnet, user) == before + STRK_FRI
        assert devnet.block_number() >= number  # interval mode may close another block meanwhile
        assert tx_finality(devnet, minted["tx_hash"]) == "ACCEPTED_ON_L2"
    finally:
        devnet.stop()


def test_abort_blocks_rolls_back_a_mint(realistic_network: Network) -> None:
    devnet, contracts = realistic_network.devnet, realistic_network.contracts
    assert devnet is not None and contracts is not None
    operator = realistic_network.operator
    account = make_account(devnet.rpc_url, operator["address"], operator["private_key"])
    recipient = int(realistic_network.users[1]["address"], 16)
    payment_hash = secrets.token_bytes(32)
    reader = StarknetClient(realistic_network.starknet_config())
    try:
        before = reader.vusd_balance(recipient)
        calldata = [recipient, *split_u256(7 * VUSD), *split_u256(int.from_bytes(payment_hash, "big"))]
        tx_hash = asyncio.run(invoke(account, contracts.vault, "mint_for_payment", calldata))
        receipt = devnet.rpc("starknet_getTransactionReceipt", {"transaction_hash": hex(tx_hash)})
        assert reader.vusd_balance(recipient) == before + 7 * VUSD and reader.is_payment_used(payment_hash)

        aborted = devnet.abort_blocks(receipt["block_hash"])

        assert receipt["block_hash"] in aborted
        assert reader.vusd_balance(recipient) == before
        assert not reader.is_payment_used(payment_hash)
        with pytest.raises(DevnetError, match=r"[Nn]ot found"):
            tx_finality(devnet, hex(tx_hash))
    finally:
        reader.close()


# -- faults through toxiproxy --------------------------------------------------------------------------


def test_service_reaches_its_dependencies_only_through_the_proxies(realistic_network: Network) -> None:
    assert realistic_network.service is not None
    service_state = realistic_network.service_state()
    proxies = realistic_network.fault_proxies
    assert service_state["starknet"]["rpc_url"] == proxies[DEVNET_PROXY].url("http", "/rpc")
    assert service_state["lightning"]["nodes"]["merchant"]["rest_url"] == proxies[MERCHANT_PROXY].url("https")
    assert realistic_network.service.state_file.name == "service-state.json"
    state = realistic_network.state()
    assert state["starknet"]["rpc_url"] == realistic_network.devnet.rpc_url  # outside tests stay direct
    assert state["faults"]["proxies"][DEVNET_PROXY]["upstream"] == f"127.0.0.1:{realistic_network.devnet.port}"
    # Only the service uses the proxies here; its start-up health check already went through both.
    faults = realistic_network.faults
    assert faults is not None
    assert faults.connections(DEVNET_PROXY) >= 1 and faults.connections(MERCHANT_PROXY) >= 1


def test_latency_slows_the_proxied_rpc_only(realistic_network: Network, faults: FaultClient) -> None:
    proxied, direct = proxied_rpc_url(realistic_network), realistic_network.devnet.rpc_url
    baseline = median_rpc_s(proxied)
    connections, traffic = faults.connections(DEVNET_PROXY), faults.traffic(DEVNET_PROXY)

    with faults.fault(DEVNET_PROXY, "latency", {"latency": LATENCY_MS}) as toxic:
        assert faults.proxy(DEVNET_PROXY).toxics == [toxic]
        slowed = median_rpc_s(proxied)
        direct_meanwhile = median_rpc_s(direct)

    added_s = slowed - baseline
    assert LATENCY_MS / 1000 * 0.9 <= added_s <= LATENCY_MS / 1000 + 0.25, (baseline, slowed)
    assert direct_meanwhile < baseline + 0.1, "the direct path must not be slowed"
    # At least: the idle service may open a connection of its own meanwhile.
    assert faults.connections(DEVNET_PROXY) >= connections + SAMPLES
    moved = faults.traffic(DEVNET_PROXY) - traffic
    assert moved.received_upstream > 0 and moved.sent_downstream > 0, moved
    assert faults.proxy(DEVNET_PROXY).toxics == []


def test_stall_holds_the_proxied_rpc(realistic_network: Network, faults: FaultClient) -> None:
    proxied = proxied_rpc_url(realistic_network)
    connections = faults.connections(DEVNET_PROXY)
    faults.stall(DEVNET_PROXY)

    with pytest.raises(httpx.ReadTimeout):
        timed_block_number(proxied, timeout=1.0)

    assert faults.connections(DEVNET_PROXY) >= connections + 1, "the request reached toxiproxy and was held"
    timed_block_number(realistic_network.devnet.rpc_url)  # the devnet itself answers
    faults.clear(DEVNET_PROXY)
    timed_block_number(proxied)


def test_reset_drops_the_proxied_connection(realistic_network: Network, faults: FaultClient) -> None:
    proxied = proxied_rpc_url(realistic_network)
    connections = faults.connections(DEVNET_PROXY)
    faults.reset(DEVNET_PROXY)

    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        timed_block_number(proxied)

    assert faults.connections(DEVNET_PROXY) >= connections + 1
    faults.clear(DEVNET_PROXY)
    timed_block_number(proxied)


def test_cut_refuses_the_proxied_rpc_and_restore_brings_it_back(
    realistic_network: Network, faults: FaultClient
) -> None:
    proxied = proxied_rpc_url(realistic_network)
    timed_block_number(proxied)
    connections = faults.connections(DEVNET_PROXY)

    with faults.outage(DEVNET_PROXY) as cut:
        assert not cut.enabled
        with pytest.raises(httpx.ConnectError):
            timed_block_number(proxied)
        timed_block_number(realistic_network.devnet.rpc_url)  # the devnet itself answers
        assert faults.connections(DEVNET_PROXY) == connections, "nothing was accepted while cut"

    assert faults.proxy(DEVNET_PROXY).enabled
    timed_block_number(proxied)
    assert faults.connections(DEVNET_PROXY) >= connections + 1
