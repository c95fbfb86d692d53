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

import argparse
import json
import math
import queue
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from harness.lnd import quiet_local_msat
from harness.purchase import Buyer, iso_to_unix
from harness.util import Timeouts, WaitTimeout, wait_until
from scenarios.invariants import check_all, check_expectations
from scenarios.schema import (
    CHECKPOINT_STATUS,
    PROXY_FAULTS,
    Behaviour,
    Fault,
    FaultKind,
    PurchaseGroup,
    Scenario,
    ScenarioError,
    load_scenario,
)
from scenarios.target import NetworkTarget, PauseLog, StateTarget, Target, UnsupportedFault, proxy_fault
from service.domain.settlement import Checkpoint
from service.domain.states import FINAL_STATUSES
from service.lightning.lnd_rest import LndError
from service.starknet.client import LIGHTNING_MINT_SELECTOR, join_u256

KILL_PAUSE_S = 120  # ended by the kill; long enough that the kill always lands while the service sits there
HOLD_PAUSE_S = 3  # other faults at a checkpoint: time to see the pause and put the fault in place first
SETTLE_BLOCKS = 3  # with blocks on a timer, wait this many before reading the chain: a late mint lands by then
POLL_S = 0.25
SECONDS_PER_YEAR = 365.25 * 24 * 3600
Log = Callable[[str], None]


@dataclass
class OrderRun:
    index: int
    group: int
    spec: PurchaseGroup
    address: str
    planned_s: float
    order: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    payments: list[dict[str, Any]] = field(default_factory=list)
    seen: list[dict[str, Any]] = field(default_factory=list)  # states as the client saw them, with when


def resolve_address(spec: str, users: list[str]) -> str:
    if spec == "fresh":
        return hex(secrets.randbits(248) | 1)  # balance 0, daily limit untouched
    if spec.startswith("user "):
        index = int(spec.split()[1])
        if index >= len(users):
            raise ScenarioError(f'"{spec}": the devnet has {len(users)} user accounts (user 0 … user {len(users) - 1})')
        return users[index]
    return spec


def plan_orders(scenario: Scenario, users: list[str]) -> list[OrderRun]:
    runs: list[OrderRun] = []
    for group, spec in enumerate(scenario.purchases):
        for n in range(spec.count):
            runs.append(OrderRun(len(runs), group, spec, resolve_address(spec.address, users),
                                 spec.start_s + n * spec.spacing_s))
    return runs


