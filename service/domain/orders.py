"""Creating an order: validate, quote, check limits, make the hold invoice, persist."""

from __future__ import annotations

import hashlib
import json
import math
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from limits import RateLimitItem, parse_many
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, field_validator, model_validator

from service.domain.ports import HoldInvoiceNode, LightningError, OrderRecord, OrderStore, PriceSource
from service.domain.preimages import PreimageKeys
from service.domain.pricing import Quote, StalePrice, ensure_fresh, quote_for_sat, quote_for_vusd
from service.domain.rules import OrderRules
from service.domain.states import OrderStatus

FELT_LIMIT = 2**251
STARKNET_ADDRESS = re.compile(r"0x[0-9a-fA-F]{1,64}")
# A VUSD amount is a JSON string in plain decimal notation with at most cents: no exponent, sign, underscore
# or leading zero, so the amount the buyer sees is the amount we parse.
VUSD_AMOUNT = re.compile(r"(0|[1-9][0-9]*)(\.[0-9]{1,2})?")
DAY = timedelta(days=1)
MAX_VUSD_AMOUNT = Decimal(10) ** 12  # far above any order limit; keeps the arithmetic finite
# What an integrator may attach to an order, returned with it everywhere (API, pages, webhooks).
MAX_METADATA_BYTES = 4096  # as compact JSON, UTF-8
MAX_METADATA_DEPTH = 5  # the object itself is level 1
MAX_REFERENCE_CHARS = 128
MAX_REDIRECT_URL_CHARS = 2048
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# A redirect host as browsers and urlsplit agree on it: DNS labels (already lower-cased by urlsplit), or an IPv4.
_HOSTNAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*")


def _is_unicode(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(item) for item in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(item) for item in value), default=0)
    return 0


def invoice_memo(vusd_amount: Decimal) -> str:
    """What the payer's wallet shows. Short on purpose: every character of it is in the invoice, and so in
    the QR code; the order id is on the checkout page and in the API, not here."""
    return f"VOLTA {vusd_amount} VUSD"


