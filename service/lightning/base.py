"""The interface every Lightning backend (lnd, CLN) implements, as LNbits' funding sources do: the domain's
`HoldInvoiceNode` (service.domain.ports, with the invoice types it speaks in) and what the worker and the health
check add to it (following an invoice, reachability). The types are re-exported here for the backends.
"""

from __future__ import annotations

import asyncio
from abc import abstractmethod
from collections.abc import AsyncIterator, Iterator

from service.domain.ports import HoldInvoice, HoldInvoiceNode, InvoiceState, InvoiceStatus, LightningError

__all__ = ["HoldInvoice", "InvoiceState", "InvoiceStatus", "LightningBackend", "LightningError"]


class LightningBackend(HoldInvoiceNode):
    name: str

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
    def is_reachable(self) -> bool: ...
