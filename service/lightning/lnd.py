"""The lnd backend: hold invoices over lnd's REST API (needs lnd built with `invoicesrpc`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx

from service.lightning.base import HoldInvoice, InvoiceState, InvoiceStatus, LightningBackend, LightningError
from service.lightning.lnd_rest import LndError, LndRestClient


def _status(payment_hash: bytes, invoice: dict[str, Any]) -> InvoiceStatus:
    state = InvoiceState.from_node(str(invoice.get("state", "")))
    paid_msat = int(invoice.get("amt_paid_msat", 0) or 0)
    held = [htlc for htlc in invoice.get("htlcs", []) if htlc.get("state") == "ACCEPTED"]
    if state is InvoiceState.ACCEPTED and not paid_msat:
        # lnd fills amt_paid_msat only at settle; while held, the HTLCs say what arrived.
        paid_msat = sum(int(htlc.get("amt_msat", 0)) for htlc in held)
    accepted_at = min((int(htlc["accept_time"]) for htlc in held if htlc.get("accept_time")), default=None)
    expiry = min((int(htlc["expiry_height"]) for htlc in held if htlc.get("expiry_height")), default=None)
    return InvoiceStatus(
        payment_hash.hex(), state, paid_msat,
        accepted_at=datetime.fromtimestamp(accepted_at, UTC) if accepted_at else None,
        htlc_expiry_height=expiry,
    )


class LndBackend(LightningBackend):
    name = "lnd"

    def __init__(self, client: LndRestClient) -> None:
        self.client = client

    def create_hold_invoice(
        self, preimage: bytes, payment_hash: bytes, amount_msat: int, memo: str, expiry_s: int,
        description_hash: bytes | None = None,
    ) -> HoldInvoice:
        del preimage  # lnd holds by hash; the preimage goes to lnd only when we settle
        try:
            bolt11 = self.client.add_hold_invoice(payment_hash, amount_msat, memo=memo, expiry_s=expiry_s,
                                                  description_hash=description_hash)
        except (LndError, httpx.TransportError) as exc:
            raise LightningError(f"lnd could not create the hold invoice: {exc}") from exc
        return HoldInvoice(payment_hash.hex(), bolt11)

    def settle_hold_invoice(self, preimage: bytes) -> None:
        try:
            self.client.settle_invoice(preimage)
        except (LndError, httpx.TransportError) as exc:
            raise LightningError(f"lnd could not settle the hold invoice: {exc}") from exc

    def cancel_hold_invoice(self, payment_hash: bytes) -> None:
        try:
            self.client.cancel_invoice(payment_hash)
        except (LndError, httpx.TransportError) as exc:
            raise LightningError(f"lnd could not cancel invoice {payment_hash.hex()}: {exc}") from exc

    def invoice_status(self, payment_hash: bytes) -> InvoiceStatus:
        try:
            return _status(payment_hash, self.client.lookup_invoice(payment_hash))
        except (LndError, httpx.TransportError) as exc:
            raise LightningError(f"lnd could not look up invoice {payment_hash.hex()}: {exc}") from exc

    def watch_invoice(self, payment_hash: bytes) -> Iterator[InvoiceStatus]:
        try:
            for invoice in self.client.subscribe_invoice(payment_hash):
                yield _status(payment_hash, invoice)
        except (LndError, httpx.TransportError) as exc:
            raise LightningError(f"invoice stream for {payment_hash.hex()} dropped: {exc}") from exc

    async def watch_invoice_async(self, payment_hash: bytes) -> AsyncIterator[InvoiceStatus]:
        try:
            async for invoice in self.client.subscribe_invoice_async(payment_hash):
                yield _status(payment_hash, invoice)
        except (LndError, httpx.TransportError) as exc:
            raise LightningError(f"invoice stream for {payment_hash.hex()} dropped: {exc}") from exc

    def block_height(self) -> int:
        try:
            return int(self.client.get_info()["block_height"])
        except (LndError, httpx.TransportError) as exc:
            raise LightningError(f"lnd could not say its block height: {exc}") from exc

    def is_reachable(self) -> bool:
        try:
            return bool(self.client.get_info().get("synced_to_chain"))
        except (LndError, httpx.TransportError):
            return False
