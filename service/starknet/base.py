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


class MintRejected(RuntimeError):
    """The vault refused the mint (reverted or failed validation): nothing was minted."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MintUncertain(RuntimeError):
    """The mint was sent but its fate is unknown (timeout, lost connection): ask `is_payment_used`."""


class MintTxState(StrEnum):
    ACCEPTED = "accepted"
    REVERTED = "reverted"
    PENDING = "pending"  # received by the network, may still land
    UNKNOWN = "unknown"  # the network does not know it: it never went out, or was dropped


class VaultGateway(ABC):
    @abstractmethod
    def mint_for_payment(
        self, recipient: int, amount_base_units: int, payment_hash: bytes,
        on_signed: Callable[[str], None] | None = None,
    ) -> MintReceipt:
        """Mint, wait until accepted, and confirm the LightningMint event carries these exact values.

        `on_signed` gets the transaction hash before the transaction is sent, so the caller can record it:
        after a crash, that hash tells whether a mint may still land."""

    @abstractmethod
    def mint_tx_state(self, tx_hash: str) -> MintTxState: ...

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
