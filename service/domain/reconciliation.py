"""Reconciliation: every finished order compared with the outside world, repaired where it can be.

The database says what the service did; lnd and the vault say what happened. A completed order must have
its HTLC settled and its payment hash used on the vault; a refunded or expired one its HTLC cancelled (or
never paid) and its hash unused. A completed order whose mint was rolled back by a lost block is minted
again (the payer has paid; the vault refuses a second mint of the hash, so this cannot mint twice). A held
HTLC on a refunded order is cancelled again. Anything else goes to `failed` and is logged at ERROR.

Reading is free; acting is not: an order that disagrees with lnd or the vault is claimed (as the settlement
claims it), read again and checked again under the claim, and every repair is fenced with that claim. An order
another worker holds is left for the next pass.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from service.domain.ports import (
    ClaimLost,
    HoldInvoiceNode,
    InvoiceState,
    MintAbandoned,
    MintDeferred,
    MintFate,
    MintRejected,
    MintUncertain,
    OrderClaim,
    OrderRecord,
    OrderStore,
    SignedMint,
    VaultGateway,
)
from service.domain.preimages import PreimageKeys
from service.domain.pricing import vusd_base_units
from service.domain.settlement import mint_recorder
from service.domain.states import RECONCILED_STATUSES, IllegalTransition, OrderStatus

log = logging.getLogger("volta.reconcile")


class FindingKind(StrEnum):
    MINT_ROLLED_BACK = "mint_rolled_back"  # completed, hash unused: minted again
    MINT_PENDING_AGAIN = "mint_pending_again"  # completed, hash unused, its mint may still land: wait
    HTLC_STILL_HELD = "htlc_still_held"  # refunded/expired, HTLC accepted: cancelled again
    HTLC_NOT_SETTLED = "htlc_not_settled"  # completed, HTLC still accepted: settled again
    CONTRADICTION = "contradiction"  # lnd or the vault contradicts the order beyond repair: failed


@dataclass(frozen=True)
class Finding:
    order_id: str
    kind: FindingKind
    detail: str
    repaired: bool


@dataclass
class Reconciliation:
    repository: OrderStore
    lightning: HoldInvoiceNode
    vault: VaultGateway
    preimages: PreimageKeys
    on_finding: Callable[[Finding], None] = lambda finding: None

    def run(self, since: datetime, expired_since: datetime | None = None,
            expired_limit: int | None = None) -> list[Finding]:
        """Check completed and refunded orders finished since `since`, and expired ones since `expired_since`
        (default `since`), at most `expired_limit` of them (the newest)."""
        findings = []
        for order in self.repository.finished_since(since, expired_since, expired_limit):
            if self.agrees(order):
                continue
            try:
                finding = self._check_claimed(order.id)
            except ClaimLost:  # logged at ERROR where it was refused; the next pass looks again
                continue
            if finding is not None:
                level = logging.WARNING if finding.repaired or finding.kind is FindingKind.MINT_PENDING_AGAIN \
                    else logging.ERROR
                log.log(level, "order %s: %s: %s (%s)", finding.order_id, finding.kind.value, finding.detail,
                        "repaired" if finding.repaired else "not repaired")
                self.on_finding(finding)
                findings.append(finding)
        return findings

    def agrees(self, order: OrderRecord) -> bool:
        """Whether lnd and the vault agree with this finished order (reads only, no claim needed)."""
        payment_hash = bytes.fromhex(order.payment_hash)
        invoice_state = self.lightning.invoice_status(payment_hash).state
        if order.status == OrderStatus.COMPLETED.value:
            return invoice_state is InvoiceState.SETTLED and self.vault.is_payment_used(payment_hash)
        return invoice_state in (InvoiceState.OPEN, InvoiceState.CANCELED) and not self.vault.is_payment_used(
            payment_hash)

    def _check_claimed(self, order_id: str) -> Finding | None:
        with self.repository.claims.holding(order_id) as claim:
            if claim is None:
                log.info("order %s: another worker is acting on it; reconciled on the next pass", order_id)
                return None
            order = self.repository.get(order_id)  # as it is now, under the claim
            if order.status not in RECONCILED_STATUSES:
                return None
            return self.check(order, claim)

    def check(self, order: OrderRecord, claim: OrderClaim) -> Finding | None:
        if order.status == OrderStatus.COMPLETED.value:
            return self._check_completed(order, claim)
        return self._check_ended_without_vusd(order, claim)

    def _check_completed(self, order: OrderRecord, claim: OrderClaim) -> Finding | None:
        invoice = self.lightning.invoice_status(bytes.fromhex(order.payment_hash))
        if invoice.state is InvoiceState.CANCELED:
            return self._fail(order, "completed, but lnd cancelled the HTLC: VUSD minted without the sats", claim)
        if invoice.state is InvoiceState.ACCEPTED:  # the settle never reached lnd
            self.repository.claims.check(claim, "settle the HTLC")
            self.lightning.settle_hold_invoice(self.preimages.preimage_for(order))
            return self._found(order, FindingKind.HTLC_NOT_SETTLED, "HTLC was still held; settled it", True)
        if self.vault.is_payment_used(bytes.fromhex(order.payment_hash)):
            return None
        if order.mint_tx_hash and order.mint_nonce is not None:
            status = self.vault.mint_status(SignedMint(order.mint_tx_hash, order.mint_nonce, order.mint_account))
            if status.fate is MintFate.PENDING and status.known_to_node:  # back in a mempool: it may land again
                return self._found(order, FindingKind.MINT_PENDING_AGAIN, f"mint {status.detail}", False)
            if status.fate is MintFate.PENDING:
                # Lost with its block and unknown to the node: make sure it can never land, then mint again.
                self.repository.claims.check(claim, f"void nonce {order.mint_nonce}")
                self.vault.void_nonce(order.mint_nonce, order.mint_account)
        return self._mint_again(order, claim)

    def _mint_again(self, order: OrderRecord, claim: OrderClaim) -> Finding:
        record = mint_recorder(self.repository, order, OrderStatus.COMPLETED, claim)
        amount = vusd_base_units(Decimal(order.vusd_amount))
        try:
            receipt = self.vault.mint_for_payment(int(order.starknet_address, 16), amount,
                                                  bytes.fromhex(order.payment_hash), on_signed=record)
        except ClaimLost:
            raise
        except MintRejected as exc:
            if exc.reason == "PAYMENT_ALREADY_USED":  # the old mint landed after all
                return self._found(order, FindingKind.MINT_ROLLED_BACK, "old mint landed again", True)
            return self._found(order, FindingKind.MINT_ROLLED_BACK, f"minting again refused: {exc.reason}", False)
        except (MintUncertain, MintAbandoned) as exc:
            return self._found(order, FindingKind.MINT_ROLLED_BACK, f"minting again undecided: {exc}", False)
        except MintDeferred as exc:  # nothing signed: every lane is leased to a worker now; the next pass tries again
            return self._found(order, FindingKind.MINT_ROLLED_BACK, f"not minted again yet: {exc}", False)
        log.warning("order %s: its mint was rolled back; minted again in %s", order.id, receipt.tx_hash)
        return self._found(order, FindingKind.MINT_ROLLED_BACK, f"minted again: {receipt.tx_hash}", True)

    def _check_ended_without_vusd(self, order: OrderRecord, claim: OrderClaim) -> Finding | None:
        if self.vault.is_payment_used(bytes.fromhex(order.payment_hash)):
            return self._fail(order, f"{order.status}, but its payment hash is used on the vault: VUSD without sats",
                              claim)
        state = self.lightning.invoice_status(bytes.fromhex(order.payment_hash)).state
        if state is InvoiceState.SETTLED:
            return self._fail(order, f"{order.status}, but lnd settled the HTLC: sats without VUSD", claim)
        if state is InvoiceState.ACCEPTED:
            self.repository.claims.check(claim, "cancel the HTLC again")
            self.lightning.cancel_hold_invoice(bytes.fromhex(order.payment_hash))
            return self._found(order, FindingKind.HTLC_STILL_HELD, "HTLC was still held; cancelled it", True)
        return None

    def _fail(self, order: OrderRecord, detail: str, claim: OrderClaim) -> Finding:
        log.error("order %s: %s; needs an operator", order.id, detail)
        try:
            self.repository.transition(order.id, OrderStatus.FAILED, detail=detail, failure_detail=detail,
                                       claim=claim)
        except IllegalTransition:
            log.info("order %s moved on while being reconciled", order.id)
        return self._found(order, FindingKind.CONTRADICTION, detail, False)

    @staticmethod
    def _found(order: OrderRecord, kind: FindingKind, detail: str, repaired: bool) -> Finding:
        return Finding(order.id, kind, detail, repaired)
