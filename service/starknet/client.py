"""The vault, VUSD and price oracle on Starknet, through starknet-py.

Mints go out through mint lanes (service.starknet.lanes): one per operator account the vault accepts, each with
its own nonce and batches. With lane leases (several workers on one database), this process sends only from the
lanes it has leased: a mint goes to an idle lane it holds, else to a free lane it leases now, else to its least
loaded lane; holding none and finding none free, the mint is deferred before anything is signed. Idle lanes are
given back so other workers can take them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from starknet_py.cairo.felt import encode_shortstring
from starknet_py.hash.selector import get_selector_from_name
from starknet_py.net.client_errors import ClientError
from starknet_py.net.client_models import Call
from starknet_py.net.full_node_client import FullNodeClient
from starknet_py.net.models import StarknetChainId

from service.config import Settings
from service.domain.ports import (
    AccountSignatures,
    MintDeferred,
    MintFate,
    MintReceipt,
    MintStatus,
    MintUncertain,
    PriceSource,
    SignatureVerdict,
    SignedMint,
    VaultGateway,
)
from service.domain.pricing import Price, price_from_oracle
from service.starknet.lanes import MintLane
from service.starknet.loop import LoopThread
from service.starknet.signer import signing_account

log = logging.getLogger("volta.starknet")
BTC_USD_PAIR = encode_shortstring("BTC/USD")
LIGHTNING_MINT_SELECTOR = get_selector_from_name("LightningMint")
_U128 = 2**128
TXN_HASH_NOT_FOUND = 29  # Starknet JSON-RPC error code
CONTRACT_NOT_FOUND = 20  # Starknet JSON-RPC error codes of starknet_call
ENTRYPOINT_NOT_FOUND = 21
CONTRACT_ERROR = 40
VALIDATED = encode_shortstring("VALID")  # what SNIP-6's is_valid_signature answers for a good signature
LANE_IDLE_CHECK_S = 1.0


def split_u256(value: int) -> list[int]:
    return [value % _U128, value // _U128]


def join_u256(low: int, high: int) -> int:
    return low + high * _U128


@dataclass(frozen=True)
class OperatorKey:
    address: int
    private_key: int = field(repr=False)


class LaneLeases(Protocol):
    """Which mint lanes this process may send from (service.storage.lanes); blocking calls."""

    def take(self, account: str) -> bool: ...

    def holds(self, account: str) -> bool: ...

    def release(self, account: str) -> None: ...


@dataclass(frozen=True)
class StarknetConfig:
    rpc_url: str
    vault_address: int
    vusd_address: int
    oracle_address: int
    operator_address: int
    operator_private_key: int | None = field(repr=False)  # None: this process reads the chain, never signs a mint
    chain_id: int = StarknetChainId.SEPOLIA
    mint_timeout_s: float = 60.0
    answer_margin_s: float = 30.0  # signing, fee estimation, sending: with mint_timeout_s, one attempt's budget
    lane_accounts: tuple[OperatorKey, ...] = ()  # operators beyond the first: one more mint lane each
    lane_idle_release_s: float = 10.0
    lanes_per_worker: int = 0  # 0: no cap

    @property
    def mint_budget_s(self) -> float:
        return self.mint_timeout_s + self.answer_margin_s

    @property
    def operators(self) -> tuple[OperatorKey, ...]:
        if self.operator_private_key is None:
            return ()
        return (OperatorKey(self.operator_address, self.operator_private_key), *self.lane_accounts)

    @classmethod
    def from_settings(cls, settings: Settings, signs_mints: bool = True) -> StarknetConfig:
        """The one way from the service's settings to its Starknet config, signing as the operator and the mint
        lanes. Without `signs_mints` (an API instance) no private key is read: a process that serves the public
        holds none of the keys that mint."""
        if not settings.starknet_rpc_url:
            raise ValueError("no Starknet configured: set VOLTA_STARKNET_RPC_URL (or VOLTA_REGTEST_STATE)")
        return cls(
            rpc_url=settings.starknet_rpc_url,
            vault_address=int(settings.vault_address, 16),
            vusd_address=int(settings.vusd_address, 16),
            oracle_address=int(settings.oracle_address, 16),
            operator_address=int(settings.operator_address, 16),
            operator_private_key=settings.operator_key() if signs_mints else None,
            chain_id=int(settings.starknet_chain_id, 16),
            mint_timeout_s=settings.mint_timeout_s,
            answer_margin_s=settings.mint_answer_margin_s,
            lane_accounts=tuple(OperatorKey(int(lane.address, 16), lane.private_key())
                                for lane in settings.mint_lane_accounts) if signs_mints else (),
            lane_idle_release_s=settings.mint_lane_idle_release_s,
            lanes_per_worker=settings.mint_lanes_per_worker,
        )


class StarknetClient(VaultGateway, PriceSource, AccountSignatures):
    def __init__(self, config: StarknetConfig, checkpoint: Callable[[str], None] | None = None,
                 leases: LaneLeases | None = None) -> None:
        """Without `leases` this process sends from every lane (one worker, or a test)."""
        self.config = config
        checkpoint = checkpoint or (lambda point: None)  # test-only pauses (settlement.Checkpoint)
        self._loop = LoopThread()
        self._client = FullNodeClient(node_url=config.rpc_url)
        self._leases = leases
        self._lanes = [
            MintLane(signing_account(operator.address, operator.private_key, self._client, config.chain_id),
                     self._client, config.chain_id, config.mint_timeout_s,
                     self._lease_check(hex(operator.address)), checkpoint)
            for operator in config.operators]
        self._choosing = asyncio.Lock()  # one mint at a time picks (and maybe leases) a lane
        self._idle_releaser: asyncio.Task[None] | None = None

    @property
    def lanes(self) -> list[MintLane]:
        return list(self._lanes)

    def close(self) -> None:
        if self._idle_releaser is not None:
            self._loop.run(self._stop_idle_releaser(), timeout=5)
        self._loop.close()

    async def _stop_idle_releaser(self) -> None:
        if self._idle_releaser is not None:
            self._idle_releaser.cancel()
            await asyncio.gather(self._idle_releaser, return_exceptions=True)

    # -- minting ------------------------------------------------------------------------------------

    def mint_for_payment(
        self, recipient: int, amount_base_units: int, payment_hash: bytes,
        on_signed: Callable[[SignedMint], None] | None = None,
    ) -> MintReceipt:
        self._require_keys()
        hash_int = int.from_bytes(payment_hash, "big")
        call = Call(
            to_addr=self.config.vault_address,
            selector=get_selector_from_name("mint_for_payment"),
            calldata=[recipient, *split_u256(amount_base_units), *split_u256(hash_int)],
        )
        try:
            receipt = self._loop.run(self._mint(call, on_signed), timeout=self.config.mint_budget_s)
        except concurrent.futures.TimeoutError as exc:
            raise MintUncertain(f"no answer about the mint within {self.config.mint_budget_s:.0f}s") from exc
        self._verify_mint_event(receipt, recipient, amount_base_units, hash_int)
        return MintReceipt(hex(receipt.transaction_hash), getattr(receipt, "block_number", None))

    # -- choosing a lane -------------------------------------------------------------------------------

    async def _mint(self, call: Call, on_signed: Callable[[SignedMint], None] | None) -> Any:
        lane = await self._lane_for_mint()
        return await lane.mint(call, on_signed)

    async def _lane_for_mint(self) -> MintLane:
        async with self._choosing:
            held = [lane for lane in self._lanes if self._holds(lane)]
            idle = [lane for lane in held if not lane.busy]
            if idle:
                return idle[0]
            if self.config.lanes_per_worker == 0 or len(held) < self.config.lanes_per_worker:
                for lane in self._lanes:  # every lane we hold is busy: spread onto a free one, if any
                    if lane not in held and await asyncio.to_thread(self._take, lane):
                        lane.forget_nonce()
                        if self._idle_releaser is None:
                            self._idle_releaser = asyncio.create_task(self._release_idle_lanes())
                        return lane
            if held:
                return min(held, key=lambda lane: lane.load)
        raise MintDeferred(f"every mint lane ({len(self._lanes)}) is leased to another worker")

    def _holds(self, lane: MintLane) -> bool:
        return self._leases is None or self._leases.holds(lane.address)

    def _take(self, lane: MintLane) -> bool:
        assert self._leases is not None
        try:
            return self._leases.take(lane.address)
        except Exception:  # the database is away: no lane is taken, and a mint with none is deferred
            log.warning("could not lease mint lane %s", lane.address, exc_info=True)
            return False

    def _lease_check(self, account: str) -> Callable[[], Any]:
        async def still_ours() -> bool:
            return self._leases is None or self._leases.holds(account)
        return still_ours

    async def _release_idle_lanes(self) -> None:
        """Give back lanes idle for a while, so a worker with more mints to send can lease them."""
        assert self._leases is not None
        while True:
            await asyncio.sleep(LANE_IDLE_CHECK_S)
            async with self._choosing:
                now = time.monotonic()
                for lane in self._lanes:
                    if (self._leases.holds(lane.address) and not lane.busy
                            and now - lane.last_active > self.config.lane_idle_release_s):
                        try:
                            await asyncio.to_thread(self._leases.release, lane.address)
                        except Exception:  # the database is away: the lease runs out, or the next check releases
                            log.warning("could not give back idle mint lane %s", lane.address, exc_info=True)

    # -- what a signed mint can still do ------------------------------------------------------------

    def mint_status(self, signed: SignedMint) -> MintStatus:
        return self._loop.run(self._mint_status(signed), timeout=60)

    async def _mint_status(self, signed: SignedMint) -> MintStatus:
        status = await self._tx_status(signed.tx_hash)
        if status is not None:
            return status
        # Unknown to this node: still travelling, sitting in a slow provider, or never sent. It is dead only
        # once the account's nonce (as of the latest accepted block) has moved past the one it was signed with.
        account = int(signed.account, 16) if signed.account else self.config.operator_address
        nonce_now = await self._client.get_contract_nonce(account, block_number="latest")
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

    def void_nonce(self, nonce: int, account: str | None = None) -> None:
        lane = self._lane_of(account)
        harmless = Call(to_addr=self.config.vusd_address, selector=get_selector_from_name("balance_of"),
                        calldata=[lane.account.address])
        self._loop.run(lane.void_up_to(nonce, harmless), timeout=self.config.mint_budget_s)

    def _require_keys(self) -> None:
        if not self._lanes:
            raise RuntimeError("this process signs no mints: it was built without the operator's keys (an API "
                               "instance); workers and the reconcile command mint and void nonces")

    def _lane_of(self, account: str | None) -> MintLane:
        """The lane of a recorded mint's account (None: the first operator). A void may use a lane another
        worker leases: its next send then meets a used nonce and reads the nonce again."""
        self._require_keys()
        address = int(account, 16) if account else self.config.operator_address
        for lane in self._lanes:
            if lane.account.address == address:
                return lane
        raise RuntimeError(f"operator account {hex(address)} is not configured here (VOLTA_MINT_LANE_ACCOUNTS): "
                           "its nonce cannot be voided")

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
