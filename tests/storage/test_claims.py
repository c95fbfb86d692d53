"""Claims on SQLite and PostgreSQL: one live claim per order, taken over only once its lease ran out, and every
write under a claim refused once the claim is no longer live (the fencing token)."""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy.orm import Session, sessionmaker

from service.domain.ports import ClaimLost
from service.domain.states import OrderStatus
from service.storage.orders import OrderRepository
from tests.clock import Clock
from tests.storage.gone_process import gone_worker_id, running_worker_id
from tests.storage.test_repository import NOW, new_order

LEASE_S = 15


def worker(sessions: sessionmaker[Session], clock: Clock) -> OrderRepository:
    """One worker's view of the database: its own repository, so its own worker id."""
    return OrderRepository(sessions, clock, claim_lease_s=LEASE_S, claim_renew_interval_s=3600)


def test_one_live_claim_per_order_until_released(sessions: sessionmaker[Session]) -> None:
    clock = Clock(NOW)
    a, b = worker(sessions, clock), worker(sessions, clock)
    order = a.add(new_order(f"0x{uuid.uuid4().hex}"))
    assert a.claims.worker_id != b.claims.worker_id

    first = a.claims.take(order.id)
    assert first is not None and first.generation == 1
    assert b.claims.take(order.id) is None
    assert a.claims.take(order.id) is None, "a worker's own live claim is not taken twice either"
    a.claims.release(first)
    second = b.claims.take(order.id)
    assert second is not None and (second.worker_id, second.generation) == (b.claims.worker_id, 2)


def test_a_claim_whose_holder_process_is_gone_is_taken_at_once_and_the_old_one_writes_nothing(
    sessions: sessionmaker[Session],
) -> None:
    """A worker restarted after a SIGKILL on the same host resumes its orders at once instead of waiting out its
    dead predecessor's lease; the old claim is fenced out. A holder still running keeps its claim."""
    clock = Clock(NOW)
    crashed, running, restarted = worker(sessions, clock), worker(sessions, clock), worker(sessions, clock)
    crashed.claims._identity = (os.getpid(), gone_worker_id())  # as if it had been that process
    running.claims._identity = (os.getpid(), running_worker_id())
    orphan = crashed.add(new_order(f"0x{uuid.uuid4().hex}"))
    busy = running.add(new_order(f"0x{uuid.uuid4().hex}"))
    old, live = crashed.claims.take(orphan.id), running.claims.take(busy.id)
    assert old is not None and live is not None

    new = restarted.claims.take(orphan.id)
    assert new is not None and (new.worker_id, new.generation) == (restarted.claims.worker_id, old.generation + 1)
    assert restarted.claims.take(busy.id) is None, "its holder still runs"
    with pytest.raises(ClaimLost):
        crashed.transition(orphan.id, OrderStatus.PAYMENT_HELD, claim=old)
    restarted.transition(orphan.id, OrderStatus.PAYMENT_HELD, claim=new)


