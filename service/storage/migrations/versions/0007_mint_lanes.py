"""mint lanes: which worker sends from which operator account, and the account each signed mint uses

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mint_lanes",
        sa.Column("account", sa.String(66), primary_key=True),
        sa.Column("worker_id", sa.String(300), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
    )
    with op.batch_alter_table("orders") as batch:
        # NULL for mints signed before lanes existed: those were signed by the one operator account.
        batch.add_column(sa.Column("mint_account", sa.String(66), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("mint_account")
    op.drop_table("mint_lanes")
