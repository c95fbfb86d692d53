"""A scenario's faults: wait for each one's moment, inject it, undo a lasting one, and record the evidence.

A fault fires at a moment (`at_s`) or at a settlement checkpoint. For a checkpoint the service runs with
VOLTA_FAULT_PAUSE_AFTER (`pause_env`) and the fault fires once the service's log has a pause line there
while the fault's order is in the status that checkpoint implies. Each fault's record says whether it
fired, when, and what shows it acted; `scenarios.invariants.faults_fired` judges them.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any

from scenarios.clock import ScenarioClock
from scenarios.plan import OrderRun
from scenarios.schema import CHECKPOINT_STATUS, PROXY_FAULTS, Fault, FaultKind, Scenario
from scenarios.target import PauseLog, Target, proxy_fault
from service.domain.settlement import Checkpoint

KILL_PAUSE_S = 120  # ended by the kill; long enough that the kill always lands while the service sits there
HOLD_PAUSE_S = 3  # other faults at a checkpoint: time to see the pause and put the fault in place first


def pause_env(scenario: Scenario) -> dict[str, str]:
    """The service's environment that makes it pause at the scenario's checkpoint; empty if it has none."""
    checkpoint = scenario.checkpoint()
    if checkpoint is None:
        return {}
    pause_s = KILL_PAUSE_S if scenario.kills_service() else HOLD_PAUSE_S
    return {"VOLTA_FAULT_PAUSE_AFTER": f"{checkpoint}:{pause_s}"}


class FaultInjector:
    """Runs each fault on a thread of the caller's; `records` holds one record per fault, in the result.

    It is given what it touches: the target, the run's clock and orders, the service's environment for a
    restart, how to read an order's status now, how to run an action on the long-lived main thread (process
    restarts) and how to run an owner transaction without racing the price walk for a nonce.
    """

    def __init__(self, target: Target, clock: ScenarioClock, orders: list[OrderRun], *, service_env: dict[str, str],
                 order_status: Callable[[OrderRun], str | None], on_main: Callable[[Callable[[], Any]], Any],
                 owner_action: Callable[[Callable[[], object]], None], log: Callable[[str], None]) -> None:
        self.target = target
        self.clock = clock
        self.orders = orders
        self.service_env = service_env
        self.order_status = order_status
        self.on_main = on_main
        self.owner_action = owner_action
        self.log = log
        self.records: list[dict[str, Any]] = []
        self.vault_paused = False
        self.pause_log: PauseLog | None = None  # set when the run pauses at a checkpoint: its lines from then on
        self.checkpoint_lock = threading.Lock()
        self.reached: dict[int, dict[str, Any]] = {}  # order index -> how its checkpoint was seen

    def run(self, index: int, fault: Fault) -> None:
        """Wait for the fault's moment and inject it, recording what happened (a thread's target)."""
        record: dict[str, Any] = {"index": index, **fault.model_dump(mode="json", exclude_none=True)}
        self.records.append(record)
        trigger = self._wait_trigger(fault)
        if trigger is None:
            record |= {"triggered": False, "why": self.why_not_fired(fault)}
            self.log(f"fault {index} ({fault.kind}) never fired: {record['why']}")
            return
        fired_at_s = self.clock.now()
        record |= {"triggered": True, "at_s_actual": fired_at_s, **trigger}
        self.log(f"fault {index}: {fault.kind} at {fired_at_s:.1f}s")
        try:
            record |= self._inject(fault, fired_at_s)
        except Exception as exc:  # recorded in the result: a fault that could not be injected fails the run
            record["error"] = repr(exc)
        record["recovered_at_s"] = self.clock.now()

    def undo_lasting(self) -> None:
        """Undo what a fault left on when the run ended first (the vault's pause)."""
        if self.vault_paused:
            self.owner_action(lambda: self.target.set_vault_paused(False))
            self.vault_paused = False

    def _wait_trigger(self, fault: Fault) -> dict[str, Any] | None:
        """Wait for the fault's moment; what showed it came, or None if the run ended first."""
        if fault.at_s is not None:
            return {} if self.clock.sleep_until(fault.at_s) else None
        return self.wait_checkpoint(fault)

    def _inject(self, fault: Fault, fired_at_s: float) -> dict[str, Any]:
        """Inject the fault (and undo a lasting one when it ends); what shows it acted."""
        if fault.kind is FaultKind.KILL_SERVICE:
            pid = self.target.kill_service()
            # Without the pause this time: the order carries on from the database.
            self.on_main(lambda: self.target.restart_service(self.service_env))
            return {"killed_pid": pid}
        if fault.kind is FaultKind.RESTART_MERCHANT:
            self.on_main(self.target.restart_merchant)
        elif fault.kind is FaultKind.RESTART_DEVNET:
            self.on_main(self.target.restart_devnet)
        elif fault.kind is FaultKind.PAUSE_VAULT:
            self._pause_vault(fault, fired_at_s)
        elif fault.kind in PROXY_FAULTS:
            with proxy_fault(self.target.fault_client(), fault) as evidence:
                self._last(fault, fired_at_s)
            return {"evidence": evidence}
        return {}

    def _pause_vault(self, fault: Fault, fired_at_s: float) -> None:
        self.owner_action(lambda: self.target.set_vault_paused(True))
        self.vault_paused = True
        if self._last(fault, fired_at_s):  # at the end of the run, undo_lasting unpauses it
            self.owner_action(lambda: self.target.set_vault_paused(False))
            self.vault_paused = False

    def _last(self, fault: Fault, fired_at_s: float) -> bool:
        """Wait while a lasting fault is on: to `until_s`, `for_s` after it fired, or the end of the run.
        True if it ended on schedule, False if the run ended first."""
        if fault.until_s is not None:
            return self.clock.sleep_until(fault.until_s)
        return self.clock.sleep_until(fired_at_s + fault.for_s if fault.for_s is not None else math.inf)

    def wait_checkpoint(self, fault: Fault) -> dict[str, Any] | None:
        """Wait until the service pauses at the fault's checkpoint with the fault's order there; what showed
        it (the log line, the order's status), or None if the run ended first.

        Faults of the same order share one sighting: the first to see it records it, so a kill that takes
        the service down at once does not hide the moment from a fault of the same order still looking."""
        assert fault.at_checkpoint is not None
        order = fault.order or 0
        while not self.clock.ending():
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
        status = self.order_status(self.orders[order])
        if status == CHECKPOINT_STATUS[checkpoint]:
            self.reached[order] = {"pause_line": lines[len(self.reached)], "order_status": status}

    def why_not_fired(self, fault: Fault) -> str:
        if fault.at_checkpoint is None:
            return f"the run ended before at_s {fault.at_s}"
        seen = len(self.pause_log.pauses(fault.at_checkpoint)) if self.pause_log else 0
        expected = CHECKPOINT_STATUS[fault.at_checkpoint]
        last_seen = self.orders[fault.order or 0].order.get("status")
        return (f"the service logged {seen} pause(s) at {fault.at_checkpoint}, none while order #{fault.order or 0} "
                f"was {expected} (last seen {last_seen})")
