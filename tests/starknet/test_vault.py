"""VOLTA's contracts on the real devnet, through the service's Starknet client."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from starknet_py.hash.selector import get_selector_from_name

from harness.contracts.deploy import invoke, make_account, set_price
from harness.devnet import USER_ACCOUNTS
from harness.network import Network
from service.domain.ports import MintAbandoned, MintDeferred, MintFate, MintRejected, SignedMint
from service.domain.pricing import VUSD_DECIMALS
from service.starknet.client import OperatorKey, StarknetClient, StarknetConfig
from service.storage.database import make_engine, make_session_factory, migrate
from service.storage.lanes import LaneLeaseStore

pytestmark = pytest.mark.regtest

VUSD = 10**VUSD_DECIMALS


def new_payment_hash() -> bytes:
    return secrets.token_bytes(32)


def user_address(network: Network, index: int = 0) -> int:
    return int(network.users[index]["address"], 16)


def test_mint_raises_balance_by_exactly_the_amount(network: Network, starknet: StarknetClient) -> None:
    recipient, payment_hash = user_address(network), new_payment_hash()
    before = starknet.vusd_balance(recipient)

    receipt = starknet.mint_for_payment(recipient, 25 * VUSD, payment_hash)  # verifies the LightningMint event

    assert receipt.tx_hash.startswith("0x")
    assert starknet.vusd_balance(recipient) == before + 25 * VUSD
    assert starknet.is_payment_used(payment_hash)


def test_second_mint_with_same_payment_hash_reverts_and_changes_nothing(
    network: Network, starknet: StarknetClient
) -> None:
    recipient, payment_hash = user_address(network), new_payment_hash()
    starknet.mint_for_payment(recipient, 5 * VUSD, payment_hash)
    after_first = starknet.vusd_balance(recipient)

    with pytest.raises(MintRejected) as rejected:
        starknet.mint_for_payment(recipient, 5 * VUSD, payment_hash)

    assert rejected.value.reason == "PAYMENT_ALREADY_USED"
    assert starknet.vusd_balance(recipient) == after_first


def test_mint_from_a_non_operator_account_reverts(network: Network, starknet: StarknetClient) -> None:
    impostor = StarknetClient(network.starknet_config(operator=network.users[1]))
    recipient, payment_hash = user_address(network, 1), new_payment_hash()
    before = starknet.vusd_balance(recipient)
    try:
        with pytest.raises(MintRejected) as rejected:
            impostor.mint_for_payment(recipient, VUSD, payment_hash)
    finally:
        impostor.close()

    assert rejected.value.reason == "ONLY_OPERATOR"
    assert starknet.vusd_balance(recipient) == before
    assert not starknet.is_payment_used(payment_hash)


def test_pausing_the_vault_stops_mints(network: Network, starknet: StarknetClient) -> None:
    owner, vault = network.owner_account(), network.contracts.vault
    asyncio.run(invoke(owner, vault, "pause", []))
    try:
        assert starknet.is_paused()
        with pytest.raises(MintRejected) as rejected:
            starknet.mint_for_payment(user_address(network), VUSD, new_payment_hash())
        assert rejected.value.reason == "PAUSED"
    finally:
        asyncio.run(invoke(owner, vault, "unpause", []))
    assert not starknet.is_paused()


def test_oracle_returns_the_price_set_and_when(network: Network, starknet: StarknetClient) -> None:
    asyncio.run(set_price(network.owner_account(), network.contracts.oracle, Decimal("101234.56")))

    price = starknet.btc_usd()

    assert price.btc_usd == Decimal("101234.56")
    assert abs(price.updated_at_unix - time.time()) < 60, "the oracle records the block's timestamp"
    asyncio.run(set_price(network.owner_account(), network.contracts.oracle, Decimal("97000")))


def test_twenty_concurrent_mints_from_one_operator_all_land_batched(network: Network, starknet: StarknetClient) -> None:
    recipient = user_address(network, 2)
    hashes = [new_payment_hash() for _ in range(20)]
    before = starknet.vusd_balance(recipient)

    with ThreadPoolExecutor(max_workers=20) as pool:
        receipts = list(pool.map(lambda h: starknet.mint_for_payment(recipient, VUSD, h), hashes))

    transactions = {receipt.tx_hash for receipt in receipts}
    assert len(transactions) < 20, "mints that queue up behind a send go out together as one multicall"
    assert starknet.vusd_balance(recipient) == before + 20 * VUSD
    assert all(starknet.is_payment_used(h) for h in hashes)


def test_devnet_restart_keeps_balances_and_used_hashes(network: Network, starknet: StarknetClient) -> None:
    recipient, payment_hash = user_address(network), new_payment_hash()
    starknet.mint_for_payment(recipient, 7 * VUSD, payment_hash)
    balance = starknet.vusd_balance(recipient)

    assert network.devnet is not None
    network.devnet.restart()

    assert starknet.vusd_balance(recipient) == balance
    assert starknet.is_payment_used(payment_hash)
    with pytest.raises(MintRejected):
        starknet.mint_for_payment(recipient, 7 * VUSD, payment_hash)


def test_one_refused_mint_does_not_spoil_its_batch(network: Network, starknet: StarknetClient) -> None:
    recipient, used_hash = user_address(network, 3), new_payment_hash()
    starknet.mint_for_payment(recipient, VUSD, used_hash)
    before = starknet.vusd_balance(recipient)
    hashes = [new_payment_hash() for _ in range(6)]
    hashes.insert(3, used_hash)  # would make a multicall of all seven revert

    def mint(payment_hash: bytes) -> str:
        try:
            return starknet.mint_for_payment(recipient, VUSD, payment_hash).tx_hash
        except MintRejected as exc:
            return exc.reason

    with ThreadPoolExecutor(max_workers=7) as pool:
        outcomes = list(pool.map(mint, hashes))

    assert outcomes[3] == "PAYMENT_ALREADY_USED"
    assert all(outcome.startswith("0x") for i, outcome in enumerate(outcomes) if i != 3)
    assert starknet.vusd_balance(recipient) == before + 6 * VUSD


def test_the_signed_mint_is_known_before_sending_and_its_fate_can_be_asked(
    network: Network, starknet: StarknetClient
) -> None:
    signed: list[SignedMint] = []
    receipt = starknet.mint_for_payment(user_address(network), VUSD, new_payment_hash(), on_signed=signed.append)

    assert [mint.tx_hash for mint in signed] == [receipt.tx_hash]
    assert starknet.mint_status(signed[0]).fate is MintFate.LANDED
    never_seen = starknet.mint_status(SignedMint(hex(secrets.randbits(250)), signed[0].nonce + 1000))
    assert (never_seen.fate, never_seen.known_to_node) == (MintFate.PENDING, False), "its nonce is still unused"
    used_nonce = starknet.mint_status(SignedMint(hex(secrets.randbits(250)), signed[0].nonce))
    assert used_nonce.fate is MintFate.DEAD, "another transaction used its nonce"


def test_a_refused_mint_is_never_sent_and_voiding_its_nonce_proves_it_dead(
    network: Network, starknet: StarknetClient
) -> None:
    refused: list[SignedMint] = []

    def refuse(mint: SignedMint) -> None:
        refused.append(mint)
        raise MintAbandoned("the order moved on")

    payment_hash = new_payment_hash()
    with pytest.raises(MintAbandoned):
        starknet.mint_for_payment(user_address(network), VUSD, payment_hash, on_signed=refuse)
    assert not starknet.is_payment_used(payment_hash)
    assert starknet.mint_status(refused[0]).fate is MintFate.PENDING, "signed, unsent: its nonce is still free"

    starknet.void_nonce(refused[0].nonce)

    assert starknet.mint_status(refused[0]).fate is MintFate.DEAD
    assert not starknet.is_payment_used(payment_hash)
    receipt = starknet.mint_for_payment(user_address(network), VUSD, payment_hash)  # the client carries on
    assert starknet.is_payment_used(payment_hash) and receipt.tx_hash != refused[0].tx_hash


# -- operators and mint lanes ---------------------------------------------------------------------------


def unused_lane_account(network: Network, index: int = 0) -> dict[str, str]:
    """A devnet account kept for mint lanes that this network (one lane) does not use."""
    return network.starknet_accounts[2 + USER_ACCOUNTS + index]


def vault_events(network: Network, tx_hash: int, name: str) -> list[dict[str, Any]]:
    assert network.devnet is not None and network.contracts is not None
    receipt = network.devnet.rpc("starknet_getTransactionReceipt", {"transaction_hash": hex(tx_hash)})
    return [event for event in receipt["events"] if int(event["from_address"], 16) == network.contracts.vault
            and int(event["keys"][0], 16) == get_selector_from_name(name)]


def sender_of(network: Network, tx_hash: str) -> int:
    assert network.devnet is not None
    return int(network.devnet.rpc("starknet_getTransactionByHash", {"transaction_hash": tx_hash})["sender_address"], 16)


def with_lanes(network: Network, operators: list[dict[str, str]], **overrides: Any) -> StarknetConfig:
    lanes = tuple(OperatorKey(int(account["address"], 16), int(account["private_key"], 16)) for account in operators)
    return replace(network.starknet_config(), lane_accounts=lanes, **overrides)


@pytest.fixture
def second_operator(network: Network) -> Iterator[dict[str, str]]:
    """One more operator on the vault, for this test only."""
    account, owner, vault = unused_lane_account(network), network.owner_account(), network.contracts.vault
    asyncio.run(invoke(owner, vault, "add_operator", [int(account["address"], 16)]))
    yield account
    asyncio.run(invoke(owner, vault, "remove_operator", [int(account["address"], 16)]))


def test_the_owner_adds_and_removes_operators_and_the_vault_says_so(network: Network,
                                                                     starknet: StarknetClient) -> None:
    account, owner, vault = unused_lane_account(network, 1), network.owner_account(), network.contracts.vault
    address, recipient = int(account["address"], 16), user_address(network, 3)
    as_operator = StarknetClient(replace(network.starknet_config(), operator_address=address,
                                         operator_private_key=int(account["private_key"], 16)))
    try:
        added = asyncio.run(invoke(owner, vault, "add_operator", [address]))
        [event] = vault_events(network, added, "OperatorAdded")
        assert [int(key, 16) for key in event["keys"][1:]] == [address]  # the operator, indexed
        assert [int(value, 16) for value in event["data"]] == [int(network.owner["address"], 16)]  # by the owner
        before = starknet.vusd_balance(recipient)
        as_operator.mint_for_payment(recipient, VUSD, new_payment_hash())
        assert starknet.vusd_balance(recipient) == before + VUSD

        removed = asyncio.run(invoke(owner, vault, "remove_operator", [address]))
        assert len(vault_events(network, removed, "OperatorRemoved")) == 1
        payment_hash = new_payment_hash()
        with pytest.raises(MintRejected) as rejected:
            as_operator.mint_for_payment(recipient, VUSD, payment_hash)
        assert rejected.value.reason == "ONLY_OPERATOR" and not starknet.is_payment_used(payment_hash)
    finally:
        as_operator.close()


def test_only_the_owner_changes_the_operators(network: Network) -> None:
    user = network.users[0]
    assert network.devnet is not None
    stranger = make_account(network.devnet.rpc_url, user["address"], user["private_key"])
    for function in ("add_operator", "remove_operator"):
        with pytest.raises(Exception, match=r"ONLY_OWNER|4f4e4c595f4f574e4552"):
            asyncio.run(invoke(stranger, network.contracts.vault, function, [int(user["address"], 16)]))


def test_concurrent_mints_spread_over_the_lanes_each_with_its_own_nonce(
        network: Network, starknet: StarknetClient, second_operator: dict[str, str]) -> None:
    recipient, hashes = user_address(network, 2), [new_payment_hash() for _ in range(12)]
    before = starknet.vusd_balance(recipient)
    client = StarknetClient(with_lanes(network, [second_operator]))
    try:
        with ThreadPoolExecutor(max_workers=12) as pool:
            receipts = list(pool.map(lambda h: client.mint_for_payment(recipient, VUSD, h), hashes))
    finally:
        client.close()
    senders = {sender_of(network, receipt.tx_hash) for receipt in receipts}
    assert senders == {int(network.operator["address"], 16), int(second_operator["address"], 16)}
    assert starknet.vusd_balance(recipient) == before + 12 * VUSD
    assert all(starknet.is_payment_used(h) for h in hashes)


def test_two_workers_send_only_from_the_lane_each_leases_and_a_third_defers(
        network: Network, starknet: StarknetClient, second_operator: dict[str, str], tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'lanes.sqlite'}"
    migrate(database)
    sessions = make_session_factory(make_engine(database))
    config = with_lanes(network, [second_operator], lanes_per_worker=1, lane_idle_release_s=600)
    stores = [LaneLeaseStore(sessions, lambda: datetime.now(UTC), lambda name=name: name, 60)
              for name in ("worker-a", "worker-b", "worker-c")]
    clients = [StarknetClient(config, leases=store) for store in stores]
    recipient = user_address(network, 2)
    try:
        first_a = clients[0].mint_for_payment(recipient, VUSD, new_payment_hash())  # A leases the first free lane
        first_b = clients[1].mint_for_payment(recipient, VUSD, new_payment_hash())  # B the other
        with ThreadPoolExecutor(max_workers=8) as pool:
            later = [pool.submit(clients[i % 2].mint_for_payment, recipient, VUSD, new_payment_hash())
                     for i in range(8)]
            receipts_by_worker: list[list[str]] = [[first_a.tx_hash], [first_b.tx_hash]]
            for i, future in enumerate(later):
                receipts_by_worker[i % 2].append(future.result().tx_hash)
        senders = [{sender_of(network, tx_hash) for tx_hash in hashes} for hashes in receipts_by_worker]
        assert len(senders[0]) == len(senders[1]) == 1 and senders[0] != senders[1], senders

        deferred_hash = new_payment_hash()
        with pytest.raises(MintDeferred):
            clients[2].mint_for_payment(recipient, VUSD, deferred_hash)  # C finds every lane leased
        assert not starknet.is_payment_used(deferred_hash)
    finally:
        for client, store in zip(clients, stores, strict=True):
            store.close()
            client.close()
