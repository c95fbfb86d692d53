"""The pages a person sees: buy, checkout (QR, WebLN, live status) and history. Served by Flask with
no build step; the pages talk to the JSON API in service/api.

The words a person reads about an order's state live here, once: the checkout page renders them on the
server (so the page is right before any script runs) and hands the same table to its script as JSON, both in
the reader's language (service/web/i18n.py).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, render_template, request
from flask.typing import ResponseReturnValue
from flask_babel import format_time
from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString
from werkzeug.exceptions import NotFound

from service.api.orders import load_order
from service.api.serializers import iso, order_json
from service.domain.pricing import VUSD_DECIMALS
from service.domain.states import FINAL_STATUSES, OrderStatus, RefundReason
from service.storage.models import OrderRow
from service.web.i18n import number
from service.web.security import content_security_policy

blueprint = Blueprint("web", __name__, template_folder="templates", static_folder="static",
                      static_url_path="/static/web")

# The four steps a purchase goes through, as the checkout page's progress bar shows them.
STEPS = [
    {"key": "pay", "label": _l("Pay")},
    {"key": "received", "label": _l("Received")},
    {"key": "minting", "label": _l("Minting")},
    {"key": "done", "label": _l("Done")},
]
STEP_OF_STATUS: dict[str, int] = {OrderStatus.AWAITING_PAYMENT: 0, OrderStatus.PAYMENT_HELD: 1, OrderStatus.MINTING: 2,
                                  OrderStatus.MINTED: 2, OrderStatus.COMPLETED: 3}

# Placeholders: {vusd} the VUSD amount, {slippage} the price protection in percent.
STATUS_COPY: dict[str, dict[str, LazyString]] = {
    OrderStatus.AWAITING_PAYMENT: {
        "badge": _l("Waiting for payment"),
        "headline": _l("Waiting for your payment"),
        "detail": _l("Scan the QR code with a Lightning wallet, or open the invoice in a wallet on this device."),
    },
    OrderStatus.PAYMENT_HELD: {
        "badge": _l("Payment received"),
        "headline": _l("Payment received"),
        "detail": _l("Your payment is held, not yet taken, while we mint your {vusd} VUSD."),
    },
    OrderStatus.MINTING: {
        "badge": _l("Minting VUSD"),
        "headline": _l("Minting your VUSD"),
        "detail": _l("The vault is minting {vusd} VUSD to your Starknet address. This takes a few seconds."),
    },
    OrderStatus.MINTED: {
        "badge": _l("Minting VUSD"),
        "headline": _l("VUSD minted"),
        "detail": _l("Your {vusd} VUSD is minted. We are collecting the held payment to finish."),
    },
    OrderStatus.COMPLETED: {
        "badge": _l("Done"),
        "headline": _l("Done: {vusd} VUSD is yours"),
        "detail": _l("The VUSD is at your Starknet address."),
    },
    OrderStatus.EXPIRED: {
        "badge": _l("Expired"),
        "headline": _l("This quote expired"),
        "detail": _l("Nobody paid the invoice in time, so no money moved: your sats never left your wallet."),
    },
    OrderStatus.REFUNDED: {
        "badge": _l("Refunded"),
        "headline": _l("Refunded: your wallet has your sats back"),
        "detail": _l("We did not take your payment and no VUSD was minted."),
    },
    OrderStatus.FAILED: {
        "badge": _l("Needs attention"),
        "headline": _l("We need to look at this order"),
        "detail": _l("Something went wrong that we could not settle on our own. It is logged for an operator; "
                     "please keep this page's order number if you contact us."),
    },
}

REFUND_REASONS: dict[str, LazyString] = {
    RefundReason.QUOTE_EXPIRED: _l("Your payment arrived after the quote had expired, so we could not honour its "
                                   "price."),
    RefundReason.SLIPPAGE_EXCEEDED: _l("The bitcoin price moved more than your {slippage}\u00a0% price protection "
                                       "between the quote and your payment."),
    RefundReason.UNDERPAID: _l("The payment was smaller than the invoice asked for."),
    RefundReason.LIMIT_EXCEEDED: _l("This purchase would have gone over the daily limit for your Starknet address."),
    RefundReason.MINT_FAILED: _l("We could not mint the VUSD on Starknet, so we did not take your payment."),
    RefundReason.OVERPAID: _l("The payment was larger than the invoice asked for, so we sent all of it back."),
    RefundReason.HTLC_EXPIRING: _l("Your payment would have timed out on the Lightning network before we could "
                                   "finish, so we sent it back."),
    "": _l("We could not complete the purchase."),  # a refund with no reason recorded
}

FINAL = tuple(sorted(status.value for status in FINAL_STATUSES))


def _words(table: dict[str, LazyString]) -> dict[str, str]:
    """A table of words in the reader's language (LazyStrings resolved in this request)."""
    return {key: str(text) for key, text in table.items()}


