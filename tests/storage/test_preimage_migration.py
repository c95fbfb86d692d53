"""Migration 0010 on SQLite and PostgreSQL: orders made before preimages were derived lose their stored preimage
once finished (at once when they never settle; completed and failed ones once no HTLC of theirs can still be
held), and unfinished orders keep theirs, so they can still settle."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from alembic import command

from service.domain.states import ENDED_WITHOUT_VUSD, FINAL_STATUSES, OrderStatus
from service.storage.database import alembic_config, make_engine, make_session_factory, migrate
from service.storage.models import OrderRow

STORED = "ab" * 32
LONG_AGO = datetime.now(UTC) - timedelta(days=60)  # past any HTLC's expiry
LATELY = datetime.now(UTC) - timedelta(hours=2)  # within the reconciliation window


def legacy_order(status: OrderStatus, changed_at: datetime) -> OrderRow:
    return OrderRow(
        id=f"ord_{uuid.uuid4().hex}", starknet_address="0x1", vusd_amount="25.00", amount_msat=25_000_000,
        btc_usd_rate="97000", spread_bps=50, max_slippage_bps=100, payment_hash=uuid.uuid4().hex * 2,
        preimage=STORED, bolt11="lnbcrt1…", status=status.value, created_at=changed_at - timedelta(minutes=5),
        updated_at=changed_at, expires_at=changed_at + timedelta(minutes=5),
    )


def test_finished_orders_forget_their_stored_preimage_and_unfinished_ones_keep_it(fresh_database_url: str) -> None:
    command.upgrade(alembic_config(fresh_database_url), "0009")
    engine = make_engine(fresh_database_url)
    sessions = make_session_factory(engine)
    orders = {(status, when): legacy_order(status, at) for status in OrderStatus
              for when, at in (("long ago", LONG_AGO), ("lately", LATELY))}
    with sessions.begin() as session:
        session.add_all(orders.values())
    ids = {key: order.id for key, order in orders.items()}

    migrate(fresh_database_url)

    with sessions() as session:
        kept = {key for key, order_id in ids.items() if session.get(OrderRow, order_id).preimage == STORED}
    engine.dispose()
    never_settled = {(status, when) for status in ENDED_WITHOUT_VUSD for when in ("long ago", "lately")}
    past_any_htlc = {(status, "long ago") for status in FINAL_STATUSES}
    assert kept == set(orders) - never_settled - past_any_htlc, sorted(kept)
    assert {(status, "lately") for status in OrderStatus if not status.is_final} <= kept
    assert {(OrderStatus.COMPLETED, "lately"), (OrderStatus.FAILED, "lately")} <= kept
