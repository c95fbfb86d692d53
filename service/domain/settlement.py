"""Settling an order: from the held HTLC to VUSD minted and the HTLC claimed, or the sats returned.

The one promise: the HTLC is claimed if and only if exactly one mint for its payment hash is on Starknet.
The vault refuses a second mint of a hash, so "exactly one" is the contract's; the service must never
cancel the HTLC while a mint may still land, and never claim it before a mint is accepted on L2.

Each step writes its state before the side effect it allows (mint, settle, cancel), so a crash at any
point resumes from the database. A signed mint is recorded (hash and nonce) under the order's lock before
it is sent, and only while the order is `minting` with no other live attempt. Its fate is read from the
transaction's own status first, then from the operator's nonce: it is dead only when reverted on L2 or when
its nonce was used by another transaction. Until then the HTLC stays held, within the HTLC's own expiry;
near it the nonce is voided, which settles the question one way or the other.

Every step runs under the worker's claim on the order (`OrderClaims`): each write is fenced with it, and each
side effect outside the database (settle, cancel, void) checks it right before, so a worker whose claim ran out
or was taken over records and does nothing more (`ClaimLost`, logged at ERROR). What a stale holder can still
do between its check and the call is the same call the new holder would make: a mint goes out only once
recorded under the claim (the new holder then decides that attempt's fate), a settle only once `minted` is
recorded, a cancel only once `refunded` or `expired` is, and nothing undoes those states.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from service.domain.orders import DAY
from service.domain.ports import (
    ClaimLost,
    HoldInvoiceNode,
    InvoiceState,
    InvoiceStatus,
    LightningError,
    MintAbandoned,
    MintDeferred,
    MintFate,
    MintRejected,
    MintStatus,
    MintUncertain,
    OrderClaim,
    OrderRecord,
    OrderStore,
    PriceSource,
    SignedMint,
    VaultGateway,
)
from service.domain.preimages import PreimageKeys
from service.domain.pricing import StalePrice, ensure_fresh, price_move_bps, slippage_refusal, vusd_base_units
from service.domain.rules import OrderRules
from service.domain.states import ENDED_WITHOUT_VUSD, ConcurrentChange, IllegalTransition, OrderStatus, RefundReason

log = logging.getLogger("volta.settlement")


class Checkpoint(StrEnum):
    """The moments between a state and its side effect, where a test can stop the service to kill it. A moment
    right after a status is recorded is named by that status."""

    PAYMENT_HELD = OrderStatus.PAYMENT_HELD.value  # HTLC held and recorded, nothing checked yet
    MINTING = OrderStatus.MINTING.value  # `minting` recorded, nothing signed
    MINT_SIGNED = "mint_signed"  # signed and recorded, not sent
    MINT_SENT = "mint_sent"  # sent, not yet accepted (reached inside the Starknet client)
    MINT_ACCEPTED = "mint_accepted"  # accepted on L2, not yet recorded
    MINTED = OrderStatus.MINTED.value  # `minted` recorded, HTLC not settled
    REFUNDED = OrderStatus.REFUNDED.value  # `refunded` recorded, HTLC not cancelled
    SETTLED = "settled"  # HTLC settled on lnd, `completed` not recorded


def no_checkpoint(point: str) -> None:
    del point


def mint_recorder(store: OrderStore, order: OrderRecord, while_status: OrderStatus, claim: OrderClaim,
                  after: Callable[[], None] = lambda: None) -> Callable[[SignedMint], None]:
    """The `on_signed` callback of one mint attempt: records each signed mint before it is sent, under `claim`,
    and refuses it (`MintAbandoned`) if the order left `while_status` or another attempt was recorded meanwhile,
    or (`ClaimLost`) if the claim is no longer live.

    The client may sign more than once (a batch re-signed without a dropped call, a reverted batch sent again
    alone); each new signature replaces the previous one, which can then no longer land."""
    latest = {"tx_hash": order.mint_tx_hash}

    def record(signed: SignedMint) -> None:
        if not store.record_mint_tx(order.id, signed.tx_hash, signed.nonce, latest["tx_hash"], while_status, claim,
                                    account=signed.account):
            raise MintAbandoned(f"order {order.id} is no longer {while_status} with attempt {latest['tx_hash']}")
        latest["tx_hash"] = signed.tx_hash
        after()

    return record


@dataclass
class Settlement:
    rules: OrderRules
    repository: OrderStore
    lightning: HoldInvoiceNode
    vault: VaultGateway
    prices: PriceSource
    clock: Callable[[], datetime]
    preimages: PreimageKeys
    on_double_mint_refused: Callable[[], None] = lambda: None
    checkpoint: Callable[[str], None] = no_checkpoint

    # -- entry points ---------------------------------------------------------------------------------

    def acts_on(self, order: OrderRecord, invoice: InvoiceStatus) -> bool:
        """Whether `on_invoice_status` would change anything: a worker claims the order only then."""
        return OrderStatus(order.status) is OrderStatus.AWAITING_PAYMENT and (
            invoice.state in (InvoiceState.ACCEPTED, InvoiceState.CANCELED) or self.clock() > order.expires_at)

    def on_invoice_status(self, order_id: str, invoice: InvoiceStatus, claim: OrderClaim) -> None:
        """What the node says about an order's invoice, from the stream or from a re-check; under `claim`."""
        order = self.repository.get(order_id)
        status = OrderStatus(order.status)
        if status is OrderStatus.AWAITING_PAYMENT and invoice.state is InvoiceState.ACCEPTED:
            # The hold bound counts from when lnd accepted the HTLC, not from when we noticed it.
            accepted_at = invoice.accepted_at or self.clock()
            order = self.repository.transition(
                order.id, OrderStatus.PAYMENT_HELD, amount_paid_msat=invoice.amount_paid_msat,
                hold_deadline=accepted_at + timedelta(seconds=self.rules.max_hold_s),
                htlc_expiry_height=invoice.htlc_expiry_height, claim=claim,
            )
            self.checkpoint(Checkpoint.PAYMENT_HELD)
            self.resume(order, claim)
        elif status is OrderStatus.AWAITING_PAYMENT and invoice.state is InvoiceState.CANCELED:
            self.repository.transition(order.id, OrderStatus.EXPIRED, detail="invoice cancelled by the node",
                                       claim=claim)
        elif status is OrderStatus.AWAITING_PAYMENT and self.clock() > order.expires_at:
            self._expire(order, claim)

    def resume(self, order: OrderRecord, claim: OrderClaim) -> None:
        """Carry an order on from whatever state the database has it in, under `claim` (read the order after
        taking it). A lost claim raises `ClaimLost`: the step stops there."""
        status = OrderStatus(order.status)
        try:
            if status is OrderStatus.PAYMENT_HELD:
                self._check_and_mint(order, claim)
            elif status is OrderStatus.MINTING:
                self._resume_minting(order, claim)
            elif status is OrderStatus.MINTED:
                self._settle(order, claim)
        except IllegalTransition as exc:
            if exc.requested is OrderStatus.MINTED and exc.current not in (OrderStatus.MINTED, OrderStatus.COMPLETED):
                log.error("order %s: a mint landed but the order is already %s; needs an operator", order.id,
                          exc.current)
            else:
                log.info("order %s moved on elsewhere: %s", order.id, exc)  # another worker got there first
        except ConcurrentChange as exc:
            log.info("%s; deciding again on the next pass", exc)

    def enforce_refund(self, order: OrderRecord, claim: OrderClaim) -> None:
        """A refunded or expired order must not leave an HTLC held: cancel again if lnd still has it accepted."""
        if OrderStatus(self.repository.get(order.id).status) not in ENDED_WITHOUT_VUSD:
            return  # the reconciliation moved it on (to `failed`) before we held the claim
        if self.lightning.invoice_status(bytes.fromhex(order.payment_hash)).state is InvoiceState.ACCEPTED:
            self.repository.claims.check(claim, "cancel the HTLC again")
            self.lightning.cancel_hold_invoice(bytes.fromhex(order.payment_hash))

    # -- the steps -----------------------------------------------------------------------------------

    def _check_and_mint(self, order: OrderRecord, claim: OrderClaim) -> None:
        invoice = self.lightning.invoice_status(bytes.fromhex(order.payment_hash))
        if invoice.state is InvoiceState.CANCELED:  # lnd let it go (CLTV near): nothing to mint for
            self._refund(order, RefundReason.HTLC_EXPIRING, "the node no longer holds the HTLC", claim)
            return
        if invoice.state is not InvoiceState.ACCEPTED:  # unknown is not cancelled: ask again on the next pass
            log.warning("order %s: lnd says the invoice is %s; asking again", order.id, invoice.state)
            return
        reason, detail = self._refund_reason(order)
        if reason is not None:
            self._refund(order, reason, detail, claim)
            return
        if self.vault.is_payment_used(bytes.fromhex(order.payment_hash)):
            # Never minted by this order (it is only now leaving payment_held), yet used on chain: an
            # operator must look; refunding could pay twice, settling could take sats for nothing.
            log.error("order %s: payment hash already used on the vault before minting; needs an operator", order.id)
            self.repository.transition(order.id, OrderStatus.FAILED, detail="payment hash already used on the vault",
                                       failure_detail="payment hash already used on the vault before minting",
                                       claim=claim)
            return
        order = self.repository.transition(order.id, OrderStatus.MINTING, claim=claim)
        self.checkpoint(Checkpoint.MINTING)
        self._mint(order, claim)

    def _resume_minting(self, order: OrderRecord, claim: OrderClaim) -> None:
        if order.mint_tx_hash:
            status = self._attempt_status(order)
            if status.fate is MintFate.PENDING:
                self._hold_or_void(order, status, claim)
                return
            if status.fate is MintFate.LANDED and not self._hash_used(order):
                log.warning("order %s: mint %s accepted but the hash reads unused; asking again", order.id,
                            order.mint_tx_hash)  # a block lost between our two reads: the next pass sees it
                return
        if self._hash_used(order):
            self._record_minted(order, "mint found on the vault", claim)
        elif self._time_to_mint(order) and self._enough_blocks(order):
            self._mint(order, claim)
        else:
            self._refund(order, RefundReason.MINT_FAILED, "no mint landed within the hold bound", claim,
                         unless_mint_changed_from=order.mint_tx_hash)

    def _mint(self, order: OrderRecord, claim: OrderClaim) -> None:
        """One mint attempt; called only when no earlier attempt of this order can still land."""
        recipient = int(order.starknet_address, 16)
        amount = vusd_base_units(Decimal(order.vusd_amount))
        started = time.monotonic()
        try:
            receipt = self.vault.mint_for_payment(
                recipient, amount, bytes.fromhex(order.payment_hash),
                on_signed=mint_recorder(self.repository, order, OrderStatus.MINTING, claim,
                                        after=lambda: self.checkpoint(Checkpoint.MINT_SIGNED)))
        except ClaimLost:
            raise  # not sent; logged at ERROR where it was refused
        except MintAbandoned as exc:
            log.info("order %s: mint not sent: %s", order.id, exc)
            return
        except MintDeferred as exc:  # nothing signed: stays `minting` without an attempt; the re-check mints
            log.info("order %s: mint deferred: %s", order.id, exc)
            return
        except MintRejected as exc:
            if exc.reason == "PAYMENT_ALREADY_USED":  # our own earlier attempt landed
                self.on_double_mint_refused()
                self._record_minted(order, "mint found on the vault", claim)
                return
            self._after_rejected_attempt(self.repository.get(order.id), f"vault refused the mint: {exc.reason}",
                                         claim)
            return
        except MintUncertain as exc:
            log.warning("order %s: mint uncertain (%s); will ask the chain again", order.id, exc)
            return  # stays `minting`; the re-check reads the recorded attempt's fate
        log.info("order %s minted in %.2fs: %s", order.id, time.monotonic() - started, receipt.tx_hash)
        self.checkpoint(Checkpoint.MINT_ACCEPTED)
        order = self.repository.transition(order.id, OrderStatus.MINTED, mint_tx_hash=receipt.tx_hash, claim=claim)
        self.checkpoint(Checkpoint.MINTED)
        self._settle(order, claim)

    def _after_rejected_attempt(self, order: OrderRecord, why: str, claim: OrderClaim) -> None:
        """The vault refused: refund, unless a signed attempt of this order may still land."""
        if order.mint_tx_hash and self._attempt_status(order).fate is not MintFate.DEAD:
            return  # decided on the next pass, from the chain
        if self._hash_used(order):
            self._record_minted(order, "mint found on the vault", claim)
            return
        self._refund(order, RefundReason.MINT_FAILED, why, claim, unless_mint_changed_from=order.mint_tx_hash)

    def _hold_or_void(self, order: OrderRecord, status: MintStatus, claim: OrderClaim) -> None:
        """A signed mint may still land: keep holding the HTLC. Void its nonce when the node has not seen it
        for a while (it was signed but never sent, or lost on the way) or when the HTLC nears its expiry.
        Voiding is always safe: if the mint arrives first, the void is refused and the mint is what we find."""
        blocks_left = self._blocks_left(order)
        near_expiry = blocks_left is not None and blocks_left <= self.rules.void_mint_blocks_before_expiry
        unseen_s = (self.clock() - order.updated_at).total_seconds()  # updated when the mint was recorded
        unseen_too_long = not status.known_to_node and unseen_s >= self.rules.void_unseen_mint_after_s
        if order.mint_nonce is not None and (near_expiry or unseen_too_long):
            log.warning("order %s: mint %s undecided (%s, %s blocks left); voiding nonce %s", order.id,
                        order.mint_tx_hash, status.detail, blocks_left, order.mint_nonce)
            self.repository.claims.check(claim, f"void nonce {order.mint_nonce}")
            self.vault.void_nonce(order.mint_nonce, order.mint_account)
            return
        log.warning("order %s: mint %s may still land (%s); holding the HTLC", order.id, order.mint_tx_hash,
                    status.detail)

    def _record_minted(self, order: OrderRecord, detail: str, claim: OrderClaim) -> None:
        order = self.repository.transition(order.id, OrderStatus.MINTED, detail=detail, claim=claim)
        self.checkpoint(Checkpoint.MINTED)
        self._settle(order, claim)

    def _settle(self, order: OrderRecord, claim: OrderClaim) -> None:
        payment_hash = bytes.fromhex(order.payment_hash)
        self.repository.claims.check(claim, "settle the HTLC")
        try:
            self.lightning.settle_hold_invoice(self.preimages.preimage_for(order))
        except LightningError as exc:
            log.warning("order %s: %s; asking lnd about the HTLC", order.id, exc)
            state = self.lightning.invoice_status(payment_hash).state
            if state is InvoiceState.CANCELED:
                # VUSD was minted but the HTLC is gone: only an operator can make this right.
                log.error("order %s: minted but the node cancelled the HTLC; needs an operator", order.id)
                self.repository.transition(order.id, OrderStatus.FAILED, detail="HTLC cancelled after the mint",
                                           failure_detail="minted, but lnd cancelled the held HTLC", claim=claim)
                return
            if state is not InvoiceState.SETTLED:
                raise  # lnd unreachable or refusing: stays `minted`, the re-check tries again
        self.checkpoint(Checkpoint.SETTLED)
        self.repository.transition(order.id, OrderStatus.COMPLETED, claim=claim)

    def _refund(self, order: OrderRecord, reason: RefundReason, detail: str, claim: OrderClaim,
                **guard: str | None) -> None:
        self.repository.transition(order.id, OrderStatus.REFUNDED, detail=detail, refund_reason=reason.value,
                                   claim=claim, **guard)
        log.info("order %s refunded: %s (%s)", order.id, reason.value, detail)
        self.checkpoint(Checkpoint.REFUNDED)
        self.repository.claims.check(claim, "cancel the HTLC")
        self.lightning.cancel_hold_invoice(bytes.fromhex(order.payment_hash))

    def _expire(self, order: OrderRecord, claim: OrderClaim) -> None:
        self.repository.transition(order.id, OrderStatus.EXPIRED, detail="not paid before the quote expired",
                                   claim=claim)
        # If a payment slipped in at the last moment, this cancel hands the sats straight back.
        self.repository.claims.check(claim, "cancel the HTLC")
        self.lightning.cancel_hold_invoice(bytes.fromhex(order.payment_hash))

    # -- checks ---------------------------------------------------------------------------------------

    def _attempt_status(self, order: OrderRecord) -> MintStatus:
        assert order.mint_tx_hash is not None
        if order.mint_nonce is None:  # recorded before nonces were: only its own status can tell
            return self.vault.mint_status(SignedMint(order.mint_tx_hash, 2**64))
        return self.vault.mint_status(SignedMint(order.mint_tx_hash, order.mint_nonce, order.mint_account))

    def _hash_used(self, order: OrderRecord) -> bool:
        return self.vault.is_payment_used(bytes.fromhex(order.payment_hash))

    def _refund_reason(self, order: OrderRecord) -> tuple[RefundReason | None, str]:
        now = self.clock()
        paid = order.amount_paid_msat or 0
        if paid < order.amount_msat:
            return RefundReason.UNDERPAID, f"paid {paid} msat of {order.amount_msat}"
        if paid > order.amount_msat:
            return RefundReason.OVERPAID, f"paid {paid} msat for an invoice of {order.amount_msat}"
        if now > order.expires_at or not self._time_to_mint(order):
            return RefundReason.QUOTE_EXPIRED, "the HTLC arrived or was processed too late to mint in time"
        if not self._enough_blocks(order):
            return RefundReason.HTLC_EXPIRING, (f"{self._blocks_left(order)} blocks left before the HTLC expires, "
                                                f"{self.rules.min_htlc_blocks_to_mint} needed to mint")
        try:
            price = ensure_fresh(self.prices.btc_usd(), now.timestamp(), self.rules.max_price_age_s)
        except StalePrice as exc:
            return RefundReason.SLIPPAGE_EXCEEDED, f"cannot check slippage: {exc}"
        moved_bps = price_move_bps(Decimal(order.btc_usd_rate), price.btc_usd)
        if refusal := slippage_refusal(moved_bps, order.max_slippage_bps, self.rules.max_price_drop_bps):
            return RefundReason.SLIPPAGE_EXCEEDED, refusal
        used = self.repository.vusd_committed_since(order.starknet_address, now - DAY, excluding=order.id)
        if used + Decimal(order.vusd_amount) > self.rules.max_vusd_per_address_per_day:
            return RefundReason.LIMIT_EXCEEDED, f"address already bought {used} VUSD in 24 h"
        return None, ""

    def _time_to_mint(self, order: OrderRecord) -> bool:
        """Whether a mint attempt started now ends before the hold deadline, whatever it does."""
        if order.hold_deadline is None:
            return True
        return (order.hold_deadline - self.clock()).total_seconds() >= self.rules.mint_budget_s

    def _blocks_left(self, order: OrderRecord) -> int | None:
        if order.htlc_expiry_height is None:
            return None
        return order.htlc_expiry_height - self.lightning.block_height()

    def _enough_blocks(self, order: OrderRecord) -> bool:
        """Whether the HTLC stays held long enough for a mint to be decided, with lnd's own cancel delta."""
        blocks_left = self._blocks_left(order)
        return blocks_left is None or blocks_left >= self.rules.min_htlc_blocks_to_mint

