"""Measure purchases through the service at several concurrencies on one regtest network, for the queue model
(`scenarios/queueing.py`, notebook 6). Writes every order's legs and wall-clock times to a JSON file under
`scenarios/calibration/` with its provenance (commit, date, machine, N, the network's shape).

    .venv/bin/python -m scenarios.queue_bench --block-time 2 --lanes 1 --levels 1:16,4:24,8:32,16:48 \
        --out scenarios/calibration/queue_b2_l1.json

Each level is `concurrency:purchases`; the levels run one after the other on the same network, after two warm-up
purchases. A purchase that does not complete is recorded as failed (not retried) and the notebook reports it.
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from scenarios.measurement import NetworkShape, measurement_run, write_measurement

DEFAULT_LEVELS = "1:16,4:24,8:32,16:48"


def parse_levels(text: str) -> list[tuple[int, int]]:
    """`"1:16,4:24"` -> [(1, 16), (4, 24)]: (concurrency, purchases)."""
    levels = []
    for item in text.split(","):
        concurrency, count = item.split(":")
        levels.append((int(concurrency), int(count)))
    return levels


def measure(block_time_s: float, lanes: int, levels: list[tuple[int, int]], workers: int = 0,
            api_instances: int = 1, database: str = "sqlite") -> dict[str, Any]:
    shape = NetworkShape(block_time_s, lanes, workers, api_instances, database)
    with measurement_run(shape) as run:
        runs = []
        for concurrency, count in levels:
            started = time.time()
            with ThreadPoolExecutor(max_workers=concurrency) as pool:
                orders = list(pool.map(lambda _: run.purchase(), range(count)))
            runs.append({"concurrency": concurrency, "purchases": count, "started_unix": started,
                         "wall_s": time.time() - started, "orders": orders})
            done = sum(order["completed"] for order in orders)
            print(f"concurrency {concurrency}: {done}/{count} completed in {runs[-1]['wall_s']:.1f} s", flush=True)
    return {
        "what": "purchases through the service at several concurrencies, one network, levels in order",
        "provenance": run.provenance(sum(count for _, count in levels), None, "python -m scenarios.queue_bench"),
        "network": run.network(),
        "runs": runs,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--block-time", type=float, default=2.0)
    parser.add_argument("--lanes", type=int, default=1)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--api", type=int, default=1)
    parser.add_argument("--db", default="sqlite")
    parser.add_argument("--levels", default=DEFAULT_LEVELS)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    write_measurement(args.out, measure(args.block_time, args.lanes, parse_levels(args.levels), args.workers,
                                        args.api, args.db))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
