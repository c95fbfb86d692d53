"""Measure the model's latency distributions from real purchases on the regtest network.

`legs(order)` splits one completed order of a runner result into the model's legs, from the service's own
timestamps (order history) and the payer's clock (same machine, same wall clock):
htlc_arrival = payment_held - payer pressed send; checks = minting - payment_held; mint = minted - minting;
settle = completed - minted; notify = the buyer saw `completed` - completed.

`python -m scenarios.calibrate --n 40 [--concurrency 1] [--out PATH] [--state PATH]` runs N purchases on a
`state.json` network and writes the calibration file (scenarios/calibration/default.json by default).
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from harness.purchase import purchase_legs
from scenarios.model import DEFAULT_CALIBRATION, LEGS, Calibration, LogNormal
from scenarios.runner import run_scenario
from scenarios.schema import Scenario, parse_scenario
from scenarios.target import StateTarget, Target
from service.domain.states import OrderStatus


def legs(order: dict[str, Any], t0_unix: float) -> dict[str, float] | None:
    """The model's legs for one completed order of a runner result, in seconds; None if not completed."""
    if order.get("status") != OrderStatus.COMPLETED or not order.get("payments"):
        return None
    seen = next((s["at_s"] for s in order.get("seen", []) if s["status"] == OrderStatus.COMPLETED), None)
    if seen is None:
        return None
    sent = min(payment["sent_unix"] for payment in order["payments"])
    try:
        legs = purchase_legs(order.get("timeline", []), sent, t0_unix + seen)
    except KeyError:  # a state the runner did not record
        return None
    return legs | {"notify": max(legs["notify"], 0.0)}


def result_legs(result: dict[str, Any]) -> list[dict[str, float]]:
    t0 = result["t0_unix"]
    return [leg for order in result["orders"] if (leg := legs(order, t0)) is not None]


def fit(samples: list[dict[str, float]], source: str) -> Calibration:
    if len(samples) < 3:
        raise ValueError(f"need at least 3 completed purchases to calibrate, got {len(samples)}")
    fitted = {name: LogNormal.fit([s[name] for s in samples]) for name in LEGS}
    measured = {name: _stats([s[name] for s in samples]) for name in (*LEGS, "end_to_end")}
    return Calibration(**fitted, source=source, samples=len(samples), measured=measured)


def _stats(values: list[float]) -> dict[str, float]:
    array = np.asarray(values)
    return {"n": len(array), "mean": round(float(array.mean()), 4), "p50": round(float(np.percentile(array, 50)), 4),
            "p95": round(float(np.percentile(array, 95)), 4), "max": round(float(array.max()), 4)}


def measuring_scenario(n: int, concurrency: int = 1, amount: str = "10.00") -> Scenario:
    return parse_scenario({"name": "calibration", "description": "prompt payers, for latency calibration",
                           "purchases": [{"count": n, "concurrency": concurrency, "vusd_amount": amount,
                                          "payer": {"behaviour": "pays"}, "expect": {"status": OrderStatus.COMPLETED}}],
                           "timeout_s": max(300, 10 * n)})


def measure(target: Target, n: int = 40, concurrency: int = 1, out: Path | None = None) -> Calibration:
    """N real purchases, fitted; written to `out` when given. Returns the calibration."""
    result = run_scenario(measuring_scenario(n, concurrency), target)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    calibration = fit(result_legs(result), f"{n} purchases on regtest (concurrency {concurrency}), {stamp}")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(calibration.to_json() + "\n")
    return calibration


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scenarios.calibrate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--out", type=Path, default=DEFAULT_CALIBRATION)
    parser.add_argument("--state", type=Path)
    args = parser.parse_args(argv)
    target = StateTarget(args.state)
    try:
        calibration = measure(target, args.n, args.concurrency, args.out)
    finally:
        target.close()
    print(json.dumps(calibration.measured, indent=2))
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
