"""The roster of live workers on SQLite and PostgreSQL: a worker is on it from its check-in until its check-ins stop
for a TTL, or at once when it leaves or, on this host, when its process is gone. (The databases are shared between
tests: only this test's workers count.)"""

from __future__ import annotations

import os
import socket
import uuid
from functools import partial

from sqlalchemy.orm import Session, sessionmaker

from service.storage.claims import new_worker_id, process_gone
from service.storage.workers import WorkerRoster
from tests.clock import Clock
from tests.storage.gone_process import ended_process_id
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


def test_a_process_of_this_host_that_is_gone_is_off_the_roster_at_once(sessions: sessionmaker[Session]) -> None:
    """A worker restarted after a SIGKILL must not wait the TTL for its predecessor's row to age out: until then it
    would leave the predecessor's share of new invoices unfollowed."""
    clock, host = Clock(NOW), socket.gethostname()
    me = new_worker_id()
    crashed = f"{host}:{ended_process_id()}:{uuid.uuid4().hex[:8]}"
    replaced = f"{host}:{os.getpid()}:{uuid.uuid4().hex[:8]}"  # this pid, another id: a restarted container's pid 1
    elsewhere = f"another-host:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    for worker in (crashed, replaced, elsewhere):
        WorkerRoster(sessions, clock, partial(str, worker), TTL_S).check_in()
    live = set(WorkerRoster(sessions, clock, lambda: me, TTL_S).check_in())
    assert me in live and elsewhere in live, "another host's worker is live until its TTL"
    assert crashed not in live and replaced not in live
    assert crashed not in set(WorkerRoster(sessions, clock, lambda: elsewhere, TTL_S).check_in()), "its row is gone"


def test_only_a_process_of_this_host_that_is_gone_counts_as_gone() -> None:
    me = new_worker_id()
    host = socket.gethostname()
    assert not process_gone(f"{host}:{os.getppid()}:abcd", me), "a running process of this host"
    assert process_gone(f"{host}:{ended_process_id()}:abcd", me)
    assert not process_gone("other:1:abcd", me)
    assert not process_gone("not-a-worker-id", me)