class OrderRejected(Exception):
    """A request we will not turn into an order; carries what the API shows the client."""

    def __init__(self, code: str, message: str, hint: str, http_status: int = 400,
                 retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.hint = hint
        self.http_status = http_status
        self.retry_after_s = retry_after_s


def normalize_starknet_address(value: str) -> str:
    """A Starknet address as 0x + 64 lower-case hex digits; must be a felt below 2**251 and not zero.

    Only the canonical spelling is accepted: Python's `int(text, 16)` would also take "0x_1" or "0x 1",
    which turn a typo into a system address."""
    text = value.strip()
    if not STARKNET_ADDRESS.fullmatch(text):
        raise ValueError("must be 0x followed by 1 to 64 hex digits, nothing else")
    number = int(text, 16)
    if number == 0:
        raise ValueError("must not be zero")
    if number >= FELT_LIMIT:
        raise ValueError("must be below 2**251 (a Starknet contract address)")
    return f"0x{number:064x}"


class OrderRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    # Strict types: JSON `true` is not 1 sat, "5" is not an integer and 25.5 is not a decimal string.
    starknet_address: StrictStr = Field(max_length=80, description="0x + up to 64 hex digits, below 2**251, not 0")
    vusd_amount: StrictStr | None = Field(default=None, max_length=40,
                                          description='e.g. "25.00"; exactly one of this or amount_sat')
    amount_sat: StrictInt | None = Field(default=None, gt=0, le=21_000_000 * 100_000_000,
                                         description="exactly one of this or vusd_amount")
    max_slippage_bps: StrictInt | None = Field(default=None, ge=0, le=10_000,
                                               description="price protection; the default is in GET /api/v1/rate")
    metadata: dict[str, Any] | None = Field(
        default=None, description=f"any JSON object of yours, at most {MAX_METADATA_BYTES} bytes as compact JSON and "
                                  f"{MAX_METADATA_DEPTH} levels deep; returned with the order and in webhooks")
    reference: StrictStr | None = Field(
        default=None, min_length=1, max_length=MAX_REFERENCE_CHARS,
        description="your own id for this order (e.g. your invoice number); returned with the order and in webhooks")
    redirect_url: StrictStr | None = Field(
        default=None, max_length=MAX_REDIRECT_URL_CHARS,
        description="where the checkout page sends the buyer back to once the order is final; http(s), only to "
                    "hosts the operator allows (VOLTA_REDIRECT_HOSTS)")

    @field_validator("starknet_address")
    @classmethod
    def _address(cls, value: str) -> str:
        return normalize_starknet_address(value)

    @field_validator("vusd_amount")
    @classmethod
    def _vusd(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not VUSD_AMOUNT.fullmatch(value):
            raise ValueError('must be a plain decimal string with at most 2 decimal places, such as "25.00"')
        amount = Decimal(value)
        if amount <= 0:
            raise ValueError("must be a positive number")
        if amount >= MAX_VUSD_AMOUNT:
            raise ValueError(f"must be below {MAX_VUSD_AMOUNT}")
        return value

    @field_validator("metadata")
    @classmethod
    def _bounded_metadata(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return None
        try:
            size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode())
        except ValueError as exc:  # NaN or Infinity (not JSON), or a lone surrogate (not Unicode text)
            raise ValueError("must be plain JSON: no NaN or Infinity, and text without lone surrogates") from exc
        if size > MAX_METADATA_BYTES:
            raise ValueError(f"is {size} bytes as compact JSON; at most {MAX_METADATA_BYTES} are kept")
        if _depth(value) > MAX_METADATA_DEPTH:
            raise ValueError(f"nests deeper than {MAX_METADATA_DEPTH} levels")
        return value

    @field_validator("reference")
    @classmethod
    def _printable_reference(cls, value: str | None) -> str | None:
        if value is not None and (_CONTROL.search(value) or not _is_unicode(value)):
            raise ValueError("must be text without control characters or lone surrogates")
        return value

    @field_validator("redirect_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.isascii():
            raise ValueError("must be ASCII (percent-encode the rest, and write the host in punycode)")
        try:
            parts = urlsplit(value)
            host = parts.hostname
        except ValueError as exc:
            raise ValueError(f"is not a URL: {exc}") from exc
        if parts.scheme not in ("https", "http") or not host:
            raise ValueError("must be an absolute http(s) URL, e.g. https://shop.example/thanks")
        if parts.username is not None or parts.password is not None or _CONTROL.search(value) or " " in value:
            raise ValueError("must not carry credentials, spaces or control characters")
        # Browsers read a backslash as "/" in http(s) URLs while urlsplit does not: https://evil.example<backslash>
        # .shop.example/ would pass a ".shop.example" allow-list here and lead the buyer to evil.example.
        if "\\" in value or not _HOSTNAME.fullmatch(host):
            raise ValueError("must name its host plainly (letters, digits, hyphens and dots) and contain no backslash")
        return urlunsplit(parts)  # as parsed and checked, so the page links exactly what was checked

    @model_validator(mode="after")
    def _exactly_one_amount(self) -> OrderRequest:
        if (self.vusd_amount is None) == (self.amount_sat is None):
            raise ValueError("give exactly one of vusd_amount or amount_sat")
        return self


@dataclass
class PlaceOrder:
    rules: OrderRules
    repository: OrderStore
    lightning: HoldInvoiceNode
    prices: PriceSource
    clock: Callable[[], datetime]
    preimages: PreimageKeys

    def place(self, request: OrderRequest, description_hash: bytes | None = None) -> OrderRecord:
        """`description_hash`: the invoice commits to this hash instead of carrying the memo (LNURL-pay's
        sha256 of its metadata, service/api/lnurl.py)."""
        slippage_bps = self._slippage(request)
        self._check_redirect(request.redirect_url)
        quote = self._quote(request)
        # Limits count orders that exist: a request refused for any reason costs the address nothing, so
        # nobody can lock a buyer out by sending bad requests in the buyer's name.
        with self.repository.admitting(request.starknet_address):
            self._check_limits(request.starknet_address, quote.vusd_amount)
            return self._create(request, quote, slippage_bps, description_hash)

    def _create(self, request: OrderRequest, quote: Quote, slippage_bps: int,
                description_hash: bytes | None = None) -> OrderRecord:
        order_id = f"ord_{uuid.uuid4().hex}"
        preimage = self.preimages.new_preimage(order_id)
        payment_hash = hashlib.sha256(preimage).digest()
        try:
            invoice = self.lightning.create_hold_invoice(
                preimage, payment_hash, quote.amount_msat, invoice_memo(quote.vusd_amount),
                self.rules.quote_lifetime_s, description_hash=description_hash,
            )
        except LightningError as exc:
            raise OrderRejected("lightning_unavailable", "The Lightning node could not create an invoice.",
                                "Try again in a minute.", 503) from exc
        now = self.clock()
        return self.repository.create(
            id=order_id, starknet_address=request.starknet_address, vusd_amount=str(quote.vusd_amount),
            amount_msat=quote.amount_msat, btc_usd_rate=str(quote.btc_usd_rate), spread_bps=quote.spread_bps,
            max_slippage_bps=slippage_bps, payment_hash=payment_hash.hex(),
            preimage=None, preimage_key_id=self.preimages.current_id,
            bolt11=invoice.bolt11, status=OrderStatus.AWAITING_PAYMENT.value, created_at=now, updated_at=now,
            expires_at=now + timedelta(seconds=self.rules.quote_lifetime_s),
            metadata_json=None if request.metadata is None else json.dumps(request.metadata, separators=(",", ":")),
            reference=request.reference, redirect_url=request.redirect_url,
        )

    def _check_redirect(self, url: str | None) -> None:
        """Only to a host the operator allows (exactly, or a subdomain of an entry written as `.shop.example`),
        so the checkout never sends a buyer wherever a stranger's order asked."""
        if url is None:
            return
        allowed = self.rules.allowed_redirect_hosts()
        host = (urlsplit(url).hostname or "").lower()
        if not allowed:
            raise OrderRejected("redirect_not_allowed", "This service allows no redirect_url: the operator has "
                                "named no hosts for it.", "Leave redirect_url out, or ask the operator to allow "
                                "your host (VOLTA_REDIRECT_HOSTS).")
        if not any(host == entry or (entry.startswith(".") and host.endswith(entry)) for entry in allowed):
            raise OrderRejected("redirect_not_allowed", f"redirect_url's host {host!r} is not one this service "
                                "sends buyers to.", f"Use a URL on one of: {', '.join(sorted(allowed))}.")

    def _slippage(self, request: OrderRequest) -> int:
        bps = self.rules.default_max_slippage_bps if request.max_slippage_bps is None else request.max_slippage_bps
        if bps > self.rules.max_allowed_slippage_bps:
            raise OrderRejected("slippage_too_high", f"max_slippage_bps {bps} is above what we allow.",
                                f"Use at most {self.rules.max_allowed_slippage_bps} basis points.")
        return bps

    def _quote(self, request: OrderRequest) -> Quote:
        try:
            price = ensure_fresh(self.prices.btc_usd(), self.clock().timestamp(), self.rules.max_price_age_s)
        except StalePrice as exc:
            raise OrderRejected("price_stale", f"We cannot quote right now: {exc}.",
                                "Try again shortly; the price oracle has not updated.", 503) from exc
        except Exception as exc:  # the oracle unreachable must be a 503, never a 500
            raise OrderRejected("price_unavailable", "The BTC/USD price oracle is unreachable.",
                                "Try again in a minute.", 503) from exc
        if price.btc_usd <= 0:
            raise OrderRejected("price_unavailable", "The oracle has no BTC/USD price.", "Try again later.", 503)
        if request.vusd_amount is not None:
            return quote_for_vusd(Decimal(request.vusd_amount), price.btc_usd, self.rules.spread_bps)
        assert request.amount_sat is not None
        return quote_for_sat(request.amount_sat, price.btc_usd, self.rules.spread_bps)

    def _check_limits(self, address: str, vusd: Decimal) -> None:
        low, high = self.rules.min_order_vusd, self.rules.max_order_vusd
        if not low <= vusd <= high:
            raise OrderRejected("amount_out_of_range", f"An order must be between {low} and {high} VUSD; "
                                f"this one is {vusd} VUSD.", f"Choose an amount from {low} to {high} VUSD.")
        self._check_order_rate(address)
        used = self.repository.vusd_committed_since(address, self.clock() - DAY)
        allowance = self.rules.max_vusd_per_address_per_day
        if used + vusd > allowance:
            raise OrderRejected("daily_limit_exceeded", f"This address has bought {used} VUSD in the last 24 "
                                f"hours; the limit is {allowance} VUSD.",
                                f"You can still buy up to {max(allowance - used, Decimal(0))} VUSD today.", 422)

    def _check_order_rate(self, address: str) -> None:
        """At most N orders per window for one address (`rate_limit_orders_per_address`, e.g. 10/minute)."""
        now = self.clock()
        for window in parse_many(self.rules.rate_limit_orders_per_address):
            length = timedelta(seconds=window.get_expiry())
            created = self.repository.created_since(address, now - length)
            if len(created) < window.amount:
                continue
            # A new order fits once the oldest of the last `amount` orders leaves the window.
            wait_s = max(1, math.ceil((created[-window.amount] + length - now).total_seconds()))
            raise OrderRejected("address_rate_limited", f"This address already has {len(created)} orders in the "
                                f"last {_window_words(window)}; the limit is {window.amount}.",
                                f"Pay one of the open orders, or try again in {wait_s} s.", 429, wait_s)


def _window_words(window: RateLimitItem) -> str:
    multiples = window.multiples
    return f"{multiples} {window.GRANULARITY.name}s" if multiples > 1 else window.GRANULARITY.name