def price_path(scenario: Scenario) -> list[tuple[float, Decimal]]:
    """(seconds, price) to set during the run: the fixed moves, or a seeded GBM walk."""
    walk = scenario.price.random_walk
    if walk is None:
        return [(move.at_s, move.price) for move in scenario.price.moves]
    steps = int(walk.duration_s // walk.step_s)
    dt_years = walk.step_s * walk.time_scale / SECONDS_PER_YEAR
    shocks = np.random.default_rng(walk.seed).standard_normal(steps)
    log_returns = walk.volatility * np.sqrt(dt_years) * shocks - 0.5 * walk.volatility**2 * dt_years
    prices = float(scenario.price.start) * np.exp(np.cumsum(log_returns))
    return [((i + 1) * walk.step_s, Decimal(f"{p:.2f}")) for i, p in enumerate(prices)]


class Runner:
    def __init__(self, scenario: Scenario, target: Target, log: Log | None = None) -> None:
        self.scenario = scenario
        self.target = target
        self.log = log or (lambda message: None)
        self.buyer = Buyer(target.service_url, target.lnd("payer"))
        self.orders = plan_orders(scenario, target.users)
        self.t0 = 0.0
        self.deadline = 0.0
        self.stop = threading.Event()
        self.owner_lock = threading.Lock()  # one owner account: its transactions must not race for a nonce
        self.price_log: list[dict[str, Any]] = []
        self.fault_log: list[dict[str, Any]] = []
        self.vault_paused = False
        self.service_env: dict[str, str] = {}
        self.background: list[threading.Thread] = []
        self.pause_log: PauseLog | None = None
        self.checkpoint_lock = threading.Lock()
        self.reached: dict[int, dict[str, Any]] = {}  # order index -> how its checkpoint was seen
        self.main_actions: queue.Queue[tuple[Callable[[], Any], Future[Any]]] = queue.Queue()

    # -- the run ----------------------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        started_at = datetime.now(UTC)
        before = self._prepare()
        try:
            self._execute()
        finally:
            self._restore(before["price"])
        self._let_late_mints_land()
        result = self._collect(before, started_at)
        self.buyer.close()
        return result

    def _prepare(self) -> dict[str, Any]:
        self._check_target()
        self.service_env = self.scenario.service.env()
        env = dict(self.service_env)
        checkpoint = self.scenario.checkpoint()
        if checkpoint is not None:
            pause_s = KILL_PAUSE_S if self.scenario.kills_service() else HOLD_PAUSE_S
            env["VOLTA_FAULT_PAUSE_AFTER"] = f"{checkpoint}:{pause_s}"
        if env:
            self.log(f"restarting the service with {env}")
            self.target.restart_service(env)
            self.buyer.close()
            self.buyer = Buyer(self.target.service_url, self.target.lnd("payer"))
        if checkpoint is not None:
            self.pause_log = PauseLog(self.target.service_log())  # pauses from here on are this run's
        with closing(self.target.starknet()) as chain:
            price_before = chain.btc_usd().btc_usd
            addresses = {run.address for run in self.orders}
            vusd = {address: chain.vusd_balance(int(address, 16)) for address in addresses}
        self._set_price(self.scenario.price.start, at_s=None)
        return {"price": price_before, "block": self.target.block_number(), "balances": self._quiet_balances(),
                "vusd": vusd}

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
        self.t0 = time.time()
        self.deadline = time.monotonic() + self.scenario.timeout_s
        self.background = [threading.Thread(target=self._price_schedule, name="price", daemon=True)]
        self.background += [threading.Thread(target=self._fault, args=(index, fault), name=f"fault-{fault.kind}",
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
        self.stop.set()
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
        if self.vault_paused:
            self._owner_action(lambda: self.target.set_vault_paused(False))
            self.vault_paused = False
        if self.scenario.service.env() or self.scenario.checkpoint() is not None:
            self.target.restart_service({})
        self._set_price(price_before, at_s=None)

    def _let_late_mints_land(self) -> None:
        """With blocks on a timer a mint sent late (after a fault) can still land: wait before counting."""
        if self.target.block_time:
            time.sleep(SETTLE_BLOCKS * self.target.block_time)

    # -- one order --------------------------------------------------------------------------------------

    def _order(self, run: OrderRun, slots: threading.Semaphore, payments: ThreadPoolExecutor) -> None:
        self._sleep_until(run.planned_s)
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
        run.seen.append({"status": run.order["status"], "at_s": self._now()})
        return True

    def _start_paying(self, run: OrderRun, pool: ThreadPoolExecutor) -> list[Future[None]]:
        behaviour = run.spec.payer.behaviour
        if behaviour is Behaviour.NEVER_PAYS:
            return []
        pay_at = self._now() + run.spec.payer.delay_s
        if behaviour is Behaviour.TWO_PAYERS:
            return [pool.submit(self._pay_at, run, node, pay_at) for node in ("payer", "router")]
        if behaviour is Behaviour.PAYS_TWICE:
            return [pool.submit(self._pay_twice, run, pay_at)]
        return [pool.submit(self._pay_at, run, "payer", pay_at)]

    def _pay_twice(self, run: OrderRun, pay_at: float) -> None:
        # lnd refuses to pay an invoice twice from one node, so the second payer is the router.
        self._pay_at(run, "payer", pay_at)
        self._pay_at(run, "router", self._now())

    def _pay_at(self, run: OrderRun, node: str, at_s: float) -> None:
        self._sleep_until(at_s)
        record: dict[str, Any] = {"node": node, "sent_at_s": self._now(), "sent_unix": time.time()}
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
        record["done_at_s"] = self._now()

    def _follow(self, run: OrderRun) -> None:
        """Poll the order (robust to the service being killed under us) until it is final or time is up."""
        while time.monotonic() < self.deadline:
            try:
                order = self.buyer.get(run.order["order_id"])
            except httpx.HTTPError:
                time.sleep(POLL_S)
                continue
            if order["status"] != run.seen[-1]["status"]:
                run.seen.append({"status": order["status"], "at_s": self._now()})
            run.order = order
            if order["status"] in FINAL_STATUSES:
                return
            time.sleep(POLL_S)

    # -- price and faults --------------------------------------------------------------------------------

    def _price_schedule(self) -> None:
        for at_s, price in price_path(self.scenario):
            if not self._sleep_until(at_s):
                return
            try:
                self._set_price(price, at_s)
            except Exception as exc:  # one lost step must not end the walk; the result shows it
                self.price_log.append({"at_s": self._now(), "planned_s": at_s, "price": str(price),
                                       "error": repr(exc)})

    def _set_price(self, price: Decimal, at_s: float | None) -> None:
        self._owner_action(lambda: self.target.set_price(price))
        if at_s is not None:
            self.price_log.append({"at_s": self._now(), "planned_s": at_s, "price": str(price)})
            self.log(f"price -> {price}")

    def _owner_action(self, action: Callable[[], object]) -> None:
        with self.owner_lock:
            action()

    def _fault(self, index: int, fault: Fault) -> None:
        record: dict[str, Any] = {"index": index, **fault.model_dump(mode="json", exclude_none=True)}
        self.fault_log.append(record)
        trigger = self._wait_trigger(fault)
        if trigger is None:
            record |= {"triggered": False, "why": self._why_not_fired(fault)}
            self.log(f"fault {index} ({fault.kind}) never fired: {record['why']}")
            return
        fired_at_s = self._now()
        record |= {"triggered": True, "at_s_actual": fired_at_s, **trigger}
        self.log(f"fault {index}: {fault.kind} at {fired_at_s:.1f}s")
        try:
            record |= self._inject(fault, fired_at_s)
        except Exception as exc:  # recorded in the result: a fault that could not be injected fails the run
            record["error"] = repr(exc)
        record["recovered_at_s"] = self._now()

    def _wait_trigger(self, fault: Fault) -> dict[str, Any] | None:
        """Wait for the fault's moment; what showed it came, or None if the run ended first."""
        if fault.at_s is not None:
            return {} if self._sleep_until(fault.at_s) else None
        return self._wait_checkpoint(fault)

    def _inject(self, fault: Fault, fired_at_s: float) -> dict[str, Any]:
        """Inject the fault (and undo a lasting one when it ends); what shows it acted."""
        if fault.kind is FaultKind.KILL_SERVICE:
            pid = self.target.kill_service()
            # Without the pause this time: the order carries on from the database.
            self._on_main(lambda: self.target.restart_service(self.service_env))
            return {"killed_pid": pid}
        if fault.kind is FaultKind.RESTART_MERCHANT:
            self._on_main(self.target.restart_merchant)
        elif fault.kind is FaultKind.RESTART_DEVNET:
            self._on_main(self.target.restart_devnet)
        elif fault.kind is FaultKind.PAUSE_VAULT:
            self._pause_vault(fault, fired_at_s)
        elif fault.kind in PROXY_FAULTS:
            with proxy_fault(self.target.fault_client(), fault) as evidence:
                self._last(fault, fired_at_s)
            return {"evidence": evidence}
        return {}

    def _pause_vault(self, fault: Fault, fired_at_s: float) -> None:
        self._owner_action(lambda: self.target.set_vault_paused(True))
        self.vault_paused = True
        if self._last(fault, fired_at_s):  # at the end of the run, _restore unpauses it
            self._owner_action(lambda: self.target.set_vault_paused(False))
            self.vault_paused = False

    def _last(self, fault: Fault, fired_at_s: float) -> bool:
        """Wait while a lasting fault is on: to `until_s`, `for_s` after it fired, or the end of the run.
        True if it ended on schedule, False if the run ended first."""
        if fault.until_s is not None:
            return self._sleep_until(fault.until_s)
        return self._sleep_until(fired_at_s + fault.for_s if fault.for_s is not None else math.inf)

    def _wait_checkpoint(self, fault: Fault) -> dict[str, Any] | None:
        """Wait until the service pauses at the fault's checkpoint with the fault's order there; what showed
        it (the log line, the order's status), or None if the run ended first.

        Faults of the same order share one sighting: the first to see it records it, so a kill that takes
        the service down at once does not hide the moment from a fault of the same order still looking."""
        assert fault.at_checkpoint is not None
        order = fault.order or 0
        while not self._ending():
            with self.checkpoint_lock:
                if order not in self.reached:
                    self._look_for_pause(order, fault.at_checkpoint)
                if order in self.reached:
                    return self.reached[order]
            time.sleep(0.05)
        return None

    def _look_for_pause(self, order: int, checkpoint: Checkpoint) -> None:
        # The pause line does not name the order: each line serves one order, in the order they were seen.
        assert self.pause_log is not None
        lines = self.pause_log.pauses(checkpoint)
        if len(lines) <= len(self.reached):
            return
        status = self._status(self.orders[order])
        if status == CHECKPOINT_STATUS[checkpoint]:
            self.reached[order] = {"pause_line": lines[len(self.reached)], "order_status": status}

    def _status(self, run: OrderRun) -> str | None:
        if not run.order:
            return None
        try:
            return str(self.buyer.get(run.order["order_id"])["status"])
        except httpx.HTTPError:
            return None

    def _why_not_fired(self, fault: Fault) -> str:
        if fault.at_checkpoint is None:
            return f"the run ended before at_s {fault.at_s}"
        seen = len(self.pause_log.pauses(fault.at_checkpoint)) if self.pause_log else 0
        expected = CHECKPOINT_STATUS[fault.at_checkpoint]
        last_seen = self.orders[fault.order or 0].order.get("status")
        return (f"the service logged {seen} pause(s) at {fault.at_checkpoint}, none while order #{fault.order or 0} "
                f"was {expected} (last seen {last_seen})")

    def _ending(self) -> bool:
        return self.stop.is_set() or time.monotonic() > self.deadline

    # -- the result -------------------------------------------------------------------------------------

    def _collect(self, before: dict[str, Any], started_at: datetime) -> dict[str, Any]:
        mint_events = self._mint_events(before["block"])
        merchant = self.target.lnd("merchant")
        orders = [self._order_result(run, merchant, mint_events) for run in self.orders]
        with closing(self.target.starknet()) as chain:
            vusd = {address: {"before": str(amount), "after": str(chain.vusd_balance(int(address, 16)))}
                    for address, amount in before["vusd"].items()}
        result: dict[str, Any] = {
            "scenario": self.scenario.model_dump(mode="json"),
            "started_at": started_at.isoformat(),
            "t0_unix": self.t0,  # the scenario clock's zero: every `at_s` counts from here
            "duration_s": round(self._now(), 3),
            "target": type(self.target).__name__,
            "price": {"before": str(before["price"]), "moves": self.price_log},
            "faults": self.fault_log,
            "orders": orders,
            "balances": {"before": before["balances"], "after": self._quiet_balances()},
            "vusd": vusd,
            "mint_events": {payment_hash: count for payment_hash, count in mint_events.items()},
        }
        result["summary"] = summarise_run(result, {i: (g.expect.model_dump(mode="json") if g.expect else None)
                                               for i, g in enumerate(self.scenario.purchases)})
        return result

    def _order_result(self, run: OrderRun, merchant: Any, mint_events: dict[str, int]) -> dict[str, Any]:
        order = run.order
        base = {"index": run.index, "group": run.group, "behaviour": str(run.spec.payer.behaviour),
                "address": run.address, "planned_s": run.planned_s, "payments": run.payments, "seen": run.seen}
        if not order:
            return base | {"order_id": None, "status": "not_created", "error": run.error}
        payment_hash = order["payment_hash"]
        invoice = merchant.lookup_invoice(bytes.fromhex(payment_hash))
        timeline = [{"status": e["status"], "at": e["at"], "at_s": round(iso_to_unix(e["at"]) - self.t0, 3),
                     "detail": e.get("detail")} for e in order.get("history", [])]
        return base | {
            "order_id": order["order_id"], "payment_hash": payment_hash, "status": order["status"],
            "refund_reason": order.get("refund_reason"), "vusd_amount": order["vusd_amount"],
            "amount_msat": order["amount_msat"], "btc_usd_rate": order["btc_usd_rate"],
            "mint_tx_hash": order.get("mint_tx_hash"), "timeline": timeline,
            "invoice_state": invoice.get("state"), "amt_paid_msat": int(invoice.get("amt_paid_msat") or 0),
            "mints": mint_events.get(payment_hash, 0),
        }

    def _mint_events(self, from_block: int) -> dict[str, int]:
        counts: dict[str, int] = {}
        for event in self.target.events(from_block, [[LIGHTNING_MINT_SELECTOR]]):
            payment_hash = f"{join_u256(event.keys[1], event.keys[2]):064x}"
            counts[payment_hash] = counts.get(payment_hash, 0) + 1
        return counts

    def _quiet_balances(self) -> dict[str, int]:
        """Each node's spendable channel balance once no HTLC is in flight on it."""
        return {name: quiet_local_msat(self.target.lnd(name), timeout=Timeouts.PAYMENT * 2)
                for name in ("payer", "router", "merchant")}

    # -- the clock --------------------------------------------------------------------------------------

    def _now(self) -> float:
        return time.time() - self.t0

    def _sleep_until(self, at_s: float) -> bool:
        """Sleep until `at_s` on the scenario clock; False if the run is stopping or out of time."""
        while self._now() < at_s:
            if self.stop.is_set() or time.monotonic() > self.deadline:
                return False
            time.sleep(min(0.1, at_s - self._now()))
        return True


def summarise_run(result: dict[str, Any], expects: dict[int, dict[str, Any] | None]) -> dict[str, Any]:
    """What a scenario run came to: its outcome counts, the invariants and each group's expectations."""
    outcomes: dict[str, int] = {}
    for order in result["orders"]:
        key = order["status"] + (f":{order['refund_reason']}" if order.get("refund_reason") else "")
        outcomes[key] = outcomes.get(key, 0) + 1
    invariants = check_all(result)
    expectations = check_expectations(result["orders"], expects)
    return {"orders": len(result["orders"]), "outcomes": outcomes, "invariants": invariants,
            "expectations": expectations, "ok": all(c["ok"] for c in invariants + expectations)}


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


# -- the CLI ----------------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m harness scenario", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = parser.add_subparsers(dest="verb", required=True)
    run = verbs.add_parser("run", help="run a scenario file and write its result (JSON)")
    run.add_argument("file", type=Path)
    run.add_argument("--out", type=Path, help="result file (default artifacts/scenarios/<name>-<time>.json)")
    where = run.add_mutually_exclusive_group()
    where.add_argument("--state", type=Path, help="state.json of a running network (default .regtest/state.json)")
    where.add_argument("--own-network", action="store_true",
                       help="start a fresh network in this process, with the scenario's block time and fault "
                            "proxy (needed for node and devnet restarts)")
    verbs.add_parser("check", help="validate scenario files without running them").add_argument(
        "files", type=Path, nargs="+")
    return parser


def run_cli(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.verb == "check":
            for path in args.files:
                scenario = load_scenario(path)
                print(f"{path}: ok ({scenario.order_count()} orders, {len(scenario.faults)} faults)")
            return 0
        return _cli_run(args)
    except ScenarioError as exc:
        print(f"error: {exc}")
        return 2
    except UnsupportedFault as exc:
        print(f"error: {exc}")
        return 2


def _cli_run(args: argparse.Namespace) -> int:
    scenario = load_scenario(args.file)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    out = args.out or Path("artifacts") / "scenarios" / f"{scenario.name}-{stamp}.json"
    if args.own_network:
        from harness.network import Network

        print("starting a fresh network (≈ 30 s)…", flush=True)
        with Network(starknet_block_time=scenario.starknet.block_time,
                     fault_proxy=scenario.needs_fault_proxy()) as network:
            result = run_scenario(scenario, NetworkTarget(network), out, log=_print)
    else:
        target = StateTarget(args.state)
        try:
            result = run_scenario(scenario, target, out, log=_print)
        finally:
            target.close()
    print_summary(result, out)
    return 0 if result["summary"]["ok"] else 1


def _print(message: str) -> None:
    print(message, flush=True)


def print_summary(result: dict[str, Any], out: Path | None = None) -> None:
    summary = result["summary"]
    print(f"scenario {result['scenario']['name']}: {summary['orders']} orders in {result['duration_s']:.1f}s; "
          f"outcomes {summary['outcomes']}")
    for check in summary["invariants"] + summary["expectations"]:
        mark = "ok  " if check["ok"] else "FAIL"
        print(f"  {mark} {check['name']}" + (f": {check['detail']}" if check["detail"] else ""))
    if out is not None:
        print(f"result: {out}")
