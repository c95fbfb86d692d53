"""Run a scenario against the real network and write what happened, with the invariants checked.

`python -m harness scenario run FILE [--out PATH] [--state PATH | --own-network]` from the shell;
`run_scenario(scenario, NetworkTarget(network))` from pytest or a notebook.

Everything is scheduled on one clock (seconds since the scenario began): each order is created at its
`start_s` (+ `spacing_s` per order), paid according to its payer's behaviour, and followed until it is
final; price moves and faults run beside them on their own threads.

A fault fires at a moment (`at_s`) or at a settlement checkpoint: the service is started with
VOLTA_FAULT_PAUSE_AFTER=<checkpoint>:<seconds>, and the fault fires once the service's own log says it
stopped there while the fault's order is in the status that checkpoint implies. A SIGKILL ends that pause;
other faults take a short one, so they are in place before the service moves on. Every fault must fire,
with evidence, or the run fails ("every fault fired").
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from harness.purchase import Buyer
from harness.util import Timeouts, WaitTimeout, wait_until
from scenarios.clock import ScenarioClock
from scenarios.collect import Collector
from scenarios.injection import FaultInjector, pause_env
from scenarios.plan import OrderRun, plan_orders, price_path
from scenarios.schema import Behaviour, FaultKind, Scenario, load_scenario
from scenarios.target import PauseLog, Target, UnsupportedFault
from service.domain.states import FINAL_STATUSES
from service.lightning.lnd_rest import LndError

POLL_S = 0.25
Log = Callable[[str], None]


class Runner:
    """Schedules a scenario on one clock: its orders and their payments on thread pools, the price walk and
    each fault on a thread of its own, and process restarts on the caller's thread. The faults are the
    `FaultInjector`'s, the result the `Collector`'s."""

    def __init__(self, scenario: Scenario, target: Target, log: Log | None = None) -> None:
        self.scenario = scenario
        self.target = target
        self.log = log or (lambda message: None)
        self.buyer = Buyer(target.service_url, target.lnd("payer"))
        self.orders = plan_orders(scenario, target.users)
        self.clock = ScenarioClock()
        self.owner_lock = threading.Lock()  # one owner account: its transactions must not race for a nonce
        self.price_log: list[dict[str, Any]] = []
        self.background: list[threading.Thread] = []
        self.main_actions: queue.Queue[tuple[Callable[[], Any], Future[Any]]] = queue.Queue()
        self.faults = FaultInjector(target, self.clock, self.orders, service_env=scenario.service.env(),
                                    order_status=self._status, on_main=self._on_main,
                                    owner_action=self._owner_action, log=self.log)
        self.collector = Collector(scenario, target, self.clock)

    # -- the run ----------------------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        started_at = datetime.now(UTC)
        before = self._prepare()
        try:
            self._execute()
        finally:
            self._restore(before["price"])
        result = self.collector.collect(self.orders, before, started_at, self.price_log, self.faults.records)
        self.buyer.close()
        return result

    def _prepare(self) -> dict[str, Any]:
        self._check_target()
        env = self.scenario.service.env() | pause_env(self.scenario)
        if env:
            self.log(f"restarting the service with {env}")
            self.target.restart_service(env)
            self.buyer.close()
            self.buyer = Buyer(self.target.service_url, self.target.lnd("payer"))
        if self.scenario.checkpoint() is not None:
            self.faults.pause_log = PauseLog(self.target.service_log())  # pauses from here on are this run's
        with closing(self.target.starknet()) as chain:
            price_before = chain.btc_usd().btc_usd
            addresses = {run.address for run in self.orders}
            vusd = {address: chain.vusd_balance(int(address, 16)) for address in addresses}
        self._set_price(self.scenario.price.start, at_s=None)
        return {"price": price_before, "block": self.target.block_number(),
                "balances": self.collector.quiet_balances(), "vusd": vusd}

    def _check_target(self) -> None:
        """Refuse, before anything runs, a scenario this network cannot give what it asks for."""
        wanted = self.scenario.starknet.block_time
        if wanted is not None and self.target.block_time != wanted:
            raise UnsupportedFault(f"the scenario needs a block every {wanted} s but this network has "
                                   f"{self.target.describe_blocks()}: run it with --own-network, or bring the "
                                   f"network up with `python -m harness up --starknet-block-time {wanted}`")
        if self.scenario.needs_fault_proxy():
            self.target.fault_client()  # raises, saying how to get one, when the network has no fault proxy
        for fault in self.scenario.faults:
            if fault.kind in (FaultKind.RESTART_MERCHANT, FaultKind.RESTART_DEVNET) and not self.target.restarts_nodes:
                raise UnsupportedFault(f"{fault.kind} needs a network this process owns: run with --own-network")

    def _execute(self) -> None:
        self.clock.start(self.scenario.timeout_s)
        self.background = [threading.Thread(target=self._price_schedule, name="price", daemon=True)]
        self.background += [threading.Thread(target=self.faults.run, args=(index, fault), name=f"fault-{fault.kind}",
                                             daemon=True) for index, fault in enumerate(self.scenario.faults)]
        for thread in self.background:
            thread.start()
        width = max(len(self.orders), 1)
        semaphores = [threading.Semaphore(spec.concurrency) for spec in self.scenario.purchases]
        with ThreadPoolExecutor(max_workers=width, thread_name_prefix="order") as orders, \
                ThreadPoolExecutor(max_workers=2 * width, thread_name_prefix="pay") as payments:
            futures = [orders.submit(self._order, run, semaphores[run.group], payments) for run in self.orders]
            self._serve_main_actions(lambda: all(future.done() for future in futures))
            for future in futures:
                future.result()
        self._end_background()

    def _end_background(self) -> None:
        """Stop the price walk and the faults (lasting ones are undone as they end) and wait for them."""
        self.clock.stop.set()
        self._serve_main_actions(lambda: not any(thread.is_alive() for thread in self.background))

    def _serve_main_actions(self, finished: Callable[[], bool]) -> None:
        """Run queued process actions here until `finished()`.

        Processes are started with PR_SET_PDEATHSIG, which fires when the *thread* that started them ends:
        a service or node restarted from a short-lived fault thread would be SIGKILLed with that thread.
        So faults hand restarts to this (the caller's, long-lived) thread.
        """
        while not finished():
            try:
                action, done = self.main_actions.get(timeout=0.1)
            except queue.Empty:
                continue
            try:
                done.set_result(action())
            except BaseException as exc:
                done.set_exception(exc)

    def _on_main(self, action: Callable[[], Any]) -> Any:
        done: Future[Any] = Future()
        self.main_actions.put((action, done))
        return done.result()

    def _restore(self, price_before: Decimal) -> None:
        self._end_background()  # again, for a run that ended on an exception
        self.faults.undo_lasting()
        if self.scenario.service.env() or self.scenario.checkpoint() is not None:
            self.target.restart_service({})
        self._set_price(price_before, at_s=None)

    # -- one order --------------------------------------------------------------------------------------

    def _order(self, run: OrderRun, slots: threading.Semaphore, payments: ThreadPoolExecutor) -> None:
        self.clock.sleep_until(run.planned_s)
        with slots:
            if not self._create(run):
                return
            pending = self._start_paying(run, payments)
            self._follow(run)
            for future in pending:
                future.result(timeout=Timeouts.PAYMENT * 3)

    def _create(self, run: OrderRun) -> bool:
        extra: dict[str, Any] = {}
        if run.spec.max_slippage_bps is not None:
            extra["max_slippage_bps"] = run.spec.max_slippage_bps
        body = {"starknet_address": run.address, **extra}
        body |= {"amount_sat": run.spec.amount_sat} if run.spec.amount_sat else {
            "vusd_amount": str(run.spec.vusd_amount)}
        try:
            # The service may be down for a moment (another order's fault): retry the connection only.
            response = wait_until(lambda: self.buyer.http.post("/api/v1/orders", json=body), timeout=Timeouts.RPC,
                                  what="the service to take the order", transient=(httpx.TransportError,))
        except WaitTimeout as exc:
            run.error = str(exc)
            return False
        if response.status_code != 201:
            run.error = f"HTTP {response.status_code}: {response.text[:300]}"
            return False
        run.order = response.json()
        run.seen.append({"status": run.order["status"], "at_s": self.clock.now()})
        return True

    def _start_paying(self, run: OrderRun, pool: ThreadPoolExecutor) -> list[Future[None]]:
        behaviour = run.spec.payer.behaviour
        if behaviour is Behaviour.NEVER_PAYS:
            return []
        pay_at = self.clock.now() + run.spec.payer.delay_s
        if behaviour is Behaviour.TWO_PAYERS:
            return [pool.submit(self._pay_at, run, node, pay_at) for node in ("payer", "router")]
        if behaviour is Behaviour.PAYS_TWICE:
            return [pool.submit(self._pay_twice, run, pay_at)]
        return [pool.submit(self._pay_at, run, "payer", pay_at)]

    def _pay_twice(self, run: OrderRun, pay_at: float) -> None:
        # lnd refuses to pay an invoice twice from one node, so the second payer is the router.
        self._pay_at(run, "payer", pay_at)
        self._pay_at(run, "router", self.clock.now())

    def _pay_at(self, run: OrderRun, node: str, at_s: float) -> None:
        self.clock.sleep_until(at_s)
        record: dict[str, Any] = {"node": node, "sent_at_s": self.clock.now(), "sent_unix": time.time()}
        run.payments.append(record)
        try:
            result = self.target.lnd(node).pay(run.order["bolt11"], timeout_s=int(Timeouts.PAYMENT))
        except LndError as exc:  # refused by the payer's own node (e.g. invoice expired): no HTLC left it
            record |= {"status": "FAILED", "failure_reason": f"refused by {node}: {exc.message}",
                       "value_msat": 0, "fee_msat": 0}
        except Exception as exc:  # the outcome is then unknown; the invariants say so
            record["error"] = repr(exc)
        else:
            record |= {key: result.get(key) for key in ("status", "failure_reason")}
            record |= {key: int(result.get(key) or 0) for key in ("value_msat", "fee_msat")}
        record["done_at_s"] = self.clock.now()

    def _follow(self, run: OrderRun) -> None:
        """Poll the order (robust to the service being killed under us) until it is final or time is up."""
        while time.monotonic() < self.clock.deadline:
            try:
                order = self.buyer.get(run.order["order_id"])
            except httpx.HTTPError:
                time.sleep(POLL_S)
                continue
            if order["status"] != run.seen[-1]["status"]:
                run.seen.append({"status": order["status"], "at_s": self.clock.now()})
            run.order = order
            if order["status"] in FINAL_STATUSES:
                return
            time.sleep(POLL_S)

    def _status(self, run: OrderRun) -> str | None:
        """The order's status as the service says it now; None before it exists or while it cannot say."""
        if not run.order:
            return None
        try:
            return str(self.buyer.get(run.order["order_id"])["status"])
        except httpx.HTTPError:
            return None

    # -- price ------------------------------------------------------------------------------------------

    def _price_schedule(self) -> None:
        for at_s, price in price_path(self.scenario):
            if not self.clock.sleep_until(at_s):
                return
            try:
                self._set_price(price, at_s)
            except Exception as exc:  # one lost step must not end the walk; the result shows it
                self.price_log.append({"at_s": self.clock.now(), "planned_s": at_s, "price": str(price),
                                       "error": repr(exc)})

    def _set_price(self, price: Decimal, at_s: float | None) -> None:
        self._owner_action(lambda: self.target.set_price(price))
        if at_s is not None:
            self.price_log.append({"at_s": self.clock.now(), "planned_s": at_s, "price": str(price)})
            self.log(f"price -> {price}")

    def _owner_action(self, action: Callable[[], object]) -> None:
        with self.owner_lock:
            action()


def run_scenario(scenario: Scenario | Path | str, target: Target, out: Path | None = None,
                 log: Log | None = None) -> dict[str, Any]:
    """Run one scenario and return its result (also written to `out` as JSON when given)."""
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    result = Runner(scenario, target, log).run()
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2, default=str))
    return result
