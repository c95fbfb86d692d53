"""Claims: one worker at a time acts on an order, for a lease it renews while the work lasts.

A claim is a row of `order_claims` taken with a conditional UPDATE (free or expired) or, the first time, an
INSERT; the same statements work on SQLite (one file, several processes) and PostgreSQL. Taking it raises the
order's `generation`, the fencing token: every write made under the claim (`fence`, inside the write's own
transaction) first touches the claim row on the condition that it still carries this worker, this generation
and a future expiry, so a worker whose claim ran out or was taken over can record nothing, and the takeover
waits for a write already under way. A background thread renews every claim this process holds, half a lease
apart or more often; a crashed process renews nothing, and its claims are free once they expire, or at once
to a worker on the same host that sees its process is gone.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from service.domain.ports import ClaimLost, OrderClaim
from service.storage.heartbeat import LeaseHeartbeat
from service.storage.models import MintLaneRow, OrderClaimRow

log = logging.getLogger("volta.claims")


_ISSUED_HERE: set[str] = set()  # worker ids this process has made: each is alive as long as the process is


def new_worker_id() -> str:
    """host:pid:random, unique to this process (the random part tells a reused pid apart)."""
    worker_id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
    _ISSUED_HERE.add(worker_id)
    return worker_id


def process_gone(worker_id: str, me: str) -> bool:
    """Whether `worker_id` (host:pid:random, new_worker_id) is a process of this host that
    no longer runs. Another host's, or one that cannot be told, counts as running; so does this process."""
    if worker_id == me:
        return False
    try:
        host, pid, _ = worker_id.rsplit(":", 2)
        my_host, my_pid, _ = me.rsplit(":", 2)
        if host != my_host:
            return False
        if pid == my_pid:  # this process's own, or an earlier process's with the pid reused (a restarted container)
            return worker_id not in _ISSUED_HERE
        os.kill(int(pid), 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return True
    except (ValueError, OSError):  # not our format, or another user's process (PermissionError): running
        return False
    return False


def take_from_gone_holder(session: Session, row: OrderClaimRow | MintLaneRow, me: str, expires_at: datetime,
                          what: str) -> bool:
    """Take a lease row (an order's claim, a mint lane) held by a process of this host that is gone: it can write
    and send nothing more, so waiting out its lease would only hold HTLCs longer (a worker restarted after a crash
    resumes at once). Conditional on the holder and generation read, so of two takers one wins."""
    if row.worker_id is None or not process_gone(row.worker_id, me):
        return False
    model = type(row)
    this_row = [column == getattr(row, column.key) for column in model.__table__.primary_key]
    taken = rowcount(session.execute(
        update(model)
        .where(*this_row, model.worker_id == row.worker_id, model.generation == row.generation)
        .values(worker_id=me, expires_at=expires_at, generation=row.generation + 1)
        .execution_options(synchronize_session=False)))
    if taken:
        log.info("%s taken over from worker %s, whose process is gone", what, row.worker_id)
    return bool(taken)


class ClaimStore:
    def __init__(self, sessions: sessionmaker[Session], clock: Callable[[], datetime], lease_s: float,
                 renew_every_s: float) -> None:
        self._sessions = sessions
        self._clock = clock
        self.lease = timedelta(seconds=lease_s)
        self._identity = (os.getpid(), new_worker_id())
        self._held: dict[str, OrderClaim] = {}
        self._lock = threading.Lock()
        self._heartbeat = LeaseHeartbeat(self.renew, renew_every_s, leases="claims", thread_name="claims-heartbeat",
                                         log=log)

    @property
    def worker_id(self) -> str:
        """This process's id; a forked child (gunicorn --preload) gets its own on first use."""
        pid, worker_id = self._identity
        if pid != os.getpid():
            self._identity = (os.getpid(), new_worker_id())
            worker_id = self._identity[1]
        return worker_id

    # -- taking and giving back --------------------------------------------------------------------------

    def take(self, order_id: str) -> OrderClaim | None:
        """A claim on the order if it is free, its holder's lease has run out or its holder's process is gone;
        None while another live holder has it (`held_by_another`)."""
        me, now = self.worker_id, self._clock()
        try:
            with self._sessions() as session, session.begin():
                taken = rowcount(session.execute(
                    update(OrderClaimRow)
                    .where(OrderClaimRow.order_id == order_id,
                           or_(OrderClaimRow.worker_id.is_(None), OrderClaimRow.expires_at <= now))
                    .values(worker_id=me, expires_at=now + self.lease, generation=OrderClaimRow.generation + 1)
                    .execution_options(synchronize_session=False)))
                if taken:
                    generation = session.scalar(select(OrderClaimRow.generation)
                                                .where(OrderClaimRow.order_id == order_id))
                elif (row := session.get(OrderClaimRow, order_id)) is None:  # never claimed: the first claim inserts
                    session.add(OrderClaimRow(order_id=order_id, worker_id=me, expires_at=now + self.lease,
                                              generation=1))
                    generation = 1
                elif take_from_gone_holder(session, row, me, now + self.lease, f"claim on order {order_id}"):
                    generation = row.generation + 1
                else:
                    return None
        except IntegrityError:  # another worker inserted the first claim at the same moment
            return None
        assert generation is not None
        return OrderClaim(order_id, me, generation)

    def held_by_another(self, holder: str | None, held_until: datetime | None, now: datetime) -> bool:
        """Whether another process holds a claim row with this holder and lease, so that `take` would fail: a
        live lease of a process that still runs (a gone one of this host `take` takes over at once)."""
        if holder is None or held_until is None or held_until <= now:
            return False
        me = self.worker_id
        return holder != me and not process_gone(holder, me)

    def release(self, claim: OrderClaim) -> None:
        """Free the order for any worker (a claim no longer ours is left alone)."""
        with self._lock:
            self._held.pop(claim.order_id, None)
        with self._sessions() as session, session.begin():
            session.execute(
                update(OrderClaimRow).where(*_is(claim))
                .values(worker_id=None, expires_at=self._clock())
                .execution_options(synchronize_session=False))

    @contextmanager
    def holding(self, order_id: str) -> Iterator[OrderClaim | None]:
        """Take the claim, keep it renewed while the block runs, release it at the end. Yields None (and does
        nothing else) when another worker holds the order. If the release fails, the claim expires."""
        claim = self.take(order_id)
        if claim is None:
            yield None
            return
        with self._lock:
            self._held[order_id] = claim
        self._heartbeat.start()
        try:
            yield claim
        finally:
            try:
                self.release(claim)
            except Exception:  # the database went away: the lease runs out instead
                log.warning("order %s: could not release claim %d; it expires within %ss", order_id,
                            claim.generation, self.lease.total_seconds(), exc_info=True)

    # -- the fence ---------------------------------------------------------------------------------------

    def fence(self, session: Session, claim: OrderClaim, action: str) -> None:
        """Inside a write's transaction, before anything else: go on only if `claim` is still live, and hold
        the claim row until the commit, so no takeover can slip in between. Refreshes the lease too."""
        now = self._clock()
        live = rowcount(session.execute(
            update(OrderClaimRow).where(*_is(claim), OrderClaimRow.expires_at > now)
            .values(expires_at=now + self.lease)
            .execution_options(synchronize_session=False)))
        if not live:
            raise self._lost(session, claim, action, now)

    def check(self, claim: OrderClaim, action: str) -> None:
        """Right before a side effect outside the database (settle, cancel, void): raise ClaimLost unless the
        claim is still live."""
        with self._sessions() as session, session.begin():
            self.fence(session, claim, action)

    def _lost(self, session: Session, claim: OrderClaim, action: str, now: datetime) -> ClaimLost:
        row = session.get(OrderClaimRow, claim.order_id, populate_existing=True)
        if row is None or row.generation == claim.generation:
            holder = "its lease ran out" if row is not None and row.worker_id == claim.worker_id else "released"
        else:
            holder = f"taken over by {row.worker_id or 'a worker since done'} as claim {row.generation}"
        error = ClaimLost(claim, action, holder)
        log.error("order %s: %s", claim.order_id, error)
        return error

    # -- the heartbeat -----------------------------------------------------------------------------------

    def renew(self) -> list[OrderClaim]:
        """Extend every claim this process holds by a lease from now; returns the ones found lost (logged)."""
        with self._lock:
            held = list(self._held.values())
        if not held:
            return []
        now = self._clock()
        ours = and_(OrderClaimRow.order_id.in_([claim.order_id for claim in held]),
                    OrderClaimRow.worker_id == self.worker_id, OrderClaimRow.expires_at > now)
        with self._sessions() as session, session.begin():
            session.execute(update(OrderClaimRow).where(ours).values(expires_at=now + self.lease)
                            .execution_options(synchronize_session=False))
            rows = session.execute(select(OrderClaimRow.order_id, OrderClaimRow.generation).where(ours))
            live = {(order_id, generation) for order_id, generation in rows}
        lost = [claim for claim in held if (claim.order_id, claim.generation) not in live]
        for claim in lost:
            log.warning("order %s: claim %d of worker %s lost (lease ran out or taken over); any write under it "
                        "will be refused", claim.order_id, claim.generation, claim.worker_id)
            with self._lock:
                if self._held.get(claim.order_id) == claim:
                    del self._held[claim.order_id]
        return lost

    def held(self) -> list[OrderClaim]:
        with self._lock:
            return list(self._held.values())

    def close(self) -> None:
        self._heartbeat.close()


def _is(claim: OrderClaim) -> tuple[Any, ...]:
    return (OrderClaimRow.order_id == claim.order_id, OrderClaimRow.worker_id == claim.worker_id,
            OrderClaimRow.generation == claim.generation)


def rowcount(result: Any) -> int:
    return cast(CursorResult[Any], result).rowcount
