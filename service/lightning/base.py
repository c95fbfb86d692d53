"""The one small interface every Lightning backend (lnd, CLN) implements, as LNbits' funding sources do.

"Unknown" is never "failed": a backend that cannot tell reports `InvoiceState.UNKNOWN` and the caller
treats it as still pending.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class InvoiceState(StrEnum):
    OPEN = "open"
    ACCEPTED = "accepted"  # HTLC held, funds locked, waiting for our settle or cancel
    SETTLED = "settled"
    CANCELED = "canceled"
    UNKNOWN = "unknown"

    @classmethod
    def from_node(cls, name: str) -> InvoiceState:
        """lnd and the CLN holdinvoice plugin both name states OPEN, ACCEPTED, SETTLED, CANCELED."""
        try:
            state = cls(name.lower())
        except ValueError:
            return cls.UNKNOWN
        return state


@dataclass(frozen=True)
class HoldInvoice:
    payment_hash_hex: str
    bolt11: str


@dataclass(frozen=True)
class InvoiceStatus:
    payment_hash_hex: str
    state: InvoiceState
    amount_paid_msat: int = 0
    # Of the HTLCs held (ACCEPTED): when the first was accepted, and the lowest block height at which one
    # expires. lnd cancels held HTLCs on its own a few blocks before that height (`holdexpirydelta`).
    accepted_at: datetime | None = None
    htlc_expiry_height: int | None = None


class LightningError(RuntimeError):
    """The backend refused or could not be reached; the message says which."""


class LightningBackend(ABC):
    name: str

    @abstractmethod
    def create_hold_invoice(
        self, preimage: bytes, payment_hash: bytes, amount_msat: int, memo: str, expiry_s: int,
        description_hash: bytes | None = None,
    ) -> HoldInvoice:
        """An invoice whose HTLCs are held until we settle or cancel. lnd is given only the hash; CLN's
        holdinvoice plugin needs the preimage up front (it stays on our own node either way).

        `description_hash` (32 bytes): the invoice commits to it (BOLT 11 `h`) instead of carrying `memo`
        (`d`), as LNURL-pay requires (the sha256 of its metadata); the memo then stays on our own node."""

    @abstractmethod
    def settle_hold_invoice(self, preimage: bytes) -> None: ...

    @abstractmethod
    def cancel_hold_invoice(self, payment_hash: bytes) -> None: ...

    @abstractmethod
    def invoice_status(self, payment_hash: bytes) -> InvoiceStatus: ...

    @abstractmethod
    def watch_invoice(self, payment_hash: bytes) -> Iterator[InvoiceStatus]:
        """Yield the invoice's state now and on every change, until it is final or the stream drops."""

    async def watch_invoice_async(self, payment_hash: bytes) -> AsyncIterator[InvoiceStatus]:
        """`watch_invoice` on an event loop, so one thread can follow thousands of invoices. lnd overrides it
        with its stream; this default runs the blocking iterator a step at a time on the loop's executor (a
        thread is busy only while a step waits: fine for fakes, costly for a backend that polls by sleeping)."""
        loop, finished = asyncio.get_running_loop(), object()
        statuses = iter(self.watch_invoice(payment_hash))
        while (status := await loop.run_in_executor(None, next, statuses, finished)) is not finished:
            assert isinstance(status, InvoiceStatus)
            yield status

    @abstractmethod
    def block_height(self) -> int:
        """The node's view of the Bitcoin chain tip, to compare with a held HTLC's expiry height."""

    @abstractmethod
    def is_reachable(self) -> bool: ...
