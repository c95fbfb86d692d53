"""Lightning Address (LUD-16) and LNURL-pay (LUD-06, LUD-09): any wallet pays `<starknet-address-or-alias>@<host>`
and the VUSD goes to that Starknet address.

    GET /.well-known/lnurlp/<username>                       the payRequest: callback, min/maxSendable, metadata
    GET /api/v1/lnurlp/<username>/callback?amount=<msat>     a fresh order for the amount the wallet chose

The callback makes the order with PlaceOrder, as POST /api/v1/orders does (the same quote, spread, order and
per-address limits, default slippage bound): `amount_sat` is the wallet's amount, so the VUSD follows from the
quote, rounded down to the cent. Its hold invoice commits to sha256(metadata) (BOLT 11 `h`), which the wallet
checks, and the answer's `successAction` (a LUD-09 message) says how much VUSD was minted: the wallet shows it once
the payment succeeded, and a hold invoice is settled only after its mint is accepted on Starknet.

Every refusal is LNURL's `{"status": "ERROR", "reason": "…"}`. It comes with HTTP 200, as LNbits answers: LUD-01
says status codes carry no meaning, and some clients (the `lnurl` library among them) read no body of a 4xx.
A rate limit keeps its 429 and Retry-After.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from urllib.parse import urlsplit

from flask import Blueprint, Response, jsonify, request
from flask.typing import ResponseReturnValue
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException

from service.api import container
from service.api.limits import limiter, reads_per_ip
from service.api.meta import reads
from service.api.schemas import LnurlError, LnurlInvoice, LnurlMessage, LnurlPayRequest
from service.config import Settings
from service.domain.orders import OrderRejected, OrderRequest, normalize_starknet_address
from service.domain.pricing import StalePrice, ensure_fresh, quote_for_sat, quote_for_vusd

blueprint = Blueprint("lnurl", __name__)
log = logging.getLogger("volta.api.lnurl")

# LUD-16: a username is limited to a-z 0-9 - _ . ; a Starknet address in its 0x form fits.
USERNAME = re.compile(r"[a-z0-9\-_.]{1,80}")
HEX_ADDRESS = re.compile(r"0x[0-9a-f]+")
MAX_MESSAGE_CHARS = 144  # LUD-09's bound on a successAction message
MAX_MSAT = 21_000_000 * 100_000_000 * 1000
DAY = timedelta(days=1)
# The advertised range sits this far inside the order limits: the callback quotes again, and a price move between
# the wallet's two requests must not push an amount the wallet was offered out of them.
RANGE_MARGIN = Decimal("0.01")


class LnurlRefusal(Exception):
    """Answered as LNURL's error form; `reason` is what the wallet shows its user."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def lnurl_error(reason: str, status: int = 200) -> tuple[Response, int]:
    return jsonify(LnurlError(reason=reason).model_dump()), status


@blueprint.errorhandler(LnurlRefusal)
def _refused(exc: LnurlRefusal) -> ResponseReturnValue:
    return lnurl_error(exc.reason)


@blueprint.errorhandler(HTTPException)
def _http(exc: HTTPException) -> ResponseReturnValue:
    # 429 from Flask-Limiter (its after_request adds Retry-After); 405 and the like: the status stays.
    if exc.code == 429:
        return lnurl_error("Too many requests from this address; wait a minute and try again.", 429)
    return lnurl_error(exc.description or exc.name, exc.code or 500)


@blueprint.errorhandler(Exception)
def _unexpected(exc: Exception) -> ResponseReturnValue:
    log.exception("unhandled error in LNURL-pay")
    return lnurl_error("Something went wrong on our side; try again in a minute.", 500)


@dataclass(frozen=True)
class PayTarget:
    username: str  # as the address names it, lower case
    starknet_address: str  # 0x + 64 hex digits


