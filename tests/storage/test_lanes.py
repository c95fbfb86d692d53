"""Mint lane leases on SQLite and PostgreSQL: one worker per operator account at a time, taken over only once
its lease ran out, given back on release and on a clean close, and found lost by the renewal."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session, sessionmaker

from service.storage.claims import new_worker_id
from service.storage.lanes import LaneLeaseStore
from tests.clock import Clock
from tests.storage.gone_process import gone_worker_id, running_worker_id
from tests.storage.test_repository import NOW

LEASE_S = 15


def lanes(sessions: sessionmaker[Session], clock: Clock) -> LaneLeaseStore:
    worker_id = f"worker-{uuid.uuid4().hex[:8]}"
    return LaneLeaseStore(sessions, clock, lambda: worker_id, LEASE_S)


def account() -> str:
    return f"0x{uuid.uuid4().hex}"


def test_one_worker_per_lane_until_released(sessions: sessionmaker[Session]) -> None:
    clock = Clock(NOW)
    a, b, lane = lanes(sessions, clock), lanes(sessions, clock), account()
    assert a.take(lane) and a.holds(lane)
    assert not b.take(lane) and not b.holds(lane)
    assert a.take(lane), "taking a lane it holds again only renews it"
    a.release(lane)
    assert not a.holds(lane)
    assert b.take(lane) and b.holds(lane)
    a.close(), b.close()


def test_a_crashed_workers_lane_is_taken_over_after_its_lease_and_the_old_holder_learns_it(
        sessions: sessionmaker[Session]) -> None:
    clock = Clock(NOW)
    crashed, survivor, lane = lanes(sessions, clock), lanes(sessions, clock), account()
    assert crashed.take(lane)
    clock.advance(LEASE_S - 1)
    assert not survivor.take(lane), "still leased"
    clock.advance(2)
    assert survivor.take(lane)
    assert crashed.renew() == [lane] and not crashed.holds(lane)
    assert survivor.renew() == [] and survivor.holds(lane)
    survivor.close()


def test_a_clean_close_gives_every_lane_back(sessions: sessionmaker[Session]) -> None:
    clock = Clock(NOW)
    stopping, other = lanes(sessions, clock), lanes(sessions, clock)
    held = [account(), account()]
    assert all(stopping.take(lane) for lane in held)
    stopping.close()
    assert all(other.take(lane) for lane in held), "no wait for the lease of a worker that stopped cleanly"
    other.close()


def test_a_lane_whose_holder_process_is_gone_is_taken_at_once(sessions: sessionmaker[Session]) -> None:
    """A worker restarted after a SIGKILL mints at once instead of waiting out its dead predecessor's lease (on
    the regtest kill matrix that wait was about 10 s a kill). A holder still running, or on another host, keeps
    its lane."""
    clock = Clock(NOW)
    holders = {gone_worker_id(): account(), running_worker_id(): account(), "elsewhere:1:remote": account()}
    stores = [LaneLeaseStore(sessions, clock, lambda holder=holder: holder, LEASE_S) for holder in holders]
    assert all(store.take(lane) for store, lane in zip(stores, holders.values(), strict=True))
    gone_lane, live_lane, remote_lane = holders.values()
    my_id = new_worker_id()
    me = LaneLeaseStore(sessions, clock, lambda: my_id, LEASE_S)
    assert me.take(gone_lane) and me.holds(gone_lane)
    assert stores[0].renew() == [gone_lane], "the old holder's lease is gone"
    assert not me.take(live_lane) and not me.take(remote_lane)
    for store in (*stores, me):
        store.close()
