"""orders and their state history

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("starknet_address", sa.String(66), nullable=False),
        sa.Column("vusd_amount", sa.String(40), nullable=False),
        sa.Column("amount_msat", sa.BigInteger(), nullable=False),
        sa.Column("btc_usd_rate", sa.String(40), nullable=False),
        sa.Column("spread_bps", sa.Integer(), nullable=False),
        sa.Column("max_slippage_bps", sa.Integer(), nullable=False),
        sa.Column("payment_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("preimage", sa.String(64), nullable=False),
        sa.Column("bolt11", sa.Text(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("refund_reason", sa.String(32), nullable=True),
        sa.Column("amount_paid_msat", sa.BigInteger(), nullable=True),
        sa.Column("mint_tx_hash", sa.String(66), nullable=True),
        sa.Column("failure_detail", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("hold_deadline", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_orders_starknet_address", "orders", ["starknet_address"])
    op.create_index("ix_orders_status", "orders", ["status"])
    op.create_index("ix_orders_address_created", "orders", ["starknet_address", "created_at"])
    op.create_table(
        "order_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("order_id", sa.String(40), sa.ForeignKey("orders.id"), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
    )
    op.create_index("ix_order_events_order_id", "order_events", ["order_id"])


def downgrade() -> None:
    op.drop_table("order_events")
    op.drop_table("orders")
