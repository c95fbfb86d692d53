"""claims with a lease: one worker at a time acts on an order; transitions name the claim they were made under

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "order_claims",
        sa.Column("order_id", sa.String(40), sa.ForeignKey("orders.id"), primary_key=True),
        sa.Column("worker_id", sa.String(300), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
    )
    with op.batch_alter_table("order_events") as batch:
        batch.add_column(sa.Column("worker_id", sa.String(300), nullable=True))
        batch.add_column(sa.Column("claim_generation", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("order_events") as batch:
        batch.drop_column("claim_generation")
        batch.drop_column("worker_id")
    op.drop_table("order_claims")
