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
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from scenarios.provenance import git_commit, machine, modified_files

DEFAULT_LEVELS = "1:16,4:24,8:32,16:48"


def parse_levels(text: str) -> list[tuple[int, int]]:
    """`"1:16,4:24"` -> [(1, 16), (4, 24)]: (concurrency, purchases)."""
    levels = []
    for item in text.split(","):
        concurrency, count = item.split(":")
        levels.append((int(concurrency), int(count)))
    return levels


def purchase_record(buyer: Any, address: str) -> dict[str, Any]:
    """One purchase: its legs (harness.purchase.purchase_legs), when it started (before the order was created),
    when the payer pressed send, when the buyer saw it end, and when the service entered each state."""
    from harness.purchase import purchase_legs, state_times

    started = time.time()
    try:
        purchase = buyer.create_order(address, "10.00")
        sent = time.time()
        buyer.pay(purchase)
        order = buyer.follow(purchase)
        seen = time.time()
    except Exception as error:  # a failed purchase is data here, recorded with its reason
        return {"started_unix": started, "finished_unix": time.time(), "completed": False, "error": repr(error)}
    record: dict[str, Any] = {"started_unix": started, "sent_unix": sent, "finished_unix": seen,
                              "completed": order["status"] == "completed", "status": order["status"]}
    if record["completed"]:
        record.update(purchase_legs(order["history"], sent, seen))
        record["state_unix"] = state_times(order["history"])
    return record


def measure(block_time_s: float, lanes: int, levels: list[tuple[int, int]], workers: int = 0,
            api_instances: int = 1, database: str = "sqlite") -> dict[str, Any]:
    from harness.network import Network
    from harness.purchase import Buyer

    began = time.time()
    with Network(starknet_block_time=block_time_s, mint_lanes=lanes, workers=workers,
                 api_instances=api_instances, database=database) as network:  # type: ignore[arg-type]
        bring_up_s = time.time() - began
        buyer = Buyer(network.service_url, network.payer.client())
        address = network.users[0]["address"]
        runs = []
        try:
            for _ in range(2):  # warm-up: caches and connections, not counted
                purchase_record(buyer, address)
            for concurrency, count in levels:
                started = time.time()
                with ThreadPoolExecutor(max_workers=concurrency) as pool:
                    orders = list(pool.map(lambda _: purchase_record(buyer, address), range(count)))
                runs.append({"concurrency": concurrency, "purchases": count, "started_unix": started,
                             "wall_s": time.time() - started, "orders": orders})
                done = sum(order["completed"] for order in orders)
                print(f"concurrency {concurrency}: {done}/{count} completed in {runs[-1]['wall_s']:.1f} s", flush=True)
        finally:
            buyer.close()
    commit, dirty = git_commit()
    return {
        "what": "purchases through the service at several concurrencies, one network, levels in order",
        # The service runs from the work tree: files changed there but not committed are part of what was measured.
        "provenance": {"commit": commit, "dirty": dirty, "machine": machine(),
                       "modified_files": modified_files(),
                       "date_utc": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(began)),
                       "n": sum(count for _, count in levels), "seed": None,
                       "command": "python -m scenarios.queue_bench"},
        "network": {"starknet_block_time_s": block_time_s, "mint_lanes": lanes, "workers": workers,
                    "api_instances": api_instances, "database": database, "payer_nodes": 1,
                    "bring_up_s": bring_up_s},
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
    data = measure(args.block_time, args.lanes, parse_levels(args.levels), args.workers, args.api, args.db)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
