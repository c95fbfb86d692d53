"""What a scenario run came to, in a few numbers and checks, and those printed for a person."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scenarios.invariants import check_all, check_expectations


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


def print_summary(result: dict[str, Any], out: Path | None = None) -> None:
    summary = result["summary"]
    print(f"scenario {result['scenario']['name']}: {summary['orders']} orders in {result['duration_s']:.1f}s; "
          f"outcomes {summary['outcomes']}")
    for check in summary["invariants"] + summary["expectations"]:
        mark = "ok  " if check["ok"] else "FAIL"
        print(f"  {mark} {check['name']}" + (f": {check['detail']}" if check["detail"] else ""))
    if out is not None:
        print(f"result: {out}")
