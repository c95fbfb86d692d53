"""What the domain needs from the outside, as small interfaces it owns: an order store (with the claims that
say which worker may act on an order), a vault on Starknet, a price source and a Lightning node that holds
invoices. `service.storage`, `service.starknet` and `service.lightning` implement them; the domain imports none
of them."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol

from service.domain.pricing import Price
from service.domain.states import OrderStatus


class OrderEventRecord(Protocol):
    status: str
    at: datetime
    detail: str | None


class OrderRecord(Protocol):
    """An order as the domain and the public view read it (the storage row satisfies this)."""

    id: str
    status: str
    starknet_address: str
    vusd_amount: str
    amount_msat: int
    amount_paid_msat: int | None
    btc_usd_rate: str
    max_slippage_bps: int
    payment_hash: str
    preimage: str | None
    preimage_key_id: str | None
    mint_tx_hash: str | None
    mint_nonce: int | None
    mint_account: str | None
    htlc_expiry_height: int | None
    expires_at: datetime
    hold_deadline: datetime | None
    updated_at: datetime
    created_at: datetime
    bolt11: str
    spread_bps: int
    refund_reason: str | None
    metadata_json: str | None
    reference: str | None
    redirect_url: str | None

    @property
    def events(self) -> Sequence[OrderEventRecord]: ...


class OrderClaims(Protocol):
    """Which worker acts on which order: one at a time, by a claim with a lease the holder renews while its work
    lasts (`service.storage.claims`). A claim that is not released expires, and then any worker may take it."""

    @property
    def worker_id(self) -> str: ...

    def take(self, order_id: str) -> OrderClaim | None:
        """This worker's claim on the order, or None while another worker holds a live one."""
        ...

    def holding(self, order_id: str) -> AbstractContextManager[OrderClaim | None]:
        """`take`, renewed in the background until the block ends, then released."""
        ...

    def check(self, claim: OrderClaim, action: str) -> None:
        """Raise `ClaimLost` (logged at ERROR) unless `claim` is still live: call it right before a side effect."""
        ...

    def release(self, claim: OrderClaim) -> None: ...


class OrderStore(Protocol):
    """Where orders live. Every write is durable before it returns; see `service.storage.orders`.

    A write given a `claim` is fenced: it is made only if that claim is still the order's live one, in the same
    transaction, and otherwise refused with `ClaimLost`. The settlement and the reconciliation always give one."""

    @property
    def claims(self) -> OrderClaims: ...

    def create(self, **fields: Any) -> OrderRecord: ...

    def get(self, order_id: str) -> OrderRecord: ...

    def transition(self, order_id: str, status: OrderStatus, detail: str | None = None,
                   unless_mint_changed_from: str | object | None = ..., claim: OrderClaim | None = None,
                   **fields: Any) -> OrderRecord: ...

    def record_mint_tx(self, order_id: str, tx_hash: str, nonce: int, replacing: str | None,
                       while_status: OrderStatus = ..., claim: OrderClaim | None = None,
                       account: str | None = None) -> bool: ...

    def vusd_committed_since(self, address: str, since: datetime, excluding: str | None = None) -> Decimal: ...

    def created_since(self, address: str, since: datetime) -> Sequence[datetime]: ...

    def admitting(self, address: str) -> AbstractContextManager[None]:
        """Held while an order for `address` is checked against its limits and created."""
        ...

    def finished_since(self, since: datetime, expired_since: datetime | None = None,
                       expired_limit: int | None = None) -> Sequence[OrderRecord]: ...


@dataclass(frozen=True)
class MintReceipt:
    tx_hash: str
    block_number: int | None


@dataclass(frozen=True)
class SignedMint:
    """A mint transaction signed by an operator account: its hash, the account (hex; None on mints recorded
    before mint lanes, all signed by the vault's first operator) and the account nonce it uses.

    Starknet transactions never expire: a signed invoke can land until its nonce is used by another one."""

    tx_hash: str
    nonce: int
    account: str | None = None


class MintRejected(RuntimeError):
    """The vault refused the mint (reverted or failed validation): nothing was minted."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MintUncertain(RuntimeError):
    """The mint may have been sent but its fate is unknown (timeout, lost connection): ask `mint_fate`."""


class MintDeferred(RuntimeError):
    """Nothing was signed: no mint lane (operator account) is free for this process now, every one is leased to
    another worker. The order stays where it is; the next pass tries again."""


class MintAbandoned(RuntimeError):
    """Raised by an `on_signed` callback: this mint must not go out (its order moved on, or its caller gave
    up); the client drops it from its batch before anything is sent."""


@dataclass(frozen=True)
class OrderClaim:
    """One worker's right to act on one order. `generation` counts the claims ever taken on the order: it is the
    fencing token every write made under the claim is checked against (a takeover raises it)."""

    order_id: str
    worker_id: str
    generation: int


class ClaimLost(MintAbandoned):
    """A write or a side effect was attempted under a claim that is no longer live (its lease ran out, or another
    worker took the order over): nothing was written or done. A mint it would have allowed is abandoned, so the
    Starknet client drops it from its batch like any abandoned mint."""

    def __init__(self, claim: OrderClaim, action: str, holder: str) -> None:
        super().__init__(f"order {claim.order_id}: refused to {action}: claim {claim.generation} of worker "
                         f"{claim.worker_id} is no longer live ({holder})")
        self.claim = claim


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
    def void_nonce(self, nonce: int, account: str | None = None) -> None:
        """Send a harmless transaction with this nonce from `account` (None: the first operator), so a signed mint
        that uses it can never land. If the mint gets there first, the void is refused and the mint is what
        `mint_status` then finds."""

    @abstractmethod
    def is_payment_used(self, payment_hash: bytes) -> bool: ...

    @abstractmethod
    def vusd_balance(self, address: int) -> int: ...

    @abstractmethod
    def is_reachable(self) -> bool: ...


class SignatureVerdict(StrEnum):
    """What a Starknet account contract said about a signature over a message hash."""

    VALID = "valid"  # its is_valid_signature answered 'VALID' (SNIP-6)
    INVALID = "invalid"  # it answered anything else, or refused the signature's shape
    NO_ACCOUNT = "no_account"  # no contract is deployed at that address
    NOT_AN_ACCOUNT = "not_an_account"  # a contract is there, but it has no is_valid_signature


class AccountSignatures(ABC):
    @abstractmethod
    def is_valid_signature(self, account: int, message_hash: int, signature: Sequence[int]) -> SignatureVerdict:
        """Ask the account contract itself, on chain, whether `signature` over `message_hash` is its own (SNIP-6
        `is_valid_signature`: the account decides, whatever its key scheme). Raises if the node cannot answer."""


class PriceSource(ABC):
    @abstractmethod
    def btc_usd(self) -> Price:
        """The BTC/USD price with the time it was last updated; the caller decides if it is too old."""


class InvoiceState(StrEnum):
    """A hold invoice's state. "Unknown" is never "failed": a node that cannot tell reports UNKNOWN and the
    domain treats it as still pending."""

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
    """The node refused or could not be reached; the message says which."""


class HoldInvoiceNode(ABC):
    """What the domain asks of a Lightning node: hold invoices, their state, the chain tip. Every backend
    (`service.lightning.base.LightningBackend`) is one."""

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
    def block_height(self) -> int:
        """The node's view of the Bitcoin chain tip, to compare with a held HTLC's expiry height."""
