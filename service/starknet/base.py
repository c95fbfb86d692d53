"""What the service needs from Starknet, as two small interfaces the domain logic depends on."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

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


class VaultGateway(ABC):
    @abstractmethod
    def mint_for_payment(self, recipient: int, amount_base_units: int, payment_hash: bytes) -> MintReceipt:
        """Mint, wait until accepted, and confirm the LightningMint event carries these exact values."""

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
