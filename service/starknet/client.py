"""The vault, VUSD and price oracle on Starknet, through starknet-py.

One operator account sends every mint, so this client owns that account's nonce: one task sends, in
order (concurrent mints never collide) and waiting for acceptance happens outside the lock
(one slow mint does not hold the others back). Mints that queue up while a transaction is being sent
go out together as one multicall transaction.

A mint goes out only if its `on_signed` callback accepts the signed transaction (the caller records it
under its order's lock); a mint whose caller gave up, or whose callback refuses, is dropped from its batch
and the rest is signed again with the same nonce, so the dropped one can never land.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Sequence
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

from service.config import Settings
from service.domain.ports import (
    AccountSignatures,
    MintAbandoned,
    MintFate,
    MintReceipt,
    MintRejected,
    MintStatus,
    MintUncertain,
    PriceSource,
    SignatureVerdict,
    SignedMint,
    VaultGateway,
)
from service.domain.pricing import Price, price_from_oracle
from service.starknet.loop import LoopThread

BTC_USD_PAIR = encode_shortstring("BTC/USD")
LIGHTNING_MINT_SELECTOR = get_selector_from_name("LightningMint")
_U128 = 2**128
MAX_BATCH = 20
TXN_HASH_NOT_FOUND = 29  # Starknet JSON-RPC error code
CONTRACT_NOT_FOUND = 20  # Starknet JSON-RPC error codes of starknet_call
ENTRYPOINT_NOT_FOUND = 21
CONTRACT_ERROR = 40
VALIDATED = encode_shortstring("VALID")  # what SNIP-6's is_valid_signature answers for a good signature
POLL_INTERVAL_S = 0.1


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
    answer_margin_s: float = 30.0  # signing, fee estimation, sending: with mint_timeout_s, one attempt's budget

    @property
    def mint_budget_s(self) -> float:
        return self.mint_timeout_s + self.answer_margin_s

    @classmethod
    def from_settings(cls, settings: Settings) -> StarknetConfig:
        """The one way from the service's settings to its Starknet config, signing as the operator."""
        if not settings.starknet_rpc_url:
            raise ValueError("no Starknet configured: set VOLTA_STARKNET_RPC_URL (or VOLTA_REGTEST_STATE)")
        return cls(
            rpc_url=settings.starknet_rpc_url,
            vault_address=int(settings.vault_address, 16),
            vusd_address=int(settings.vusd_address, 16),
            oracle_address=int(settings.oracle_address, 16),
            operator_address=int(settings.operator_address, 16),
            operator_private_key=settings.operator_key(),
            chain_id=int(settings.starknet_chain_id, 16),
            mint_timeout_s=settings.mint_timeout_s,
            answer_margin_s=settings.mint_answer_margin_s,
        )