def resolve_username(username: str, aliases: dict[str, str]) -> PayTarget:
    """The Starknet address a Lightning Address username stands for: an operator's alias, or the address itself."""
    name = username.strip().lower()  # LUD-16 names are lower case; a wallet that kept a checksummed 0xAbC… still fits
    if not USERNAME.fullmatch(name):
        raise LnurlRefusal("Not a Lightning Address username here: use a Starknet address (0x followed by up to 64 "
                           "hex digits) or a known alias, in a-z 0-9 - _ .")
    if name in aliases:
        try:
            return PayTarget(name, normalize_starknet_address(aliases[name]))
        except ValueError:
            log.error("LNURL alias %s maps to an invalid Starknet address; fix VOLTA_LNURL_ALIASES", name)
            raise LnurlRefusal(f"The alias {name} is misconfigured here; pay to a Starknet address instead.") from None
    if name.startswith("0x"):
        if not HEX_ADDRESS.fullmatch(name):
            raise LnurlRefusal(f"{name} is not a Starknet address: after 0x only hex digits 0-9 a-f may follow.")
        try:
            return PayTarget(name, normalize_starknet_address(name))
        except ValueError as exc:
            raise LnurlRefusal(f"{name} is not a Starknet address: it {exc}.") from None
    raise LnurlRefusal(f"No Lightning Address {name} here: pay to a Starknet address (0x…@host) or a known alias.")


def short_address(address: str) -> str:
    """0x1234…abcd, from the address without its leading zeros (as wallets show it)."""
    text = f"0x{int(address, 16):x}"
    return text if len(text) <= 12 else f"{text[:6]}…{text[-4:]}"


def pay_metadata(target: PayTarget, host: str, spread_bps: int) -> str:
    """LUD-06's metadata, as the exact string both requests send and the invoice's `h` hashes: it must not
    change between them, so it names no price or amount."""
    entries = [
        ["text/plain", f"VUSD on Starknet for {target.starknet_address}"],
        ["text/long-desc", f"VOLTA mints VUSD to Starknet address {target.starknet_address} for the sats you "
                           f"send: the BTC/USD oracle rate less a {Decimal(spread_bps) / 100:.2f} % spread, rounded "
                           "down to the cent. Your payment is held until the mint is final, else it returns."],
        ["text/identifier", f"{target.username}@{host}"],
    ]
    return json.dumps(entries, separators=(",", ":"), ensure_ascii=False)


def description_hash(metadata: str) -> bytes:
    """LUD-06: sha256 of the metadata string's UTF-8 bytes."""
    return hashlib.sha256(metadata.encode("utf-8")).digest()


def success_message(vusd_amount: str, starknet_address: str, order_id: str) -> str:
    """LUD-09 message (at most 144 characters): the wallet shows it once paid, which is once the VUSD is minted."""
    message = f"{vusd_amount} VUSD minted to {short_address(starknet_address)} on Starknet (order {order_id})."
    if len(message) > MAX_MESSAGE_CHARS:  # not with today's order ids and amounts; never send a longer one
        message = f"{vusd_amount} VUSD minted to {short_address(starknet_address)} on Starknet."
    return message


def sendable_msat(settings: Settings, btc_usd: Decimal, remaining_today_vusd: Decimal) -> tuple[int, int]:
    """(minSendable, maxSendable) in whole sats as msat: what buys from the minimum order to the maximum (or what is
    left of the address's daily allowance), RANGE_MARGIN inside both ends."""
    low_vusd = settings.min_order_vusd * (1 + RANGE_MARGIN)
    high_vusd = min(settings.max_order_vusd, remaining_today_vusd) * (1 - RANGE_MARGIN)
    low_msat = quote_for_vusd(low_vusd, btc_usd, settings.spread_bps).amount_msat
    high_sat = quote_for_vusd(high_vusd, btc_usd, settings.spread_bps).amount_msat // 1000
    while high_sat > 0 and quote_for_sat(high_sat, btc_usd, settings.spread_bps).vusd_amount > high_vusd:
        high_sat -= 1
    return low_msat, high_sat * 1000


def _current_btc_usd() -> Decimal:
    """The price a lookup's sats range is drawn from: the oracle read shared by every reader for a couple of
    seconds and bounded in time (service.api.meta), so a flood of lookups costs the Starknet node no more than a
    flood of /rate. The order itself is priced afresh by the callback."""
    place = container().place_order
    try:
        price = ensure_fresh(reads().price.get(), place.clock().timestamp(), container().settings.max_price_age_s)
    except StalePrice as exc:
        raise LnurlRefusal(f"We cannot quote right now ({exc}); try again shortly.") from exc
    except Exception as exc:  # the oracle unreachable is a refusal the wallet can show, never a 500
        raise LnurlRefusal("The BTC/USD price oracle is unreachable; try again in a minute.") from exc
    if price.btc_usd <= 0:
        raise LnurlRefusal("The oracle has no BTC/USD price; try again later.")
    return price.btc_usd


