"""order metadata: the integrator's JSON object, their reference and the checkout's redirect URL

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        # NULL for every order made before: none of them had any.
        batch.add_column(sa.Column("metadata_json", sa.Text(), nullable=True))
        batch.add_column(sa.Column("reference", sa.String(128), nullable=True))
        batch.add_column(sa.Column("redirect_url", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("redirect_url")
        batch.drop_column("reference")
        batch.drop_column("metadata_json")
