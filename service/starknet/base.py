"""What the service needs from Starknet, as two small interfaces the domain logic depends on."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from service.domain.pricing import Price


@dataclass(frozen=True)
class MintReceipt:
    tx_hash: str
    block_number: int | None


@dataclass(frozen=True)
class SignedMint:
    """A mint transaction signed by the operator account: its hash, and the account nonce it uses.

    Starknet transactions never expire: a signed invoke can land until its nonce is used by another one."""

    tx_hash: str
    nonce: int


class MintRejected(RuntimeError):
    """The vault refused the mint (reverted or failed validation): nothing was minted."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MintUncertain(RuntimeError):
    """The mint may have been sent but its fate is unknown (timeout, lost connection): ask `mint_fate`."""


class MintAbandoned(RuntimeError):
    """Raised by an `on_signed` callback: this mint must not go out (its order moved on, or its caller gave
    up); the client drops it from its batch before anything is sent."""


class MintFate(StrEnum):
    """What a signed mint can still do, decided from the transaction's own status, then its nonce."""

    LANDED = "landed"  # ACCEPTED_ON_L2 (or L1) and succeeded: the mint is on chain
    PENDING = "pending"  # received, pre-confirmed, or unknown while its nonce is unused: it may still land
    DEAD = "dead"  # reverted, rejected, or its nonce was used by another transaction: it can never land


@dataclass(frozen=True)
class MintStatus:
    fate: MintFate
    detail: str  # the node's own words: "RECEIVED", "not found, account nonce 7 <= 9", …
    known_to_node: bool = True


class VaultGateway(ABC):
    @abstractmethod
    def mint_for_payment(
        self, recipient: int, amount_base_units: int, payment_hash: bytes,
        on_signed: Callable[[SignedMint], None] | None = None,
    ) -> MintReceipt:
        """Mint, wait until accepted on L2, and confirm the LightningMint event carries these exact values.

        `on_signed` gets the signed transaction before it is sent, so the caller can record it (after a crash
        that record says whether a mint may still land); it raises `MintAbandoned` to stop this mint."""

    @abstractmethod
    def mint_status(self, signed: SignedMint) -> MintStatus:
        """Whether this signed mint landed, may still land, or never can."""

    @abstractmethod
    def void_nonce(self, nonce: int) -> None:
        """Send a harmless transaction with this nonce, so a signed mint that uses it can never land. If the
        mint gets there first, the void is refused and the mint is what `mint_status` then finds."""

    @abstractmethod
    def is_payment_used(self, payment_hash: bytes) -> bool: ...

    @abstractmethod
    def vusd_balance(self, address: int) -> int: ...

    @abstractmethod
    def is_reachable(self) -> bool: ...


class PriceSource(ABC):
    @abstractmethod
    def btc_usd(self) -> Price:
        """The BTC/USD price with the time it was last updated; the caller decides if it is too old."""
