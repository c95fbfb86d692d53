"""The settlement worker: watches every open invoice, re-checks all unfinished orders, settles them,
and now and then reconciles finished orders with lnd and the vault.

Runs inside the API process by default; `python -m service.worker` runs it alone. Any number may run on one
database, none special: a worker acts on an order only under its claim on it (service.storage.claims), taken
when there is something to do and released when the step ends; an order another worker holds is left alone.
Within one worker, an order is also worked on by one thread at a time.

Open invoices are followed on lnd's per-invoice streams, all of them as async streams on one event-loop thread
(service.loop_thread): thousands of open invoices cost a connection each, not a thread each. Each update is
handed to a small pool of its own (an accepted HTLC is waiting: it does not queue behind a re-check pass).

With several workers, each open invoice is followed by one of them: the live workers (service.storage.workers,
checked in on every pass) rank for each order by rendezvous hashing, and the first follows it. When every worker
followed every invoice, a worker's CPU per purchase with three workers was 124-134 ms; with one follower, 95-98 ms
(README, Measured). All workers still poll every open invoice every FULL_POLL_EVERY_PASSES passes.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from functools import partial

from service.domain.ports import ClaimLost, OrderClaim
from service.domain.reconciliation import Reconciliation
from service.domain.settlement import Settlement
from service.domain.states import OrderStatus
from service.events import NewOrder
from service.lightning.base import InvoiceState, InvoiceStatus, LightningBackend, LightningError
from service.loop_thread import LoopThread
from service.storage.models import OrderRow
from service.storage.orders import OrderRepository, RecheckItem
from service.storage.workers import WorkerRoster

log = logging.getLogger("volta.worker")
RESUBSCRIBE_DELAY_S = 1.0
# The cancel sweep asks lnd about ended orders whose HTLC may still be held because our cancel did not reach it.
# Refunded orders held one: swept for a day (beyond any regtest CLTV, and a day of lnd downtime elsewhere); each
# cost its payer a real payment, so there are few. Expired orders could only catch one in the moment they expired:
# swept for 10 minutes (20 passes), after which the reconciliation (a day back) still repairs a held one. Spam
# orders that expire unpaid therefore fall out of the sweep quickly, and no pass asks about more than
# CANCEL_SWEEP_MAX_PER_PASS orders (refunded first, newest first): 50 lookups every 30 s at most.
REFUNDED_SWEEP_WINDOW = timedelta(days=1)
EXPIRED_SWEEP_WINDOW = timedelta(minutes=10)
CANCEL_SWEEP_MAX_PER_PASS = 50
# The reconciliation checks completed and refunded orders a day back (each cost its payer a real payment), but an
# order that expired unpaid can only disagree with lnd in the hour after (an HTLC that slipped in as it expired,
# a cancel that did not reach lnd: lnd refuses HTLCs on an expired invoice), and no pass checks more than
# RECONCILE_EXPIRED_MAX_PER_PASS of them, newest first: orders made only to expire cannot flood lnd with lookups.
RECONCILE_EXPIRED_WINDOW = timedelta(hours=1)
RECONCILE_EXPIRED_MAX_PER_PASS = 200
FULL_POLL_EVERY_PASSES = 15  # with the default 2 s interval: every open invoice is polled every 30 s
# A worker that has not checked in for this many passes is off the roster: its invoices are followed by the others
# from their next pass (10 s with the default 2 s interval, then 2 s more at most).
ROSTER_TTL_PASSES = 5


class Worker:
    def __init__(
        self, settlement: Settlement, orders: OrderRepository, lightning: LightningBackend,
        clock: Callable[[], datetime], threads: int, recheck_interval_s: float,
        reconciliation: Reconciliation | None = None, reconcile_interval_s: float = 300,
        reconcile_window: timedelta = timedelta(days=1), roster: WorkerRoster | None = None,
    ) -> None:
        """Without `roster` this worker follows every open invoice (one worker, or a test)."""
        self.settlement = settlement
        self.orders = orders
        self.claims = orders.claims
        self.lightning = lightning
        self.clock = clock
        self.recheck_interval_s = recheck_interval_s
        self.reconciliation = reconciliation
        self.reconcile_interval_s = reconcile_interval_s
        self.reconcile_window = reconcile_window
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="settle")
        self._stream_pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="invoice")
        self._streams: LoopThread | None = None  # started with the first watch
        self._stream_tasks: dict[str, concurrent.futures.Future[None]] = {}
        self._busy: set[str] = set()
        self._scheduled: set[str] = set()
        self._watched: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._recheck_thread = threading.Thread(target=self._recheck_loop, name="recheck", daemon=True)
        self._reconcile_thread = threading.Thread(target=self._reconcile_loop, name="reconcile", daemon=True)
        self._passes = 0
        self._roster = roster
        self._live: list[str] = []  # the roster as of this worker's last check-in

    # -- life cycle -------------------------------------------------------------------------------------

    def start(self) -> None:
        self._check_in()
        self._recheck_thread.start()
        if self.reconciliation is not None:
            self._reconcile_thread.start()

    def stop(self) -> None:
        """Stop taking work. Claims held by steps still running are not released: they expire (a step may still
        be acting until the process ends)."""
        self._stop.set()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._stream_pool.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            streams, tasks = self._streams, list(self._stream_tasks.values())
        for task in tasks:
            task.cancel()  # ends the coroutine on the loop too
        if streams is not None:
            streams.close()
        if self._roster is not None:
            try:
                self._roster.leave()
            except Exception:  # the database is gone: the others see this worker's check-ins stop instead
                log.warning("could not leave the roster of live workers", exc_info=True)

    def is_alive(self) -> bool:
        return self._recheck_thread.is_alive() and not self._stop.is_set()

    def watch(self, order: OrderRow | RecheckItem | NewOrder) -> None:
        """Follow this order's invoice on the node's stream (for each new order this worker follows, and again by
        the re-check pass after a restart or a dropped stream). Returns at once."""
        with self._lock:
            if order.id in self._watched or self._stop.is_set():
                return
            self._watched.add(order.id)
            if self._streams is None:
                self._streams = LoopThread(name="invoice-streams")
            streams = self._streams
        task = streams.submit(self._follow_invoice(order.id, bytes.fromhex(order.payment_hash)))
        with self._lock:
            if order.id in self._watched:  # not already over
                self._stream_tasks[order.id] = task

    def on_new_order(self, order: NewOrder) -> None:
        """An order just created, here or in another process: follow its invoice if it falls to this worker."""
        if self.follows(order.id):
            self.watch(order)

    def follows(self, order_id: str) -> bool:
        """Whether this worker follows the order's invoice: the live worker that ranks first for the order by
        rendezvous hashing does, so a worker joining or leaving moves only its own share of the invoices."""
        return len(self._live) <= 1 or follower_of(order_id, self._live) == self.claims.worker_id

    def _check_in(self) -> None:
        if self._roster is not None:
            self._live = self._roster.check_in()

    def watched_count(self) -> int:
        with self._lock:
            return len(self._watched)

    # -- the invoice streams (coroutines on the streams' loop) ---------------------------------------------

    async def _follow_invoice(self, order_id: str, payment_hash: bytes) -> None:
        try:
            while not self._stop.is_set():
                try:
                    async for invoice in self.lightning.watch_invoice_async(payment_hash):
                        if not await self._hand_over(order_id, invoice):
                            return
                        if invoice.state in (InvoiceState.ACCEPTED, InvoiceState.SETTLED, InvoiceState.CANCELED):
                            return  # from here on the settlement and the re-check own the order
                except LightningError as exc:
                    log.info("invoice stream for %s dropped (%s); re-subscribing", order_id, exc)
                await asyncio.sleep(RESUBSCRIBE_DELAY_S)
        except Exception:  # the re-check subscribes again on its next pass
            log.exception("order %s: invoice stream failed", order_id)
        finally:
            with self._lock:
                self._watched.discard(order_id)
                self._stream_tasks.pop(order_id, None)

    async def _hand_over(self, order_id: str, invoice: InvoiceStatus) -> bool:
        """Act on one update in the stream pool, waited for (updates of one invoice are handled in order).
        False when the worker is stopping. An order this worker is already working on (a re-check's poll saw the
        HTLC first and is minting) is left to that step: waiting for it would hold a stream-pool thread for the
        whole mint, and a few such orders would stall every other invoice's update. The stream ends on ACCEPTED
        either way, so the next re-check pass polls the order if the step did not act on it."""
        work = partial(self._run_exclusive, order_id, partial(self._on_invoice, order_id, invoice), False)
        try:
            await asyncio.wrap_future(self._stream_pool.submit(work))
        except RuntimeError:  # the pool is shut down: we are stopping
            return False
        return True

    # -- the safety net ---------------------------------------------------------------------------------

    def _recheck_loop(self) -> None:
        while not self._stop.wait(self.recheck_interval_s):
            try:
                self.recheck_all()
            except Exception:  # the loop must survive anything; the next pass tries again
                log.exception("re-check pass failed")

    def _reconcile_loop(self) -> None:
        assert self.reconciliation is not None
        while not self._stop.wait(self.reconcile_interval_s):
            try:
                now = self.clock()
                self.reconciliation.run(since=now - self.reconcile_window,
                                        expired_since=now - min(self.reconcile_window, RECONCILE_EXPIRED_WINDOW),
                                        expired_limit=RECONCILE_EXPIRED_MAX_PER_PASS)
            except Exception:  # lnd or the devnet down: the next pass tries again
                log.exception("reconciliation pass failed")

    def recheck_all(self) -> None:
        self._passes += 1
        poll_all_open = self._passes % FULL_POLL_EVERY_PASSES == 1
        self._check_in()
        now = self.clock()
        for order in self.orders.to_recheck(now):
            if OrderStatus(order.status) is OrderStatus.AWAITING_PAYMENT:
                mine, watched = self.follows(order.id), order.id in self._watched
                if mine:
                    self.watch(order)  # re-subscribes after a restart, a dropped stream, or its follower gone
                # The stream is the fast path; polling every open invoice on every pass would cost one lnd
                # call per open order every few seconds, so mine not yet followed, expired, or all every Nth pass.
                if poll_all_open or (mine and not watched) or now > order.expires_at:
                    self._submit(order.id, partial(self._poll, order.id))
            elif not order.held_elsewhere:  # another live worker is on it; if it dies, we take over
                self._submit(order.id, partial(self._resume, order.id))
        if poll_all_open:
            # A refund or expiry whose cancel did not reach lnd (it was down) must not leave the HTLC held.
            for ended in self.orders.cancel_sweep_candidates(now - REFUNDED_SWEEP_WINDOW, now - EXPIRED_SWEEP_WINDOW,
                                                             limit=CANCEL_SWEEP_MAX_PER_PASS):
                self._submit(ended.id, partial(self._sweep, ended))

    def recheck(self, order_id: str) -> None:
        """Ask the node about this order again soon (a hint from an inbound webhook, say)."""
        if OrderStatus(self.orders.get(order_id).status) is OrderStatus.AWAITING_PAYMENT:
            self._submit(order_id, partial(self._poll, order_id))
        else:
            self._submit(order_id, partial(self._resume, order_id))

    def _resume(self, order_id: str) -> None:
        # The order is read once the claim is held: it may have moved on, here or in another worker.
        self._claimed(order_id, lambda claim: self.settlement.resume(self.orders.get(order_id), claim))

    def _sweep(self, order: OrderRow) -> None:
        self._claimed(order.id, partial(self.settlement.enforce_refund, order))

    def _poll(self, order_id: str) -> None:
        order = self.orders.get(order_id)
        self._on_invoice(order_id, self.lightning.invoice_status(bytes.fromhex(order.payment_hash)), order)

    def _on_invoice(self, order_id: str, invoice: InvoiceStatus, order: OrderRow | None = None) -> None:
        """What lnd said about the invoice; claimed only when it changes something (an open invoice does not).
        `order` as read just before lnd was asked, if it was (one read per poll of every open invoice)."""
        if self.settlement.acts_on(order or self.orders.get(order_id), invoice):
            self._claimed(order_id, partial(self.settlement.on_invoice_status, order_id, invoice))

    def _claimed(self, order_id: str, work: Callable[[OrderClaim], None]) -> None:
        """Run `work` under this worker's claim on the order, renewed while it runs; leave the order alone while
        another worker holds it. A claim lost midway stops the work at its next write or side effect."""
        with self.claims.holding(order_id) as claim:
            if claim is None:
                log.debug("order %s: another worker holds it; left alone", order_id)
                return
            try:
                work(claim)
            except ClaimLost as exc:  # logged at ERROR where it was refused
                log.warning("order %s: step stopped, its claim is lost: %s", order_id, exc)

    def _mark_busy(self, order_id: str) -> bool:
        with self._lock:
            if order_id in self._busy:
                return False
            self._busy.add(order_id)
            return True

    def _run_exclusive(self, order_id: str, work: Callable[[], None], wait: bool = False) -> None:
        """Run `work` unless this worker works on the order already (or, with `wait`, once it no longer does)."""
        while not self._mark_busy(order_id):
            if not wait or self._stop.wait(0.05):
                return
        try:
            work()
        except Exception:  # logged with the order; the re-check retries the step
            log.exception("order %s: step failed; the re-check will retry", order_id)
        finally:
            with self._lock:
                self._busy.discard(order_id)

    def _submit(self, order_id: str, work: Callable[[], None]) -> None:
        """Queue `work` unless the order is being worked on or already queued (passes must not pile up)."""
        with self._lock:
            if order_id in self._busy or order_id in self._scheduled:
                return
            self._scheduled.add(order_id)

        def run() -> None:
            with self._lock:
                self._scheduled.discard(order_id)
            self._run_exclusive(order_id, work)

        try:
            self._pool.submit(run)
        except RuntimeError:  # the pool is shut down: we are stopping
            with self._lock:
                self._scheduled.discard(order_id)


def follower_of(order_id: str, live_workers: Sequence[str]) -> str:
    """The worker that follows the order's invoice: the one ranking first by rendezvous (highest random weight)
    hashing. Every worker computes the same answer from the same roster, with no coordination."""
    return max(live_workers, key=partial(_rank, order_id))


def _rank(order_id: str, worker_id: str) -> bytes:
    return hashlib.blake2b(f"{worker_id}\0{order_id}".encode(), digest_size=8).digest()
