"""forget finished orders' stored preimages: orders made before preimages were derived (0005) kept theirs in clear

Expired and refunded orders never settle: their preimage goes at once. A completed order may still need it (the
reconciliation settles an HTLC the settle never reached), and so may a failed one (an operator decides whether to
settle or cancel a still-held HTLC): theirs goes once no HTLC of theirs can still be held. Unfinished orders keep
theirs, so they can still settle.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29
"""

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# service.domain.states' final statuses as spelt when this was written: a migration must do the same on a
# database migrated years from now, whatever the states are called then.
NEVER_SETTLED = ("expired", "refunded")  # states.ENDED_WITHOUT_VUSD: an HTLC that arrived was cancelled
MAY_STILL_SETTLE = ("completed", "failed")  # the rest of states.FINAL_STATUSES
# An HTLC is held at most until its expiry (lnd cancels a hold invoice's HTLC a few blocks before), and nodes
# forward none that expires more than 2016 blocks (about 14 days) ahead (lnd's default max-cltv-expiry): three
# weeks after an order's last change, no HTLC of it is held any more.
LONGEST_HOLD = timedelta(days=21)

orders = sa.table("orders", sa.column("status", sa.String), sa.column("preimage", sa.String),
                  sa.column("updated_at", sa.DateTime(timezone=True)))


def upgrade() -> None:
    held_at_most_until = datetime.now(UTC) - LONGEST_HOLD
    finished = sa.or_(orders.c.status.in_(NEVER_SETTLED),
                      sa.and_(orders.c.status.in_(MAY_STILL_SETTLE), orders.c.updated_at < held_at_most_until))
    op.execute(orders.update().where(orders.c.preimage.is_not(None), finished).values(preimage=None))


def downgrade() -> None:
    pass  # a forgotten preimage cannot come back, and the schema did not change