class StarknetClient(VaultGateway, PriceSource, AccountSignatures):
    def __init__(self, config: StarknetConfig, checkpoint: Callable[[str], None] | None = None) -> None:
        self.config = config
        self._checkpoint = checkpoint or (lambda point: None)  # test-only pauses (settlement.Checkpoint)
        self._loop = LoopThread()
        self._client = FullNodeClient(node_url=config.rpc_url)
        self._operator = Account(
            address=config.operator_address,
            client=self._client,
            key_pair=KeyPair.from_private_key(config.operator_private_key),
            chain=config.chain_id,
        )
        self._nonce_lock = asyncio.Lock()  # only the batch task sends today; the lock keeps that an invariant
        self._next_nonce: int | None = None
        self._queue: list[_PendingMint] = []
        self._batcher: asyncio.Task[None] | None = None
        self._waiting: set[asyncio.Task[None]] = set()

    def close(self) -> None:
        self._loop.close()

    # -- minting ------------------------------------------------------------------------------------

    def mint_for_payment(
        self, recipient: int, amount_base_units: int, payment_hash: bytes,
        on_signed: Callable[[SignedMint], None] | None = None,
    ) -> MintReceipt:
        hash_int = int.from_bytes(payment_hash, "big")
        call = Call(
            to_addr=self.config.vault_address,
            selector=get_selector_from_name("mint_for_payment"),
            calldata=[recipient, *split_u256(amount_base_units), *split_u256(hash_int)],
        )
        try:
            receipt = self._loop.run(self._enqueue(call, on_signed), timeout=self.config.mint_budget_s)
        except concurrent.futures.TimeoutError as exc:
            raise MintUncertain(f"no answer about the mint within {self.config.mint_budget_s:.0f}s") from exc
        self._verify_mint_event(receipt, recipient, amount_base_units, hash_int)
        return MintReceipt(hex(receipt.transaction_hash), getattr(receipt, "block_number", None))

    # Mints that arrive while the operator's previous transaction is being signed and sent go out
    # together as one multicall: one nonce, one fee estimate, one transaction for up to MAX_BATCH mints.

    async def _enqueue(self, call: Call, on_signed: Callable[[SignedMint], None] | None) -> Any:
        pending = _PendingMint(call, asyncio.get_running_loop().create_future(), on_signed)
        self._queue.append(pending)
        if self._batcher is None or self._batcher.done():
            self._batcher = asyncio.create_task(self._send_batches())
        try:
            return await pending.result
        except asyncio.CancelledError:
            # The caller gave up: a mint still in the queue must never go out after the order was refunded.
            pending.result.cancel()
            raise

    async def _send_batches(self) -> None:
        while self._queue:
            batch = self._next_batch()
            if not batch:
                break
            try:
                batch, tx_hash = await self._send_batch(batch)
            except MintRejected as exc:
                self._retry_alone_or_fail(batch, exc)
                continue
            except Exception as exc:  # the node refused or is unreachable: maybe sent, maybe not
                _fail(batch, MintUncertain(f"sending the mint failed: {exc!r}"))
                continue
            if not batch:
                continue  # every caller gave up or refused before anything was sent
            waiting = asyncio.create_task(self._await_batch(tx_hash, batch))  # off the send path
            self._waiting.add(waiting)  # the loop keeps only weak references to tasks
            waiting.add_done_callback(self._waiting.discard)

    def _next_batch(self) -> list[_PendingMint]:
        self._queue = [pending for pending in self._queue if not pending.result.done()]  # callers that gave up
        if not self._queue:
            return []
        if self._queue[0].solo:
            return [self._queue.pop(0)]
        batch: list[_PendingMint] = []
        while self._queue and not self._queue[0].solo and len(batch) < MAX_BATCH:
            batch.append(self._queue.pop(0))
        return batch

    async def _await_batch(self, tx_hash: int, batch: list[_PendingMint]) -> None:
        retries = max(1, int(self.config.mint_timeout_s / POLL_INTERVAL_S))
        try:
            receipt = await asyncio.wait_for(
                self._client.wait_for_tx(tx_hash, check_interval=POLL_INTERVAL_S, retries=retries),
                timeout=self.config.mint_timeout_s,
            )
        except TransactionRevertedError as exc:
            self._retry_alone_or_fail(batch, MintRejected(_revert_reason(str(exc))))
        except Exception as exc:  # sent, fate unknown (timeout, not received, connection): never "rejected"
            _fail(batch, MintUncertain(f"mint {hex(tx_hash)} not confirmed: {exc}"))
        else:
            for pending in batch:
                if not pending.result.done():
                    pending.result.set_result(receipt)

    def _retry_alone_or_fail(self, batch: list[_PendingMint], exc: MintRejected) -> None:
        """One refused mint spoils its whole multicall: send each of a batch on its own to find which."""
        if len(batch) == 1:
            _fail(batch, exc)
            return
        for pending in batch:
            pending.solo = True
        self._queue[:0] = batch
        if self._batcher is None or self._batcher.done():
            self._batcher = asyncio.create_task(self._send_batches())

    async def _send_batch(self, batch: list[_PendingMint]) -> tuple[list[_PendingMint], int]:
        """Sign, let every caller record (or refuse) the signed mint, then send what is left."""
        async with self._nonce_lock:
            for attempt in range(2):
                nonce = await self._nonce()
                try:
                    while batch:
                        # Fee estimation simulates the calls first: a mint the vault would refuse (paused, hash
                        # already used, not the operator) fails here, before it costs a nonce.
                        signed = await self._operator.sign_invoke_v3(
                            [pending.call for pending in batch], nonce=nonce, auto_estimate=True)
                        mint = SignedMint(hex(signed.calculate_hash(self.config.chain_id)), nonce)
                        kept = _accepted_by_callers(batch, mint)
                        if len(kept) == len(batch):
                            break
                        batch = kept  # signed again without the dropped calls: same nonce, so only one can land
                    if not batch:
                        return [], 0
                    sent = await self._client.send_transaction(signed)
                except ClientError as exc:
                    self._next_nonce = None  # re-read from the chain: someone else may have used the account
                    if is_nonce_error(str(exc)) and attempt == 0:
                        continue
                    if _is_revert(str(exc)):
                        raise MintRejected(_revert_reason(str(exc))) from exc
                    raise
                self._next_nonce = nonce + 1
                self._checkpoint("mint_sent")
                return batch, sent.transaction_hash
        raise AssertionError("unreachable: the loop returns or raises")

    async def _nonce(self) -> int:
        if self._next_nonce is None:
            self._next_nonce = await self._operator.get_nonce(block_number="latest")
        return self._next_nonce

    # -- what a signed mint can still do ------------------------------------------------------------

    def mint_status(self, signed: SignedMint) -> MintStatus:
        return self._loop.run(self._mint_status(signed), timeout=60)

    async def _mint_status(self, signed: SignedMint) -> MintStatus:
        status = await self._tx_status(signed.tx_hash)
        if status is not None:
            return status
        # Unknown to this node: still travelling, sitting in a slow provider, or never sent. It is dead only
        # once the account's nonce (as of the latest accepted block) has moved past the one it was signed with.
        nonce_now = await self._operator.get_nonce(block_number="latest")
        if nonce_now <= signed.nonce:
            return MintStatus(MintFate.PENDING, f"not found; account nonce {nonce_now} <= {signed.nonce}",
                              known_to_node=False)
        status = await self._tx_status(signed.tx_hash)  # it may have landed between the two reads
        if status is not None:
            return status
        return MintStatus(MintFate.DEAD, f"not found; nonce {signed.nonce} used by another transaction "
                                         f"(account nonce {nonce_now})", known_to_node=False)

    async def _tx_status(self, tx_hash: str) -> MintStatus | None:
        try:
            status = await self._client.get_transaction_status(int(tx_hash, 16))
        except ClientError as exc:
            if getattr(exc, "code", None) == TXN_HASH_NOT_FOUND:
                return None
            raise
        finality = status.finality_status.value
        reverted = status.execution_status is not None and status.execution_status.value == "REVERTED"
        if finality in ("ACCEPTED_ON_L2", "ACCEPTED_ON_L1"):
            # Only a block accepted on L2 is final enough to claim the HTLC on, or to call a revert final.
            return MintStatus(MintFate.DEAD if reverted else MintFate.LANDED, f"{finality}{' REVERTED' * reverted}")
        return MintStatus(MintFate.PENDING, f"{finality}{' REVERTED' * reverted}")

    def void_nonce(self, nonce: int) -> None:
        self._loop.run(self._void_up_to(nonce), timeout=self.config.mint_budget_s)

    async def _void_up_to(self, nonce: int) -> None:
        """Use every nonce from the account's current one up to `nonce` with a read-only call, so no signed
        transaction at those nonces can land later; a nonce already used is skipped."""
        harmless = Call(to_addr=self.config.vusd_address, selector=get_selector_from_name("balance_of"),
                        calldata=[self.config.operator_address])
        async with self._nonce_lock:
            self._next_nonce = None
            current = await self._operator.get_nonce(block_number="latest")
            for free_nonce in range(current, nonce + 1):
                try:
                    signed = await self._operator.sign_invoke_v3([harmless], nonce=free_nonce, auto_estimate=True)
                    sent = await self._client.send_transaction(signed)
                except ClientError as exc:
                    if is_nonce_error(str(exc)):
                        continue  # used meanwhile: by the mint itself, or another transaction
                    raise
                await self._client.wait_for_tx(sent.transaction_hash, check_interval=POLL_INTERVAL_S,
                                               retries=max(1, int(self.config.mint_timeout_s / POLL_INTERVAL_S)))

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

    def is_valid_signature(self, account: int, message_hash: int, signature: Sequence[int]) -> SignatureVerdict:
        try:
            answer = self._call(account, "is_valid_signature", [message_hash, len(signature), *signature])
        except ClientError as exc:
            code = getattr(exc, "code", None)
            if code == CONTRACT_NOT_FOUND:
                return SignatureVerdict.NO_ACCOUNT
            if code == ENTRYPOINT_NOT_FOUND:
                return SignatureVerdict.NOT_AN_ACCOUNT
            if code == CONTRACT_ERROR:  # the account refused the signature's shape (some accounts panic on a bad one)
                return SignatureVerdict.INVALID
            raise
        return SignatureVerdict.VALID if answer[:1] == [VALIDATED] else SignatureVerdict.INVALID

    def has_contract(self, address: int) -> bool:
        """Whether anything is deployed at `address` (an account is often deployed only on first use)."""
        try:
            self._loop.run(self._client.get_class_hash_at(address), timeout=10)
        except ClientError as exc:
            if getattr(exc, "code", None) == CONTRACT_NOT_FOUND:
                return False
            raise
        return True

    def is_reachable(self) -> bool:
        try:
            self._loop.run(self._client.get_block_number(), timeout=5)
        except Exception:  # any failure to answer means "down" for the health endpoint
            return False
        return True


