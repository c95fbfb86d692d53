"""The roster of live workers on SQLite and PostgreSQL: a worker is on it from its check-in until its check-ins stop
for a TTL, or at once when it leaves. (The databases are shared between tests: only this test's workers count.)"""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session, sessionmaker

from service.storage.workers import WorkerRoster
from tests.clock import Clock
from tests.storage.test_repository import NOW

TTL_S = 10


def roster(sessions: sessionmaker[Session], clock: Clock) -> tuple[WorkerRoster, str]:
    worker_id = f"worker-{uuid.uuid4().hex[:8]}"
    return WorkerRoster(sessions, clock, lambda: worker_id, TTL_S), worker_id


def test_workers_see_each_other_until_check_ins_stop_or_one_leaves(sessions: sessionmaker[Session]) -> None:
    clock = Clock(NOW)
    (a, a_id), (b, b_id), (c, c_id) = (roster(sessions, clock) for _ in range(3))
    a.check_in(), b.check_in()
    assert {a_id, b_id} <= set(c.check_in())
    clock.advance(TTL_S / 2)
    a.check_in(), c.check_in()
    clock.advance(TTL_S / 2 + 1)  # b last checked in TTL + 1 s ago; a and c TTL / 2 + 1 s ago
    live = set(a.check_in())
    assert a_id in live and c_id in live and b_id not in live
    c.leave()
    assert c_id not in set(a.check_in())
    assert b_id in set(b.check_in()), "a worker back after a pause is on the roster again"


def test_a_worker_always_counts_itself(sessions: sessionmaker[Session]) -> None:
    alone, alone_id = roster(sessions, Clock(NOW))
    assert alone_id in alone.check_in()
    alone.check_in()  # again: an update, not a second row
    alone.leave()