def page_copy() -> dict[str, Any]:
    """The checkout script's words in the reader's language, and the order of the steps."""
    return {"steps": [{"key": step["key"], "label": str(step["label"])} for step in STEPS],
            "step_of_status": STEP_OF_STATUS,
            "statuses": {status: _words(words) for status, words in STATUS_COPY.items()},
            "refund_reasons": _words(REFUND_REASONS), "final": FINAL}


def _fill(text: LazyString | str, order: OrderRow) -> str:
    return str(text).replace("{vusd}", vusd(order.vusd_amount)).replace("{slippage}", percent(order.max_slippage_bps))


def describe(order: OrderRow) -> dict[str, str]:
    """What the checkout page says about an order in its current state, before any script runs."""
    copy = STATUS_COPY.get(order.status, STATUS_COPY[OrderStatus.FAILED])
    reason: LazyString | str = ""
    if order.status == OrderStatus.REFUNDED:
        reason = REFUND_REASONS.get(order.refund_reason or "", REFUND_REASONS[""])
    return {"badge": str(copy["badge"]), "headline": _fill(copy["headline"], order),
            "detail": _fill(copy["detail"], order), "reason": _fill(reason, order)}


def explorer_link(template: str, tx_hash: str | None) -> str:
    """The explorer's page of a transaction: `template` with "{tx_hash}" replaced; "" without either."""
    if not template or not tx_hash:
        return ""
    return template.replace("{tx_hash}", tx_hash)


def vusd_asset() -> dict[str, Any]:
    """What the done page asks the Starknet wallet to watch (wallet_watchAsset's ERC20 options)."""
    settings = current_app.extensions["volta"].settings
    return {"address": settings.vusd_address, "symbol": "VUSD", "decimals": VUSD_DECIMALS}


def sats(amount_msat: int) -> str:
    """25773190 msat -> "25,773.19" (German: "25.773,19"); whole sats without decimals."""
    return number(Decimal(amount_msat) / 1000, "#,##0.###")


def vusd(amount: str) -> str:
    """"1000.5" -> "1,000.50" (German: "1.000,50")."""
    try:
        return number(Decimal(amount), "#,##0.00")
    except (InvalidOperation, ValueError):
        return amount


def percent(bps: int) -> str:
    """Basis points as a percentage with two decimals: 100 -> "1.00" (German: "1,00"); the page adds " %"."""
    return number(Decimal(bps) / 100, "0.00")


def clock(moment: datetime) -> str:
    """A time of day in UTC, as the reader writes it (hours, minutes, seconds)."""
    return format_time(moment, "medium")


@blueprint.context_processor
def _helpers() -> dict[str, Any]:
    return {"sats": sats, "vusd": vusd, "percent": percent, "clock": clock, "number": number}


@blueprint.after_request
def _security_headers(response: Response) -> Response:
    settings = current_app.extensions["volta"].settings
    response.headers.setdefault("Content-Security-Policy",
                                content_security_policy(settings, wallet_connect=request.endpoint == "web.checkout"))
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


@blueprint.get("/")
def buy() -> ResponseReturnValue:
    prefill = {"amount": request.args.get("amount", "")[:40], "address": request.args.get("address", "")[:80],
               "slippage": request.args.get("slippage", "")[:6]}
    return render_template("buy.html", prefill=prefill, page="buy")


@blueprint.get("/checkout/<order_id>")
def checkout(order_id: str) -> ResponseReturnValue:
    try:
        order = load_order(order_id)
    except NotFound:
        return render_template("not_found.html", order_id=order_id, page="checkout"), 404
    return render_template(
        "checkout.html", order=order, order_data=order_json(order), copy=page_copy(), said=describe(order),
        step=STEP_OF_STATUS.get(order.status, -1), steps=STEPS, final=order.status in FINAL,
        server_now=iso(datetime.now(UTC)), page="checkout",
        redirect_host=urlsplit(order.redirect_url).hostname if order.redirect_url else None,
        explorer_tx_url=current_app.extensions["volta"].settings.explorer_tx_url,
        tx_url=explorer_link(current_app.extensions["volta"].settings.explorer_tx_url, order.mint_tx_hash),
        vusd_asset=vusd_asset(),
    )


@blueprint.get("/api/v1/docs")
def api_docs() -> ResponseReturnValue:
    """The OpenAPI document rendered by Swagger UI, vendored from its npm package (scripts/vendor_swagger_ui.sh)."""
    return render_template("docs.html")


@blueprint.get("/history")
def history() -> ResponseReturnValue:
    address = request.args.get("starknet_address", "")[:80]
    badges = {status: str(words["badge"]) for status, words in STATUS_COPY.items()}
    return render_template("history.html", address=address, badges=badges, page="history")
