"""preimages derived from the operator's key: the order keeps only which key

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.alter_column("preimage", existing_type=sa.String(64), nullable=True)
        batch.add_column(sa.Column("preimage_key_id", sa.String(8), nullable=True))


def downgrade() -> None:
    # Orders with a derived preimage cannot go back to a schema that needs it stored.
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("preimage_key_id")
        batch.alter_column("preimage", existing_type=sa.String(64), nullable=False)
