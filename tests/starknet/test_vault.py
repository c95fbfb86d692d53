"""VOLTA's contracts on the real devnet, through the service's Starknet client."""

from __future__ import annotations

import asyncio
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest

from harness.contracts.deploy import invoke, set_price
from harness.network import Network
from service.domain.ports import MintAbandoned, MintFate, MintRejected, SignedMint
from service.domain.pricing import VUSD_DECIMALS
from service.starknet.client import StarknetClient

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