def _range_for(target: PayTarget) -> tuple[int, int]:
    place = container().place_order
    settings = container().settings
    used = place.repository.vusd_committed_since(target.starknet_address, place.clock() - DAY)
    remaining = settings.max_vusd_per_address_per_day - used
    if remaining < settings.min_order_vusd * (1 + RANGE_MARGIN):
        raise LnurlRefusal(f"{short_address(target.starknet_address)} has bought its daily limit of "
                           f"{settings.max_vusd_per_address_per_day} VUSD; try again tomorrow.")
    low_msat, high_msat = sendable_msat(settings, _current_btc_usd(), remaining)
    if high_msat < low_msat:
        raise LnurlRefusal(f"{short_address(target.starknet_address)} has too little of its daily allowance left "
                           "for another order; try again tomorrow.")
    return low_msat, high_msat


def _public_base() -> tuple[str, str]:
    """(base URL, host) wallets reach us at: the configured public URL, else the one this request came to."""
    configured = container().settings.lnurl_public_url
    base = configured or request.host_url.rstrip("/")
    return base, urlsplit(base).netloc


def _target(username: str) -> PayTarget:
    return resolve_username(username, container().settings.lnurl_aliases)


@blueprint.get("/.well-known/lnurlp/<username>")
@limiter.limit(reads_per_ip)
def pay_request(username: str) -> ResponseReturnValue:
    target = _target(username)
    base, host = _public_base()
    low_msat, high_msat = _range_for(target)
    return jsonify(LnurlPayRequest(
        callback=f"{base}/api/v1/lnurlp/{target.username}/callback", minSendable=low_msat, maxSendable=high_msat,
        metadata=pay_metadata(target, host, container().settings.spread_bps),
    ).model_dump())


@blueprint.get("/api/v1/lnurlp/<username>/callback")
@limiter.limit(lambda: container().settings.rate_limit_orders_per_ip)  # as POST /api/v1/orders: it makes an order
def pay_callback(username: str) -> ResponseReturnValue:
    target = _target(username)
    amount_msat = _amount_msat(request.args.get("amount", ""))
    _, host = _public_base()
    metadata = pay_metadata(target, host, container().settings.spread_bps)
    order_request = OrderRequest(starknet_address=target.starknet_address, amount_sat=amount_msat // 1000)
    try:
        order = container().place_order.place(order_request, description_hash=description_hash(metadata))
    except OrderRejected as exc:
        raise LnurlRefusal(f"{exc.message} {_range_words(target) if exc.code == 'amount_out_of_range' else exc.hint}"
                           .strip()) from None
    except ValidationError as exc:  # the address and amount were checked above; say so rather than a 500
        raise LnurlRefusal("The order could not be made from this address and amount.") from exc
    message = success_message(order.vusd_amount, target.starknet_address, order.id)
    return jsonify(LnurlInvoice(pr=order.bolt11, successAction=LnurlMessage(message=message)).model_dump())


def _amount_msat(text: str) -> int:
    if not text.isascii() or not text.isdigit() or len(text) > 25:  # 21e6 BTC is 22 digits of msat
        raise LnurlRefusal("Give the amount in millisatoshis: ?amount=<whole number>.")
    amount_msat = int(text)
    if not 0 < amount_msat <= MAX_MSAT:
        raise LnurlRefusal("The amount must be a positive number of millisatoshis.")
    if amount_msat % 1000:
        raise LnurlRefusal("Send a whole number of sats: the amount in millisatoshis must end in 000.")
    return amount_msat


def _range_words(target: PayTarget) -> str:
    try:
        low_msat, high_msat = _range_for(target)
    except LnurlRefusal as exc:
        return exc.reason
    return f"At today's rate send from {low_msat // 1000} to {high_msat // 1000} sats."
