"""The vault, VUSD and price oracle on Starknet, through starknet-py.

One operator account sends every mint, so this client owns that account's nonce: a lock hands out
nonces in order (concurrent mints never collide) and waiting for acceptance happens outside the lock
(one slow mint does not hold the others back). A batch of mints could go in one multicall by
passing several `Call`s to `_send` under one nonce.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from starknet_py.cairo.felt import encode_shortstring
from starknet_py.hash.selector import get_selector_from_name
from starknet_py.net.account.account import Account
from starknet_py.net.client_errors import ClientError
from starknet_py.net.client_models import Call
from starknet_py.net.full_node_client import FullNodeClient
from starknet_py.net.models import StarknetChainId
from starknet_py.net.signer.key_pair import KeyPair
from starknet_py.transaction_errors import TransactionRevertedError

from service.domain.pricing import Price, price_from_oracle
from service.starknet.base import MintReceipt, MintRejected, MintUncertain, PriceSource, VaultGateway
from service.starknet.loop import LoopThread

BTC_USD_PAIR = encode_shortstring("BTC/USD")
LIGHTNING_MINT_SELECTOR = get_selector_from_name("LightningMint")
_U128 = 2**128


def split_u256(value: int) -> list[int]:
    return [value % _U128, value // _U128]


def join_u256(low: int, high: int) -> int:
    return low + high * _U128


@dataclass(frozen=True)
class StarknetConfig:
    rpc_url: str
    vault_address: int
    vusd_address: int
    oracle_address: int
    operator_address: int
    operator_private_key: int
    chain_id: int = StarknetChainId.SEPOLIA
    mint_timeout_s: float = 60.0


class StarknetClient(VaultGateway, PriceSource):
    def __init__(self, config: StarknetConfig) -> None:
        self.config = config
        self._loop = LoopThread()
        self._client = FullNodeClient(node_url=config.rpc_url)
        self._operator = Account(
            address=config.operator_address,
            client=self._client,
            key_pair=KeyPair.from_private_key(config.operator_private_key),
            chain=config.chain_id,
        )
        self._nonce_lock = self._loop.run(self._make_lock())
        self._next_nonce: int | None = None

    @staticmethod
    async def _make_lock() -> asyncio.Lock:
        return asyncio.Lock()

    def close(self) -> None:
        self._loop.close()

    # -- minting ------------------------------------------------------------------------------------

    def mint_for_payment(self, recipient: int, amount_base_units: int, payment_hash: bytes) -> MintReceipt:
        hash_int = int.from_bytes(payment_hash, "big")
        call = Call(
            to_addr=self.config.vault_address,
            selector=get_selector_from_name("mint_for_payment"),
            calldata=[recipient, *split_u256(amount_base_units), *split_u256(hash_int)],
        )
        receipt = self._loop.run(self._send_and_wait([call]), timeout=self.config.mint_timeout_s + 10)
        self._verify_mint_event(receipt, recipient, amount_base_units, hash_int)
        return MintReceipt(hex(receipt.transaction_hash), getattr(receipt, "block_number", None))

    async def _send_and_wait(self, calls: list[Call]) -> Any:
        tx_hash = await self._send(calls)
        try:
            return await asyncio.wait_for(
                self._client.wait_for_tx(tx_hash, check_interval=0.1), timeout=self.config.mint_timeout_s
            )
        except TransactionRevertedError as exc:
            raise MintRejected(_revert_reason(str(exc))) from exc
        except (TimeoutError, ClientError) as exc:
            raise MintUncertain(f"mint {hex(tx_hash)} not confirmed: {exc}") from exc

    async def _send(self, calls: list[Call]) -> int:
        async with self._nonce_lock:
            if self._next_nonce is None:
                self._next_nonce = await self._operator.get_nonce(block_number="latest")
            try:
                # Fee estimation simulates the call first: a mint the vault would refuse (paused, hash
                # already used, not the operator) fails here, before it costs a nonce.
                sent = await self._operator.execute_v3(calls, nonce=self._next_nonce, auto_estimate=True)
            except ClientError as exc:
                self._next_nonce = None  # resynchronise from the chain on the next send
                if _is_revert(str(exc)):
                    raise MintRejected(_revert_reason(str(exc))) from exc
                raise
            self._next_nonce += 1
            return sent.transaction_hash

    def _verify_mint_event(self, receipt: Any, recipient: int, amount: int, payment_hash: int) -> None:
        for event in receipt.events:
            if event.from_address != self.config.vault_address or event.keys[:1] != [LIGHTNING_MINT_SELECTOR]:
                continue
            if event.keys[1:3] == split_u256(payment_hash) and event.data == [recipient, *split_u256(amount)]:
                return
        raise MintUncertain(
            f"tx {hex(receipt.transaction_hash)} was accepted but carries no LightningMint event for "
            f"payment {payment_hash:064x}, recipient {hex(recipient)}, amount {amount}"
        )

    # -- reads --------------------------------------------------------------------------------------

    def _call(self, to_addr: int, function: str, calldata: list[int]) -> list[int]:
        call = Call(to_addr=to_addr, selector=get_selector_from_name(function), calldata=calldata)
        return self._loop.run(self._client.call_contract(call, block_number="latest"), timeout=30)

    def is_payment_used(self, payment_hash: bytes) -> bool:
        hash_int = int.from_bytes(payment_hash, "big")
        return self._call(self.config.vault_address, "is_payment_used", split_u256(hash_int)) == [1]

    def vusd_balance(self, address: int) -> int:
        low, high = self._call(self.config.vusd_address, "balance_of", [address])
        return join_u256(low, high)

    def is_paused(self) -> bool:
        return self._call(self.config.vault_address, "is_paused", []) == [1]

    def btc_usd(self) -> Price:
        # Pragma's get_data_median(DataType::SpotEntry('BTC/USD')): variant 0 is SpotEntry.
        price, decimals, updated_at, *_ = self._call(self.config.oracle_address, "get_data_median", [0, BTC_USD_PAIR])
        return price_from_oracle(price, decimals, updated_at)

    def is_reachable(self) -> bool:
        try:
            self._loop.run(self._client.get_block_number(), timeout=5)
        except Exception:  # any failure to answer means "down" for the health endpoint
            return False
        return True


def _is_revert(message: str) -> bool:
    return any(marker in message for marker in ("revert", "Revert", "execution", "Execution", "Failure reason"))


def _revert_reason(message: str) -> str:
    """The vault's short-string reason ('PAUSED', 'PAYMENT_ALREADY_USED', …) if the message has one."""
    for reason in ("PAYMENT_ALREADY_USED", "ONLY_OPERATOR", "PAUSED", "ZERO_RECIPIENT", "ZERO_AMOUNT"):
        if reason in message or reason.encode().hex() in message:
            return reason
    return message[:300]