@dataclass
class _PendingMint:
    call: Call
    result: asyncio.Future[Any]
    on_signed: Callable[[SignedMint], None] | None = None
    solo: bool = False


def _accepted_by_callers(batch: list[_PendingMint], mint: SignedMint) -> list[_PendingMint]:
    """The mints of the batch whose callers still wait and recorded `mint`; the others are told why."""
    kept = []
    for pending in batch:
        if pending.result.done():  # its caller gave up waiting: it must not go out any more
            continue
        try:
            if pending.on_signed is not None:
                pending.on_signed(mint)
        except MintAbandoned as exc:
            pending.result.set_exception(exc)
            continue
        kept.append(pending)
    return kept


def _fail(batch: list[_PendingMint], exc: BaseException) -> None:
    for pending in batch:
        if not pending.result.done():
            pending.result.set_exception(exc)


def is_nonce_error(message: str) -> bool:
    """The node refused a transaction for its nonce (already used, or ahead of the account's): read the
    account's nonce again and retry."""
    return "nonce" in message.lower()


def _is_revert(message: str) -> bool:
    return any(marker in message for marker in ("revert", "Revert", "execution", "Execution", "Failure reason"))


def _revert_reason(message: str) -> str:
    """The vault's short-string reason ('PAUSED', 'PAYMENT_ALREADY_USED', …) if the message has one."""
    for reason in ("PAYMENT_ALREADY_USED", "ONLY_OPERATOR", "PAUSED", "ZERO_RECIPIENT", "ZERO_AMOUNT"):
        if reason in message or reason.encode().hex() in message:
            return reason
    return message[:300]
