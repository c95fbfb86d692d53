"""Request and response models of the API beyond the order (service/api/serializers.py has the order): the
OpenAPI document is generated from them, and the fuzzing checks every answer against that document."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from service.api.serializers import Order
from service.order_view import DateTime, Hex32, StarknetAddress


class Error(BaseModel):
    """Every 4xx and 503: what went wrong and what to do next."""

    error: str = Field(description="a stable code, e.g. invalid_request")
    message: str = Field(description="what happened, to what")
    hint: str = Field(description="what to do next")


class OrderList(BaseModel):
    orders: list[Order]
    total: int
    limit: int
    offset: int
    next_offset: int | None = Field(description="the offset of the next page; null on the last")


class Rate(BaseModel):
    btc_usd: str
    updated_at_unix: int
    age_s: float
    stale: bool
    spread_bps: int
    default_max_slippage_bps: int
    max_allowed_slippage_bps: int
    max_price_drop_bps: int
    max_price_age_s: int
    min_order_vusd: str
    max_order_vusd: str
    quote_lifetime_s: int


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    components: dict[str, str] = Field(description="each component's state, e.g. lnd: up")


class Balance(BaseModel):
    starknet_address: StarknetAddress
    vusd: str
    vusd_base_units: str


class Account(BaseModel):
    starknet_address: StarknetAddress
    deployed: bool


class HistoryChallengeRequest(BaseModel):
    starknet_address: str = Field(description="the Starknet account to prove")


class TypedDataDomain(BaseModel):
    name: str
    version: str
    chainId: str
    revision: str


class TypedData(BaseModel):
    """SNIP-12 typed data, as wallets' signMessage takes it."""

    types: dict[str, Any]
    primaryType: str
    domain: TypedDataDomain
    message: dict[str, Any]


class HistoryChallenge(BaseModel):
    starknet_address: StarknetAddress
    challenge: str = Field(description="opaque; send it back with the signature")
    typed_data: TypedData
    expires_at: DateTime


class HistorySessionRequest(BaseModel):
    challenge: str
    signature: list[str | int] = Field(min_length=1, max_length=64,
                                       description="the felts signMessage returned, 0x-hex or decimal")


class HistorySession(BaseModel):
    session: str = Field(description="send as Authorization: Bearer <session>")
    token_type: Literal["Bearer"]
    starknet_address: StarknetAddress
    expires_at: DateTime
    expires_in_s: int


class LightningNotice(BaseModel):
    """A payment notice from a hosted node: only makes the service re-check that invoice with its own node."""

    payment_hash: Hex32


class WebhookAck(BaseModel):
    status: Literal["accepted", "duplicate"]
    detail: str | None = None
    order_id: str | None = None


class DeliveryTry(BaseModel):
    at: DateTime
    status_code: int | None
    error: str | None
    duration_ms: int


class Delivery(BaseModel):
    delivery_id: str = Field(description="also the webhook-id header of every attempt")
    url: str
    order_id: str
    event: str
    state: Literal["pending", "delivered", "failed"]
    attempts: int
    next_attempt_at: DateTime
    created_at: DateTime
    tries: list[DeliveryTry]


class DeliveryList(BaseModel):
    deliveries: list[Delivery]


class Redelivery(BaseModel):
    delivery_id: str
    state: Literal["pending", "delivered", "failed"]


# -- LNURL-pay (LUD-06, LUD-09) and Lightning Address (LUD-16): field names as the LUDs spell them --------------

class LnurlPayRequest(BaseModel):
    """LUD-06's payRequest, answered at /.well-known/lnurlp/<username>."""

    tag: Literal["payRequest"] = "payRequest"
    callback: str = Field(description="where the wallet asks for an invoice, with ?amount=<msat>")
    minSendable: int = Field(ge=1, description="millisatoshis")
    maxSendable: int = Field(ge=1, description="millisatoshis")
    metadata: str = Field(description="a JSON array as a string; the invoice's description hash is its sha256")
    commentAllowed: int = 0


class LnurlMessage(BaseModel):
    """LUD-09's message successAction, shown by the wallet once paid (that is, once minted)."""

    tag: Literal["message"] = "message"
    message: str = Field(max_length=144)


class LnurlInvoice(BaseModel):
    """LUD-06's callback answer: a hold invoice committing to sha256(metadata)."""

    pr: str = Field(description="BOLT 11 invoice")
    routes: list[Any] = Field(default_factory=list, max_length=0)
    successAction: LnurlMessage


class LnurlError(BaseModel):
    """LUD-06's refusal, sent with HTTP 200 (LUD-01: status codes carry no meaning), 429 when rate limited."""

    status: Literal["ERROR"] = "ERROR"
    reason: str = Field(description="what the wallet shows its user")