def test_an_expired_claim_is_taken_over_and_the_old_holder_can_write_nothing(
    sessions: sessionmaker[Session], caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock(NOW)
    a, b = worker(sessions, clock), worker(sessions, clock)
    order = a.add(new_order(f"0x{uuid.uuid4().hex}"))
    old = a.claims.take(order.id)
    assert old is not None
    a.transition(order.id, OrderStatus.PAYMENT_HELD, claim=old)

    clock.advance(LEASE_S - 1)
    assert b.claims.take(order.id) is None, "still live"
    clock.advance(2)
    new = b.claims.take(order.id)
    assert new is not None and new.generation == old.generation + 1

    with caplog.at_level(logging.ERROR, logger="volta.claims"), pytest.raises(ClaimLost):
        a.transition(order.id, OrderStatus.MINTING, claim=old)
    with pytest.raises(ClaimLost):
        a.record_mint_tx(order.id, "0xa", 1, replacing=None, while_status=OrderStatus.PAYMENT_HELD, claim=old)
    with pytest.raises(ClaimLost):
        a.claims.check(old, "settle the HTLC")
    assert [r.levelno for r in caplog.records if order.id in r.getMessage()] == [logging.ERROR] * 3
    assert f"taken over by {b.claims.worker_id} as claim {new.generation}" in caplog.records[0].getMessage()

    stored = b.get(order.id)
    assert (stored.status, stored.mint_tx_hash) == ("payment_held", None), "nothing written under the lost claim"
    b.transition(order.id, OrderStatus.MINTING, claim=new)
    assert [(e.status, e.worker_id, e.claim_generation) for e in b.get(order.id).events] == [
        ("awaiting_payment", None, None), ("payment_held", a.claims.worker_id, old.generation),
        ("minting", b.claims.worker_id, new.generation)]


def test_a_claim_past_its_lease_is_lost_even_if_nobody_took_it(sessions: sessionmaker[Session]) -> None:
    clock = Clock(NOW)
    a = worker(sessions, clock)
    order = a.add(new_order(f"0x{uuid.uuid4().hex}"))
    claim = a.claims.take(order.id)
    assert claim is not None
    clock.advance(LEASE_S)
    with pytest.raises(ClaimLost, match="lease ran out"):
        a.transition(order.id, OrderStatus.PAYMENT_HELD, claim=claim)


def test_renewal_keeps_a_claim_and_reports_one_taken_over(sessions: sessionmaker[Session]) -> None:
    clock = Clock(NOW)
    a, b = worker(sessions, clock), worker(sessions, clock)
    order = a.add(new_order(f"0x{uuid.uuid4().hex}"))
    with a.claims.holding(order.id) as claim:
        assert claim is not None and a.claims.held() == [claim]
        for _ in range(3):  # three leases' worth of time, renewed before each ran out
            clock.advance(LEASE_S - 1)
            assert a.claims.renew() == []
            assert b.claims.take(order.id) is None
        a.transition(order.id, OrderStatus.PAYMENT_HELD, claim=claim)

        clock.advance(LEASE_S)  # a renewal came too late (the process was frozen, say)
        taken = b.claims.take(order.id)
        assert taken is not None
        assert a.claims.renew() == [claim] and a.claims.held() == []
    # Leaving the block released nothing of b's.
    assert a.claims.take(order.id) is None
    b.transition(order.id, OrderStatus.MINTING, claim=taken)


def test_workers_taking_one_order_at_once_get_exactly_one_claim(sessions: sessionmaker[Session]) -> None:
    clock = Clock(NOW)
    workers = [worker(sessions, clock) for _ in range(6)]
    order = workers[0].add(new_order(f"0x{uuid.uuid4().hex}"))
    start = threading.Barrier(len(workers))
    taken: list[object] = []

    def take(repository: OrderRepository) -> None:
        start.wait()
        taken.append(repository.claims.take(order.id))

    threads = [threading.Thread(target=take, args=(repository,)) for repository in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(taken) == len(workers)
    assert len([claim for claim in taken if claim is not None]) == 1, taken


def test_the_heartbeat_keeps_a_claim_while_the_work_lasts(sessions: sessionmaker[Session]) -> None:
    """Real time: a 1 s lease renewed every 0.25 s outlives three leases of work; the others never get it."""
    def real_worker() -> OrderRepository:
        return OrderRepository(sessions, lambda: datetime.now(UTC), claim_lease_s=1, claim_renew_interval_s=0.25)

    a, b = real_worker(), real_worker()
    order = a.add(new_order(f"0x{uuid.uuid4().hex}"))
    with a.claims.holding(order.id) as claim:
        assert claim is not None
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            assert b.claims.take(order.id) is None
            time.sleep(0.1)
        a.transition(order.id, OrderStatus.PAYMENT_HELD, claim=claim)
    taken = b.claims.take(order.id)
    assert taken is not None and taken.generation == claim.generation + 1
    a.claims.close()
