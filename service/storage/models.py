"""Tables. Every state change is a row in `order_events` written in the same transaction as the order."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, Integer, String, Text, TypeDecorator
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, also on SQLite, which forgets the zone."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class OrderRow(Base):
    __tablename__ = "orders"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    starknet_address: Mapped[str] = mapped_column(String(66), index=True)
    vusd_amount: Mapped[str] = mapped_column(String(40))  # a decimal, as text, so no backend rounds it
    amount_msat: Mapped[int] = mapped_column(BigInteger)
    btc_usd_rate: Mapped[str] = mapped_column(String(40))
    spread_bps: Mapped[int] = mapped_column(Integer)
    max_slippage_bps: Mapped[int] = mapped_column(Integer)
    payment_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # Only orders made before preimages were derived (service.domain.preimages) have one here, and of those only
    # the ones still unfinished, or finished too lately for every HTLC to be gone, when migration 0010 ran; it is
    # never logged nor returned by any endpoint, and the repr below leaves it out. Newer orders name their key.
    preimage: Mapped[str | None] = mapped_column(String(64), nullable=True)
    preimage_key_id: Mapped[str | None] = mapped_column(String(8), nullable=True)
    bolt11: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), index=True)
    refund_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    amount_paid_msat: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # The latest signed mint, the operator account that signed it and that account's nonce it uses: it may
    # land until that nonce is used elsewhere. No account: signed before mint lanes, by the one operator.
    mint_tx_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    mint_nonce: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    mint_account: Mapped[str | None] = mapped_column(String(66), nullable=True)
    htlc_expiry_height: Mapped[int | None] = mapped_column(Integer, nullable=True)
    failure_detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The integrator's own: a JSON object (compact, bounded by OrderRequest), their id for the order, and where
    # the checkout sends the buyer back to (a host the operator allows). Returned with the order, never read.
    metadata_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    reference: Mapped[str | None] = mapped_column(String(128), nullable=True)
    redirect_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    hold_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Optimistic locking: an UPDATE only applies to the version it read, so two processes can never both
    # move the same order (SQLite ignores SELECT … FOR UPDATE).
    version: Mapped[int] = mapped_column(Integer, server_default="0")

    events: Mapped[list[OrderEventRow]] = relationship(
        back_populates="order", order_by="OrderEventRow.id", cascade="all, delete-orphan", lazy="selectin"
    )

    __table_args__ = (Index("ix_orders_address_created", "starknet_address", "created_at"),)
    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 (SQLAlchemy reads it as a class attribute)

    def __repr__(self) -> str:
        return f"<Order {self.id} {self.status} {self.amount_msat} msat hash={self.payment_hash[:12]}…>"


class OrderEventRow(Base):
    __tablename__ = "order_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    status: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The worker and the claim generation (see OrderClaimRow) the transition was made under, when it had one.
    worker_id: Mapped[str | None] = mapped_column(String(300), nullable=True)
    claim_generation: Mapped[int | None] = mapped_column(Integer, nullable=True)

    order: Mapped[OrderRow] = relationship(back_populates="events")


class OrderClaimRow(Base):
    """Which worker may act on an order until when (service.storage.claims). `worker_id` is NULL once released;
    `generation` only grows: each claim taken on the order raises it, and every write made under a claim is
    refused unless the row still carries that claim's worker, generation and a future `expires_at`."""

    __tablename__ = "order_claims"

    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), primary_key=True)
    worker_id: Mapped[str | None] = mapped_column(String(300), nullable=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    generation: Mapped[int] = mapped_column(Integer)


class MintLaneRow(Base):
    """Which worker sends from an operator account until when (service.storage.lanes): one sender per account
    keeps its nonces in order. `worker_id` is NULL once released; `generation` grows with every lease taken."""

    __tablename__ = "mint_lanes"

    account: Mapped[str] = mapped_column(String(66), primary_key=True)
    worker_id: Mapped[str | None] = mapped_column(String(300), nullable=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    generation: Mapped[int] = mapped_column(Integer)


class LiveWorkerRow(Base):
    """A worker and when it last ran a re-check pass (service.storage.workers): the workers seen lately share the
    open invoices out among them, each following its own."""

    __tablename__ = "live_workers"

    worker_id: Mapped[str] = mapped_column(String(300), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime())


class IdempotencyKeyRow(Base):
    """An `Idempotency-Key` seen on POST /api/v1/orders, with a digest of the body it came with."""

    __tablename__ = "idempotency_keys"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_digest: Mapped[str] = mapped_column(String(64))
    order_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class WebhookDeliveryRow(Base):
    """One state change to tell one URL about; retried until delivered or given up (the outbox)."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    order_id: Mapped[str] = mapped_column(String(40), index=True)
    event: Mapped[str] = mapped_column(String(40))
    body: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), index=True)  # pending, delivered, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    tries: Mapped[list[WebhookAttemptRow]] = relationship(
        order_by="WebhookAttemptRow.id", cascade="all, delete-orphan", lazy="selectin"
    )


class WebhookAttemptRow(Base):
    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(ForeignKey("webhook_deliveries.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    duration_ms: Mapped[int] = mapped_column(Integer)


class InboundWebhookRow(Base):
    """Delivery ids of inbound webhooks already acted on, so a replay is ignored."""

    __tablename__ = "inbound_webhooks"

    delivery_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
