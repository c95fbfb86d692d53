"""Mint lanes: one operator account each, with its own nonce and its own batches.

A lane owns its account's nonce: one task sends, in order (concurrent mints on a lane never collide), and
waiting for acceptance happens off the send path (one slow mint does not hold the next batch back). Mints that
queue up while the lane signs and sends go out together as one multicall transaction.

A mint goes out only if its `on_signed` callback accepts the signed transaction (the caller records it under its
order's claim); a mint whose caller gave up, or whose callback refuses, is dropped from its batch and the rest is
signed again with the same nonce, so the dropped one can never land.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from starknet_py.net.account.account import Account
from starknet_py.net.client_errors import ClientError
from starknet_py.net.client_models import Call
from starknet_py.net.full_node_client import FullNodeClient
from starknet_py.transaction_errors import TransactionRevertedError

from service.domain.ports import MintAbandoned, MintDeferred, MintRejected, MintUncertain, SignedMint

MAX_BATCH = 20
POLL_INTERVAL_S = 0.1


class MintLane:
    def __init__(self, account: Account, client: FullNodeClient, chain_id: int, mint_timeout_s: float,
                 still_ours: Callable[[], Coroutine[Any, Any, bool]], checkpoint: Callable[[str], None]) -> None:
        self.account = account
        self.address = hex(account.address)
        self._client = client
        self._chain_id = chain_id
        self._mint_timeout_s = mint_timeout_s
        self._still_ours = still_ours  # the lease check before each batch is signed
        self._checkpoint = checkpoint
        self._nonce_lock = asyncio.Lock()  # only the batch task and voids send; the lock keeps them apart
        self._next_nonce: int | None = None
        self._queue: list[_PendingMint] = []
        self._batcher: asyncio.Task[None] | None = None
        self._waiting: set[asyncio.Task[None]] = set()
        self.last_active = time.monotonic()

    def forget_nonce(self) -> None:
        """Read the account's nonce from the chain before the next send: another worker may have sent from it
        since this process last held the lane."""
        self._next_nonce = None

    @property
    def load(self) -> int:
        """Mints queued or awaiting acceptance on this lane."""
        return len(self._queue) + len(self._waiting)

    @property
    def busy(self) -> bool:
        return bool(self._queue) or bool(self._waiting) or (self._batcher is not None and not self._batcher.done())

    async def mint(self, call: Call, on_signed: Callable[[SignedMint], None] | None) -> Any:
        pending = _PendingMint(call, asyncio.get_running_loop().create_future(), on_signed)
        self._queue.append(pending)
        self.last_active = time.monotonic()
        self._start_batcher()
        try:
            return await pending.result
        except asyncio.CancelledError:
            # The caller gave up: a mint still in the queue must never go out after the order was refunded.
            pending.result.cancel()
            raise
        finally:
            self.last_active = time.monotonic()

    def _start_batcher(self) -> None:
        if self._batcher is None or self._batcher.done():
            self._batcher = asyncio.create_task(self._send_batches())

    async def _send_batches(self) -> None:
        while self._queue:
            batch = self._next_batch()
            if not batch:
                break
            try:
                batch, tx_hash = await self._send_batch(batch)
            except MintDeferred as exc:  # the lease is gone: nothing of this lane's queue may be signed here
                _fail(batch + self._queue, exc)
                self._queue.clear()
                break
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
        retries = max(1, int(self._mint_timeout_s / POLL_INTERVAL_S))
        try:
            receipt = await asyncio.wait_for(
                self._client.wait_for_tx(tx_hash, check_interval=POLL_INTERVAL_S, retries=retries),
                timeout=self._mint_timeout_s,
            )
        except TransactionRevertedError as exc:
            self._retry_alone_or_fail(batch, MintRejected(revert_reason(str(exc))))
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
        self._start_batcher()

    async def _send_batch(self, batch: list[_PendingMint]) -> tuple[list[_PendingMint], int]:
        """Sign, let every caller record (or refuse) the signed mint, then send what is left."""
        if not await self._still_ours():
            raise MintDeferred(f"the lease on mint lane {self.address} was lost before signing")
        async with self._nonce_lock:
            for attempt in range(2):
                nonce = await self._nonce()
                try:
                    while batch:
                        # Fee estimation simulates the calls first: a mint the vault would refuse (paused, hash
                        # already used, not an operator) fails here, before it costs a nonce.
                        signed = await self.account.sign_invoke_v3(
                            [pending.call for pending in batch], nonce=nonce, auto_estimate=True)
                        mint = SignedMint(hex(signed.calculate_hash(self._chain_id)), nonce, self.address)
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
                    if is_revert(str(exc)):
                        raise MintRejected(revert_reason(str(exc))) from exc
                    raise
                self._next_nonce = nonce + 1
                self._checkpoint("mint_sent")
                return batch, sent.transaction_hash
        raise AssertionError("unreachable: the loop returns or raises")

    async def _nonce(self) -> int:
        if self._next_nonce is None:
            self._next_nonce = await self.account.get_nonce(block_number="latest")
        return self._next_nonce

    async def void_up_to(self, nonce: int, harmless: Call) -> None:
        """Use every nonce from the account's current one up to `nonce` with a read-only call, so no signed
        transaction at those nonces can land later; a nonce already used is skipped."""
        async with self._nonce_lock:
            self._next_nonce = None
            current = await self.account.get_nonce(block_number="latest")
            for free_nonce in range(current, nonce + 1):
                try:
                    signed = await self.account.sign_invoke_v3([harmless], nonce=free_nonce, auto_estimate=True)
                    sent = await self._client.send_transaction(signed)
                except ClientError as exc:
                    if is_nonce_error(str(exc)):
                        continue  # used meanwhile: by the mint itself, or another transaction
                    raise
                await self._client.wait_for_tx(sent.transaction_hash, check_interval=POLL_INTERVAL_S,
                                               retries=max(1, int(self._mint_timeout_s / POLL_INTERVAL_S)))


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


def is_revert(message: str) -> bool:
    return any(marker in message for marker in ("revert", "Revert", "execution", "Execution", "Failure reason"))


def revert_reason(message: str) -> str:
    """The vault's short-string reason ('PAUSED', 'PAYMENT_ALREADY_USED', …) if the message has one."""
    for reason in ("PAYMENT_ALREADY_USED", "ONLY_OPERATOR", "PAUSED", "ZERO_RECIPIENT", "ZERO_AMOUNT"):
        if reason in message or reason.encode().hex() in message:
            return reason
    return message[:300]
