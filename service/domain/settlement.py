"""Settling an order: from the held HTLC to VUSD minted and the HTLC claimed, or the sats returned.

Each step writes its state before the side effect it allows (mint, settle, cancel), so a crash at
any point resumes from the database: `minting` first asks the vault whether the payment hash was
used, `minted` is settled, and a refund whose cancel did not reach lnd is cancelled again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from service.config import Settings
from service.domain.orders import DAY
from service.domain.pricing import StalePrice, ensure_fresh, slippage_bps, vusd_base_units
from service.domain.states import IllegalTransition, OrderStatus, RefundReason
from service.lightning.base import InvoiceState, InvoiceStatus, LightningBackend, LightningError
from service.starknet.base import MintRejected, MintTxState, MintUncertain, PriceSource, VaultGateway
from service.storage.models import OrderRow
from service.storage.orders import OrderRepository

log = logging.getLogger("volta.settlement")


@dataclass
class Settlement:
    settings: Settings
    repository: OrderRepository
    lightning: LightningBackend
    vault: VaultGateway
    prices: PriceSource
    clock: Callable[[], datetime]
    on_double_mint_refused: Callable[[], None] = lambda: None

    # -- entry points ---------------------------------------------------------------------------------

    def on_invoice_status(self, order_id: str, invoice: InvoiceStatus) -> None:
        """What the node says about an order's invoice, from the stream or from a re-check."""
        order = self.repository.get(order_id)
        status = OrderStatus(order.status)
        if status is OrderStatus.AWAITING_PAYMENT and invoice.state is InvoiceState.ACCEPTED:
            order = self.repository.transition(
                order.id, OrderStatus.PAYMENT_HELD, amount_paid_msat=invoice.amount_paid_msat,
                hold_deadline=self.clock() + timedelta(seconds=self.settings.max_hold_s),
            )
            self.resume(order)
        elif status is OrderStatus.AWAITING_PAYMENT and invoice.state is InvoiceState.CANCELED:
            self.repository.transition(order.id, OrderStatus.EXPIRED, detail="invoice cancelled by the node")
        elif status is OrderStatus.AWAITING_PAYMENT and self.clock() > order.expires_at:
            self._expire(order)

    def resume(self, order: OrderRow) -> None:
        """Carry an order on from whatever state the database has it in."""
        status = OrderStatus(order.status)
        try:
            if status is OrderStatus.PAYMENT_HELD:
                self._check_and_mint(order)
            elif status is OrderStatus.MINTING:
                self._resume_minting(order)
            elif status is OrderStatus.MINTED:
                self._settle(order)
        except IllegalTransition as exc:
            log.info("order %s moved on elsewhere: %s", order.id, exc)  # another worker got there first

    def enforce_refund(self, order: OrderRow) -> None:
        """A refunded or expired order must not leave an HTLC held: cancel again if lnd still has it accepted."""
        if self.lightning.invoice_status(bytes.fromhex(order.payment_hash)).state is InvoiceState.ACCEPTED:
            self.lightning.cancel_hold_invoice(bytes.fromhex(order.payment_hash))

    # -- the steps -----------------------------------------------------------------------------------

    def _check_and_mint(self, order: OrderRow) -> None:
        reason, detail = self._refund_reason(order)
        if reason is not None:
            self._refund(order, reason, detail)
            return
        invoice = self.lightning.invoice_status(bytes.fromhex(order.payment_hash))
        if invoice.state is not InvoiceState.ACCEPTED:  # lnd let it go (CLTV near): nothing to mint for
            self._refund(order, RefundReason.QUOTE_EXPIRED, f"the node no longer holds the HTLC ({invoice.state})")
            return
        if self.vault.is_payment_used(bytes.fromhex(order.payment_hash)):
            # Never minted by this order (it is only now leaving payment_held), yet used on chain: an
            # operator must look; refunding could pay twice, settling could take sats for nothing.
            log.error("order %s: payment hash already used on the vault before minting; needs an operator", order.id)
            self.repository.transition(order.id, OrderStatus.FAILED, detail="payment hash already used on the vault",
                                       failure_detail="payment hash already used on the vault before minting")
            return
        order = self.repository.transition(order.id, OrderStatus.MINTING)
        self._fault_pause(OrderStatus.MINTING.value)
        self._mint(order)

    def _resume_minting(self, order: OrderRow) -> None:
        if self.vault.is_payment_used(bytes.fromhex(order.payment_hash)):
            order = self.repository.transition(order.id, OrderStatus.MINTED, detail="mint found on the vault")
            self._settle(order)
        elif order.mint_tx_hash and self.vault.mint_tx_state(order.mint_tx_hash) is MintTxState.PENDING:
            # A sent mint may still land: keep holding the HTLC rather than refund and mint anyway. The hold
            # bound yields here to "never VUSD without the sats"; lnd still cancels before the CLTV runs out.
            log.warning("order %s: mint %s still pending; holding the HTLC", order.id, order.mint_tx_hash)
        elif not self._time_to_mint(order):
            self._refund(order, RefundReason.MINT_FAILED, "mint not confirmed within the hold bound")
        else:
            self._mint(order)

    def _mint(self, order: OrderRow) -> None:
        recipient = int(order.starknet_address, 16)
        amount = vusd_base_units(Decimal(order.vusd_amount))
        started = time.monotonic()
        try:
            receipt = self.vault.mint_for_payment(
                recipient, amount, bytes.fromhex(order.payment_hash),
                on_signed=lambda tx_hash: self.repository.record_mint_tx(order.id, tx_hash),
            )
        except MintRejected as exc:
            if exc.reason == "PAYMENT_ALREADY_USED":  # our own earlier attempt landed
                self.on_double_mint_refused()
                order = self.repository.transition(order.id, OrderStatus.MINTED, detail="mint found on the vault")
                self._settle(order)
                return
            self._refund(order, RefundReason.MINT_FAILED, f"vault refused the mint: {exc.reason}")
            return
        except MintUncertain as exc:
            log.warning("order %s: mint uncertain (%s); will ask the vault again", order.id, exc)
            return  # stays `minting`; the re-check asks is_payment_used, and refunds after the hold deadline
        log.info("order %s minted in %.2fs: %s", order.id, time.monotonic() - started, receipt.tx_hash)
        self._fault_pause("mint_sent")
        order = self.repository.transition(order.id, OrderStatus.MINTED, mint_tx_hash=receipt.tx_hash)
        self._fault_pause(OrderStatus.MINTED.value)
        self._settle(order)

    def _settle(self, order: OrderRow) -> None:
        payment_hash = bytes.fromhex(order.payment_hash)
        try:
            self.lightning.settle_hold_invoice(bytes.fromhex(order.preimage))
        except LightningError:
            state = self.lightning.invoice_status(payment_hash).state
            if state is InvoiceState.CANCELED:
                # VUSD was minted but the HTLC is gone: only an operator can make this right.
                log.error("order %s: minted but the node cancelled the HTLC; needs an operator", order.id)
                self.repository.transition(order.id, OrderStatus.FAILED, detail="HTLC cancelled after the mint",
                                           failure_detail="minted, but lnd cancelled the held HTLC")
                return
            if state is not InvoiceState.SETTLED:
                raise  # lnd unreachable or refusing: stays `minted`, the re-check tries again
        self.repository.transition(order.id, OrderStatus.COMPLETED)

    def _refund(self, order: OrderRow, reason: RefundReason, detail: str) -> None:
        log.info("order %s refunded: %s (%s)", order.id, reason.value, detail)
        self.repository.transition(order.id, OrderStatus.REFUNDED, detail=detail, refund_reason=reason.value)
        self.lightning.cancel_hold_invoice(bytes.fromhex(order.payment_hash))

    def _expire(self, order: OrderRow) -> None:
        self.repository.transition(order.id, OrderStatus.EXPIRED, detail="not paid before the quote expired")
        # If a payment slipped in at the last moment, this cancel hands the sats straight back.
        self.lightning.cancel_hold_invoice(bytes.fromhex(order.payment_hash))

    # -- checks ---------------------------------------------------------------------------------------

    def _refund_reason(self, order: OrderRow) -> tuple[RefundReason | None, str]:
        now = self.clock()
        if (order.amount_paid_msat or 0) < order.amount_msat:
            return RefundReason.UNDERPAID, f"paid {order.amount_paid_msat} msat of {order.amount_msat}"
        if now > order.expires_at or not self._time_to_mint(order):
            return RefundReason.QUOTE_EXPIRED, "the HTLC arrived or was processed too late to mint in time"
        try:
            price = ensure_fresh(self.prices.btc_usd(), now.timestamp(), self.settings.max_price_age_s)
        except StalePrice as exc:
            return RefundReason.SLIPPAGE_EXCEEDED, f"cannot check slippage: {exc}"
        moved_bps = slippage_bps(Decimal(order.btc_usd_rate), price.btc_usd)
        if moved_bps > order.max_slippage_bps:
            return RefundReason.SLIPPAGE_EXCEEDED, f"price moved {moved_bps:.1f} bps (bound {order.max_slippage_bps})"
        used = self.repository.vusd_committed_since(order.starknet_address, now - DAY, excluding=order.id)
        if used + Decimal(order.vusd_amount) > self.settings.max_vusd_per_address_per_day:
            return RefundReason.LIMIT_EXCEEDED, f"address already bought {used} VUSD in 24 h"
        return None, ""

    def _time_to_mint(self, order: OrderRow) -> bool:
        """Whether a mint attempt started now ends before the hold deadline, whatever it does."""
        if order.hold_deadline is None:
            return True
        return (order.hold_deadline - self.clock()).total_seconds() >= self.settings.mint_budget_s

    def _fault_pause(self, point: str) -> None:
        """Test-only: hold still at `point` (a state just entered, or "mint_sent": the mint landed but is not
        yet written down), so a test can kill the process exactly there."""
        state, _, seconds = self.settings.fault_pause_after.partition(":")
        if state == point:
            log.warning("fault injection: pausing %ss in %s", seconds, state)
            time.sleep(float(seconds or 30))
