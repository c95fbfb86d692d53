"""Orders in the database. A transition and its history row are written in one transaction, and
listeners (the live event stream) hear of it only after the commit. A write made under a claim
(service.storage.claims) is fenced in that same transaction: refused unless the claim is still live."""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from service.domain.ports import OrderClaim
from service.domain.states import (
    COMMITTED_STATUSES,
    FINAL_STATUSES,
    RECONCILED_STATUSES,
    ConcurrentChange,
    IllegalTransition,
    OrderStatus,
    check_transition,
)
from service.storage.claims import ClaimStore
from service.storage.models import OrderClaimRow, OrderEventRow, OrderRow

log = logging.getLogger("volta.orders")


class OrderNotFound(KeyError):
    pass


@dataclass(frozen=True)
class RecheckItem:
    id: str
    status: str
    expires_at: datetime
    payment_hash: str
    held_elsewhere: bool  # another worker holds a live claim: taking it would fail, so the pass does not try


_UNCHECKED = object()
# Striped: a fixed number of locks however many addresses come by (two addresses sharing one only wait).
_ADDRESS_LOCKS = tuple(threading.Lock() for _ in range(64))
# On PostgreSQL an admission holds two connections at once (the advisory lock's and its session's). Under gevent
# nothing else bounds how many run together: at most this many per process, so they take at most 2 x this many of
# the pool's connections (service.storage.database: 10 + 40) and can never wait on each other for the last one.
MAX_CONCURRENT_ADMISSIONS = 16
_ADMISSIONS = threading.BoundedSemaphore(MAX_CONCURRENT_ADMISSIONS)


