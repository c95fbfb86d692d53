"""the signed mint's nonce and the held HTLC's expiry height

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("mint_nonce", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("htlc_expiry_height", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("htlc_expiry_height")
        batch.drop_column("mint_nonce")
