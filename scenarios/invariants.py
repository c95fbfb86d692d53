"""The promises every scenario must keep, checked on its result (a plain dict, so they can be unit-tested).

- every order ends in a final state, and none needs an operator (`failed`);
- every HTLC that reached the merchant ends either settled with exactly one mint, or cancelled with no mint;
- no payment hash is minted twice on the vault (over every LightningMint since the run began);
- sats are accounted for exactly: each node's channel balance moved by what its succeeded payments say,
  so a payment that failed gave everything back;
- each address's VUSD grew by exactly the VUSD of its completed orders;
- every fault fired: its trigger came, it was injected without error, and a proxy fault met the service's
  traffic (a scenario whose SIGKILL never landed proves nothing, so it fails).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

from scenarios.schema import PROXY_FAULTS
from service.domain.pricing import vusd_base_units
from service.domain.states import FINAL_STATUSES, OrderStatus


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""


def check_all(result: dict[str, Any]) -> list[dict[str, Any]]:
    checks = [
        all_final(result["orders"]),
        none_failed(result["orders"]),
        htlcs_resolved(result["orders"]),
        no_hash_minted_twice(result["mint_events"]),
        sats_accounted(result),
        vusd_accounted(result),
        faults_fired(result.get("faults", [])),
    ]
    return [asdict(check) for check in checks]


def all_final(orders: list[dict[str, Any]]) -> Check:
    open_orders = [f"#{o['index']} {o['status']}" for o in orders
                   if o.get("order_id") and o["status"] not in FINAL_STATUSES]
    return Check("no order left non-final", not open_orders, ", ".join(open_orders))


def none_failed(orders: list[dict[str, Any]]) -> Check:
    failed = [f"#{o['index']}" for o in orders if o.get("status") == OrderStatus.FAILED]
    return Check("no order needs an operator (failed)", not failed, ", ".join(failed))


def htlcs_resolved(orders: list[dict[str, Any]]) -> Check:
    problems = [problem for order in orders if order.get("order_id") for problem in _htlc_problems(order)]
    return Check("every paid HTLC settled with one mint or cancelled with none", not problems, "; ".join(problems))


def _htlc_problems(order: dict[str, Any]) -> list[str]:
    invoice, mints, tag = order.get("invoice_state"), order.get("mints", 0), f"#{order['index']}"
    succeeded = [p for p in order.get("payments", []) if p.get("status") == "SUCCEEDED"]
    problems = []
    if invoice == "SETTLED":
        if mints != 1:
            problems.append(f"{tag} settled with {mints} mints")
        if order["status"] != OrderStatus.COMPLETED:
            problems.append(f"{tag} settled but the order is {order['status']}")
        if len(succeeded) != 1:
            problems.append(f"{tag} settled but {len(succeeded)} payments succeeded")
    else:
        if mints:
            problems.append(f"{tag} minted {mints}x but the invoice is {invoice}")
        if succeeded:
            problems.append(f"{tag} a payment succeeded but the invoice is {invoice}")
        if invoice == "ACCEPTED":
            problems.append(f"{tag} HTLC still held")
    return problems


def no_hash_minted_twice(mint_events: dict[str, int]) -> Check:
    twice = {payment_hash: count for payment_hash, count in mint_events.items() if count > 1}
    return Check("no payment hash minted twice", not twice, ", ".join(f"{h[:12]}… x{c}" for h, c in twice.items()))


def expected_deltas(orders: list[dict[str, Any]]) -> dict[str, int]:
    """What each node's channel balance must have moved by, in msat, from the payments' own reports.

    The router forwards the payer's payments (earning their fee) and pays the merchant directly in
    double-pay scenarios (no fee on its own channel).
    """
    deltas: Counter[str] = Counter({"payer": 0, "router": 0, "merchant": 0})
    for order in orders:
        for payment in order.get("payments", []):
            if payment.get("status") != "SUCCEEDED":
                continue
            value, fee = int(payment.get("value_msat", 0)), int(payment.get("fee_msat", 0))
            deltas[payment["node"]] -= value + fee
            deltas["merchant"] += value
            if payment["node"] == "payer":
                deltas["router"] += fee
    return dict(deltas)


def sats_accounted(result: dict[str, Any]) -> Check:
    before, after = result["balances"]["before"], result["balances"]["after"]
    unknown = [f"#{o['index']}" for o in result["orders"] for p in o.get("payments", []) if "status" not in p]
    if unknown:
        return Check("sats accounted for on every node", False, f"payment outcome unknown for {', '.join(unknown)}")
    expected = expected_deltas(result["orders"])
    wrong = []
    for node, delta in expected.items():
        actual = after[node] - before[node]
        if actual != delta:
            wrong.append(f"{node} moved {actual} msat, payments say {delta}")
    return Check("sats accounted for on every node", not wrong, "; ".join(wrong))


def vusd_accounted(result: dict[str, Any]) -> Check:
    expected: Counter[str] = Counter()
    for order in result["orders"]:
        if order.get("status") == OrderStatus.COMPLETED:
            expected[order["address"]] += vusd_base_units(Decimal(order["vusd_amount"]))
    wrong = []
    for address, balances in result["vusd"].items():
        grown = int(balances["after"]) - int(balances["before"])
        if grown != expected[address]:
            wrong.append(f"{address[:12]}… grew {grown}, completed orders say {expected[address]}")
    return Check("VUSD grew by exactly the completed orders", not wrong, "; ".join(wrong))


def faults_fired(faults: list[dict[str, Any]]) -> Check:
    problems = [problem for fault in faults if (problem := _fault_problem(fault))]
    return Check("every fault fired", not problems, "; ".join(problems))


def _fault_problem(fault: dict[str, Any]) -> str:
    tag = f"fault {fault.get('index', '?')} ({fault['kind']})"
    if not fault.get("triggered"):
        return f"{tag} never fired: {fault.get('why', 'its trigger never came')}"
    if fault.get("error"):
        return f"{tag} failed: {fault['error']}"
    if fault["kind"] in PROXY_FAULTS and not _met_traffic(fault.get("evidence") or {}):
        return f"{tag} on {fault.get('proxy')}: no traffic through the proxy while it was on"
    return ""


def _met_traffic(evidence: dict[str, Any]) -> bool:
    """toxiproxy accepted a connection, or counted bytes, on the proxy while the fault was on."""
    return bool(evidence.get("connections")) or bool(evidence.get("bytes"))


def check_expectations(orders: list[dict[str, Any]], expects: dict[int, dict[str, Any] | None]) -> list[dict[str, Any]]:
    """Each group's `expect` (status and/or refund reason, any of a list) against its orders."""
    checks = []
    for group, expect in expects.items():
        if not expect:
            continue
        members = [order for order in orders if order["group"] == group]
        misses = [f"#{o['index']} {o['status']}/{o.get('refund_reason')}" for o in members if not _meets(o, expect)]
        checks.append(asdict(Check(f"group {group} ends {_describe(expect)}", not misses, ", ".join(misses))))
    return checks


def _meets(order: dict[str, Any], expect: dict[str, Any]) -> bool:
    if expect.get("status") and order["status"] not in expect["status"]:
        return False
    return not (expect.get("refund_reason") and order["status"] == OrderStatus.REFUNDED
                and order.get("refund_reason") not in expect["refund_reason"])


def _describe(expect: dict[str, Any]) -> str:
    parts = ["/".join(expect.get("status") or ["any"])]
    if expect.get("refund_reason"):
        parts.append("reason " + "/".join(expect["refund_reason"]))
    return " ".join(parts)
