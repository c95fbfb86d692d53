"""The roster of live workers: each worker checks in on every re-check pass, and the workers seen lately share the
open invoices out among them (service.worker), so each invoice has one stream on lnd, not one per worker.

Nothing here guards money: acting on an order still takes its claim (service.storage.claims). A roster that is
briefly out of date only makes an invoice followed twice, or by nobody until the next pass or the full poll.

A worker on another host is live until its check-ins stop for the TTL. One on this host is known dead at once when
its process is gone (or its pid is this process's own, as in a restarted container): a worker restarted after a
crash must not leave its predecessor's share of new invoices unfollowed for the TTL.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from service.storage.claims import process_gone, rowcount
from service.storage.models import LiveWorkerRow

FORGET_AFTER_TTLS = 10  # a row this many TTLs old is deleted by whoever checks in next


class WorkerRoster:
    def __init__(self, sessions: sessionmaker[Session], clock: Callable[[], datetime], worker_id: Callable[[], str],
                 ttl_s: float) -> None:
        self._sessions = sessions
        self._clock = clock
        self._worker_id = worker_id
        self.ttl = timedelta(seconds=ttl_s)

    def check_in(self) -> list[str]:
        """Record this worker as alive now; every worker seen within the TTL, this one included, sorted. One
        transaction: the check-in, the live workers, and the rows of workers known gone (this host's, whose process
        ended, and any unseen for FORGET_AFTER_TTLS TTLs) deleted."""
        me, now = self._worker_id(), self._clock()
        with self._sessions() as session, session.begin():
            seen = rowcount(session.execute(update(LiveWorkerRow).where(LiveWorkerRow.worker_id == me)
                                            .values(seen_at=now).execution_options(synchronize_session=False)))
            if not seen:
                session.add(LiveWorkerRow(worker_id=me, seen_at=now))
            rows = session.execute(select(LiveWorkerRow.worker_id, LiveWorkerRow.seen_at)).all()
            gone = {worker for worker, seen_at in rows
                    if seen_at < now - FORGET_AFTER_TTLS * self.ttl or process_gone(worker, me)}
            if gone:
                session.execute(delete(LiveWorkerRow).where(LiveWorkerRow.worker_id.in_(gone))
                                .execution_options(synchronize_session=False))
        return sorted(({worker for worker, seen_at in rows if seen_at >= now - self.ttl} - gone) | {me})

    def leave(self) -> None:
        """Off the roster at once (a worker stopping): the others follow its invoices from their next pass."""
        with self._sessions() as session, session.begin():
            session.execute(delete(LiveWorkerRow).where(LiveWorkerRow.worker_id == self._worker_id())
                            .execution_options(synchronize_session=False))
