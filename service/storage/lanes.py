"""Mint lane leases: one worker at a time sends from each operator account.

A lane is a row of `mint_lanes`, taken as an order claim is (service.storage.claims): a conditional UPDATE when
free or expired, an INSERT the first time, so the same statements work on SQLite and PostgreSQL. A heartbeat
renews the lanes this process holds; a crashed worker's lanes are free once their lease runs out, or at
once to a worker on the same host that sees its process is gone.

The lease is about throughput, not safety: two senders on one account only collide on nonces (the node refuses
the second transaction at a nonce, and the client re-reads the nonce), and every signed mint is recorded before
it is sent, so a mint is never lost track of whoever sends it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import or_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from service.storage.claims import rowcount, take_from_gone_holder
from service.storage.heartbeat import LeaseHeartbeat
from service.storage.models import MintLaneRow

log = logging.getLogger("volta.lanes")


class LaneLeaseStore:
    def __init__(self, sessions: sessionmaker[Session], clock: Callable[[], datetime], worker_id: Callable[[], str],
                 lease_s: float) -> None:
        self._sessions = sessions
        self._clock = clock
        self._worker_id = worker_id
        self.lease = timedelta(seconds=lease_s)
        self._held: set[str] = set()
        self._lock = threading.Lock()
        # A third of a lease apart: after one failed beat the next still comes before the lane runs out.
        self._heartbeat = LeaseHeartbeat(self.renew, lease_s / 3, leases="mint lanes", thread_name="lanes-heartbeat",
                                         log=log)

    def take(self, account: str) -> bool:
        """Lease the lane if it is free, its holder's lease ran out or its holder's process is gone; False while
        another live worker holds it."""
        me, now = self._worker_id(), self._clock()
        try:
            with self._sessions() as session, session.begin():
                taken = rowcount(session.execute(
                    update(MintLaneRow)
                    .where(MintLaneRow.account == account,
                           or_(MintLaneRow.worker_id.is_(None), MintLaneRow.worker_id == me,
                               MintLaneRow.expires_at <= now))
                    .values(worker_id=me, expires_at=now + self.lease, generation=MintLaneRow.generation + 1)
                    .execution_options(synchronize_session=False)))
                if not taken:
                    row = session.get(MintLaneRow, account)
                    if row is None:
                        session.add(MintLaneRow(account=account, worker_id=me, expires_at=now + self.lease,
                                                generation=1))
                    elif not take_from_gone_holder(session, row, me, now + self.lease, f"mint lane {account}"):
                        return False
        except IntegrityError:  # another worker inserted the first lease at the same moment
            return False
        with self._lock:
            self._held.add(account)
        log.info("mint lane %s leased by worker %s", account, me)
        self._heartbeat.start()
        return True

    def holds(self, account: str) -> bool:
        """Whether this process holds the lane, as of its last renewal (a lost lease is dropped there)."""
        with self._lock:
            return account in self._held

    def release(self, account: str) -> None:
        with self._lock:
            self._held.discard(account)
        with self._sessions() as session, session.begin():
            session.execute(update(MintLaneRow)
                            .where(MintLaneRow.account == account, MintLaneRow.worker_id == self._worker_id())
                            .values(worker_id=None, expires_at=self._clock())
                            .execution_options(synchronize_session=False))
        log.info("mint lane %s released", account)

    def renew(self) -> list[str]:
        """Extend every lane this process holds; returns (and forgets) the ones found taken or expired."""
        with self._lock:
            held = set(self._held)
        lost = []
        now = self._clock()
        with self._sessions() as session, session.begin():
            for account in sorted(held):
                renewed = rowcount(session.execute(
                    update(MintLaneRow)
                    .where(MintLaneRow.account == account, MintLaneRow.worker_id == self._worker_id(),
                           MintLaneRow.expires_at > now)
                    .values(expires_at=now + self.lease).execution_options(synchronize_session=False)))
                if not renewed:
                    lost.append(account)
        for account in lost:
            log.warning("mint lane %s lost (lease ran out or taken over); this worker stops sending from it", account)
            with self._lock:
                self._held.discard(account)
        return lost

    def close(self) -> None:
        """Stop renewing and give every lane back (a worker stopping cleanly need not make others wait)."""
        self._heartbeat.close()
        with self._lock:
            held = sorted(self._held)
        for account in held:
            try:
                self.release(account)
            except Exception:  # the database is away: the lease runs out instead
                log.warning("could not release mint lane %s; it expires within %ss", account,
                            self.lease.total_seconds(), exc_info=True)
