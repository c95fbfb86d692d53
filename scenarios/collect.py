"""What a run came to, read from the sources the service does not control: the merchant's node, the chain's
mint events and VUSD balances, and each node's channel balance once nothing is in flight."""

from __future__ import annotations

import time
from contextlib import closing
from datetime import datetime
from typing import Any

from harness.lnd import quiet_local_msat
from harness.purchase import iso_to_unix
from harness.util import Timeouts
from scenarios.clock import ScenarioClock
from scenarios.plan import OrderRun
from scenarios.schema import Scenario
from scenarios.summary import summarise_run
from scenarios.target import Target
from service.lightning.lnd_rest import LndRestClient
from service.starknet.client import LIGHTNING_MINT_SELECTOR, join_u256

SETTLE_BLOCKS = 3  # with blocks on a timer, wait this many before reading the chain: a late mint lands by then


class Collector:
    """Builds a run's result (the JSON a run writes) with its summary."""

    def __init__(self, scenario: Scenario, target: Target, clock: ScenarioClock) -> None:
        self.scenario = scenario
        self.target = target
        self.clock = clock

    def collect(self, orders: list[OrderRun], before: dict[str, Any], started_at: datetime,
                price_log: list[dict[str, Any]], fault_log: list[dict[str, Any]]) -> dict[str, Any]:
        """The result, once late mints had time to land; `before` is what `_prepare` read before the run."""
        self._let_late_mints_land()
        mint_events = self._mint_events(before["block"])
        merchant = self.target.lnd("merchant")
        order_results = [self._order_result(run, merchant, mint_events) for run in orders]
        with closing(self.target.starknet()) as chain:
            vusd = {address: {"before": str(amount), "after": str(chain.vusd_balance(int(address, 16)))}
                    for address, amount in before["vusd"].items()}
        result: dict[str, Any] = {
            "scenario": self.scenario.model_dump(mode="json"),
            "started_at": started_at.isoformat(),
            "t0_unix": self.clock.t0,  # the scenario clock's zero: every `at_s` counts from here
            "duration_s": round(self.clock.now(), 3),
            "target": type(self.target).__name__,
            "price": {"before": str(before["price"]), "moves": price_log},
            "faults": fault_log,
            "orders": order_results,
            "balances": {"before": before["balances"], "after": self.quiet_balances()},
            "vusd": vusd,
            "mint_events": {payment_hash: count for payment_hash, count in mint_events.items()},
        }
        result["summary"] = summarise_run(result, {i: (g.expect.model_dump(mode="json") if g.expect else None)
                                               for i, g in enumerate(self.scenario.purchases)})
        return result

    def quiet_balances(self) -> dict[str, int]:
        """Each node's spendable channel balance once no HTLC is in flight on it."""
        return {name: quiet_local_msat(self.target.lnd(name), timeout=Timeouts.PAYMENT * 2)
                for name in ("payer", "router", "merchant")}

    def _let_late_mints_land(self) -> None:
        """With blocks on a timer a mint sent late (after a fault) can still land: wait before counting."""
        if self.target.block_time:
            time.sleep(SETTLE_BLOCKS * self.target.block_time)

    def _order_result(self, run: OrderRun, merchant: LndRestClient, mint_events: dict[str, int]) -> dict[str, Any]:
        order = run.order
        base = {"index": run.index, "group": run.group, "behaviour": str(run.spec.payer.behaviour),
                "address": run.address, "planned_s": run.planned_s, "payments": run.payments, "seen": run.seen}
        if not order:
            return base | {"order_id": None, "status": "not_created", "error": run.error}
        payment_hash = order["payment_hash"]
        invoice = merchant.lookup_invoice(bytes.fromhex(payment_hash))
        timeline = [{"status": e["status"], "at": e["at"], "at_s": round(iso_to_unix(e["at"]) - self.clock.t0, 3),
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