class OrderRepository:
    def __init__(self, sessions: sessionmaker[Session], clock: Callable[[], datetime], claim_lease_s: float = 15,
                 claim_renew_interval_s: float = 5) -> None:
        self._sessions = sessions
        self._clock = clock
        # This process's claims on orders (its worker id, its heartbeat); the writes below fence with them.
        self.claims = ClaimStore(sessions, clock, claim_lease_s, claim_renew_interval_s)
        self._listeners: list[Callable[[OrderRow], None]] = []
        self._outbox_writers: list[Callable[[Session, OrderRow], None]] = []

    def subscribe(self, listener: Callable[[OrderRow], None]) -> None:
        """Called after each committed change (live streams, metrics)."""
        self._listeners.append(listener)

    def add_outbox_writer(self, writer: Callable[[Session, OrderRow], None]) -> None:
        """Called inside the transaction of each change, so what it writes (webhooks) commits with it."""
        self._outbox_writers.append(writer)

    def create(self, **fields: Any) -> OrderRow:
        """A new order with these columns, stored with its first history row."""
        return self.add(OrderRow(**fields))

    def add(self, order: OrderRow) -> OrderRow:
        with self._sessions() as session, session.begin():
            order.events.append(OrderEventRow(status=order.status, at=order.created_at))
            session.add(order)
            self._write_outbox(session, order)
        self._notify(order)
        return order

    def get(self, order_id: str) -> OrderRow:
        with self._sessions() as session:
            order = session.get(OrderRow, order_id)
            if order is None:
                raise OrderNotFound(order_id)
            return order

    def get_by_payment_hash(self, payment_hash_hex: str) -> OrderRow:
        with self._sessions() as session:
            order = session.scalar(select(OrderRow).where(OrderRow.payment_hash == payment_hash_hex))
            if order is None:
                raise OrderNotFound(payment_hash_hex)
            return order

    def transition(
        self, order_id: str, status: OrderStatus, detail: str | None = None,
        unless_mint_changed_from: str | object | None = _UNCHECKED, claim: OrderClaim | None = None, **fields: Any,
    ) -> OrderRow:
        """Move the order to `status` (if allowed) and save `fields` with it, durably, before returning.

        `unless_mint_changed_from`: the mint attempt the decision was made on; if another one was recorded
        since, the write is refused with `ConcurrentChange` (a refund must never race a freshly signed mint).
        `claim`: the worker's claim the decision was made under; refused with `ClaimLost` unless still live, and
        written into the history row. Without one (tests, an operator's hand) the write is not fenced."""
        current = OrderStatus.AWAITING_PAYMENT
        try:
            with self._sessions() as session, session.begin():
                if claim is not None:
                    self.claims.fence(session, claim, f"record {status.value}")
                order = self._locked(session, order_id)
                current = OrderStatus(order.status)
                check_transition(order_id, current, status)
                if unless_mint_changed_from is not _UNCHECKED and order.mint_tx_hash != unless_mint_changed_from:
                    raise ConcurrentChange(f"order {order_id}: mint {order.mint_tx_hash} was signed meanwhile")
                now = self._clock()
                order.status = status.value
                order.updated_at = now
                for name, value in fields.items():
                    setattr(order, name, value)
                order.events.append(OrderEventRow(
                    status=status.value, at=now, detail=detail, worker_id=claim.worker_id if claim else None,
                    claim_generation=claim.generation if claim else None))
                self._write_outbox(session, order)
        except StaleDataError as exc:  # another process moved the order between our read and our write
            raise IllegalTransition(order_id, current, status) from exc
        if claim is not None:
            log.info("order %s: %s -> %s by worker %s under claim %d", order_id, current.value, status.value,
                     claim.worker_id, claim.generation)
        self._notify(order)
        return order

    def record_mint_tx(self, order_id: str, tx_hash: str, nonce: int, replacing: str | None,
                       while_status: OrderStatus = OrderStatus.MINTING, claim: OrderClaim | None = None,
                       account: str | None = None) -> bool:
        """Write the signed mint before it is sent, under the order's lock, only if the order is still in
        `while_status` and its latest attempt is still `replacing` (proved dead by the caller). False: do not
        send it. With `claim`, fenced as `transition` is (ClaimLost: do not send it either)."""
        try:
            with self._sessions() as session, session.begin():
                if claim is not None:
                    self.claims.fence(session, claim, f"record mint {tx_hash}")
                order = self._locked(session, order_id)
                if order.status != while_status.value or order.mint_tx_hash != replacing:
                    return False
                order.mint_tx_hash, order.mint_nonce, order.mint_account = tx_hash, nonce, account
                order.updated_at = self._clock()
        except StaleDataError:
            return False
        if claim is not None:
            log.info("order %s: mint %s (nonce %d) recorded by worker %s under claim %d", order_id, tx_hash, nonce,
                     claim.worker_id, claim.generation)
        return True

    @staticmethod
    def _locked(session: Session, order_id: str) -> OrderRow:
        order = session.get(OrderRow, order_id, with_for_update=True, populate_existing=True)
        if order is None:
            raise OrderNotFound(order_id)
        return order

    def unfinished(self) -> list[OrderRow]:
        with self._sessions() as session:
            query = select(OrderRow).where(OrderRow.status.not_in([s.value for s in FINAL_STATUSES]))
            return list(session.scalars(query))

    def to_recheck(self, now: datetime) -> list[RecheckItem]:
        """What the worker's safety net goes over every couple of seconds: each unfinished order's id, status,
        expiry and payment hash, and whether another worker holds a live claim on it (six columns from one join).
        Whole orders with their history, as the pass once read them, were most of a worker's CPU under load."""
        query = (select(OrderRow.id, OrderRow.status, OrderRow.expires_at, OrderRow.payment_hash,
                        OrderClaimRow.worker_id, OrderClaimRow.expires_at)
                 .outerjoin(OrderClaimRow, OrderClaimRow.order_id == OrderRow.id)
                 .where(OrderRow.status.not_in([s.value for s in FINAL_STATUSES])))
        with self._sessions() as session:
            rows = session.execute(query).all()
        return [RecheckItem(order_id, status, expires_at, payment_hash,
                            held_elsewhere=self.claims.held_by_another(holder, held_until, now))
                for order_id, status, expires_at, payment_hash, holder, held_until in rows]

    def cancel_sweep_candidates(self, refunded_since: datetime, expired_since: datetime, limit: int) -> list[OrderRow]:
        """Ended orders whose invoice may still hold an HTLC our cancel did not reach, at most `limit`: refunded
        ones changed since `refunded_since` (their HTLC was held), then expired ones changed since `expired_since`
        (an HTLC can only have slipped in as they expired); newest first within each."""
        with self._sessions() as session:
            refunded = (OrderRow.status == OrderStatus.REFUNDED.value) & (OrderRow.updated_at >= refunded_since)
            expired = (OrderRow.status == OrderStatus.EXPIRED.value) & (OrderRow.updated_at >= expired_since)
            query = (select(OrderRow).where(or_(refunded, expired))
                     .order_by(case((OrderRow.status == OrderStatus.REFUNDED.value, 0), else_=1),
                               OrderRow.updated_at.desc())
                     .limit(limit))
            return list(session.scalars(query))

    def finished_since(self, since: datetime, expired_since: datetime | None = None,
                       expired_limit: int | None = None) -> list[OrderRow]:
        """What the reconciliation checks: completed and refunded orders changed since `since`, then expired ones
        changed since `expired_since` (default `since`), the newest `expired_limit` of them at most."""
        with self._sessions() as session:
            moved_money = [status.value for status in RECONCILED_STATUSES if status is not OrderStatus.EXPIRED]
            query = select(OrderRow).where(OrderRow.status.in_(moved_money), OrderRow.updated_at >= since)
            orders = list(session.scalars(query.order_by(OrderRow.updated_at)))
            expired = (select(OrderRow)
                       .where(OrderRow.status == OrderStatus.EXPIRED.value,
                              OrderRow.updated_at >= (since if expired_since is None else expired_since))
                       .order_by(OrderRow.updated_at.desc()).limit(expired_limit))
            return orders + list(session.scalars(expired))

    def for_address(self, address: str, limit: int, offset: int) -> tuple[list[OrderRow], int]:
        with self._sessions() as session:
            query = select(OrderRow).where(OrderRow.starknet_address == address)
            total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
            rows = session.scalars(query.order_by(OrderRow.created_at.desc()).limit(limit).offset(offset))
            return list(rows), total

    def vusd_committed_since(self, address: str, since: datetime, excluding: str | None = None) -> Decimal:
        with self._sessions() as session:
            query = select(OrderRow.vusd_amount).where(
                OrderRow.starknet_address == address,
                OrderRow.created_at >= since,
                OrderRow.status.in_([s.value for s in COMMITTED_STATUSES]),
            )
            if excluding:
                query = query.where(OrderRow.id != excluding)
            return sum((Decimal(amount) for amount in session.scalars(query)), Decimal(0))

    def created_since(self, address: str, since: datetime) -> list[datetime]:
        """When each order for `address` created after `since` was created, oldest first."""
        with self._sessions() as session:
            query = select(OrderRow.created_at).where(OrderRow.starknet_address == address,
                                                      OrderRow.created_at >= since)
            return list(session.scalars(query.order_by(OrderRow.created_at)))

    @contextmanager
    def admitting(self, address: str) -> Iterator[None]:
        """Admit orders for one address one at a time, so limits counted from the orders already created
        hold for requests that arrive together: a lock per address in this process and, on PostgreSQL,
        an advisory lock across processes (SQLite serves one process)."""
        with _ADMISSIONS, _ADDRESS_LOCKS[hash(address) % len(_ADDRESS_LOCKS)]:
            engine = self._sessions.kw["bind"]
            if engine.dialect.name != "postgresql":
                yield
                return
            key = int.from_bytes(hashlib.sha256(address.encode()).digest()[:8], "big", signed=True)
            with engine.connect() as connection:
                connection.execute(select(func.pg_advisory_lock(key)))
                try:
                    yield
                finally:
                    connection.execute(select(func.pg_advisory_unlock(key)))

    def latest_event_id(self, order_id: str) -> int:
        with self._sessions() as session:
            return session.scalar(select(func.max(OrderEventRow.id)).where(OrderEventRow.order_id == order_id)) or 0

    def counts_by_status(self) -> dict[str, int]:
        with self._sessions() as session:
            rows = session.execute(select(OrderRow.status, func.count()).group_by(OrderRow.status))
            return {status: count for status, count in rows}

    def refunds_by_reason(self) -> dict[str, int]:
        with self._sessions() as session:
            query = (select(OrderRow.refund_reason, func.count()).where(OrderRow.status == OrderStatus.REFUNDED.value)
                     .group_by(OrderRow.refund_reason))
            return {reason or "unknown": count for reason, count in session.execute(query)}

    def _write_outbox(self, session: Session, order: OrderRow) -> None:
        session.flush()
        for writer in self._outbox_writers:
            writer(session, order)

    def _notify(self, order: OrderRow) -> None:
        for listener in self._listeners:
            listener(order)
