"""One measurement on a fresh regtest network, as the benchmarks that write a calibration file make it
(`scenarios.queue_bench`, `scenarios.mainnet_latency`): bring the network up and time it, a buyer warmed up by two
purchases, one record per purchase, the provenance of what was measured, and the JSON file it is written to.

The harness is imported only when a network is brought up, so the models that read these files need none of it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scenarios.provenance import of_measurement
from service.domain.states import OrderStatus

WARM_UP_PURCHASES = 2  # caches and connections, not counted
PURCHASE_VUSD = "10.00"


def purchase_record(buyer: Any, address: str) -> dict[str, Any]:
    """One purchase: its legs (harness.purchase.purchase_legs), when it started (before the order was created),
    when the payer pressed send, when the buyer saw it end, and when the service entered each state."""
    from harness.purchase import purchase_legs, state_times

    started = time.time()
    try:
        purchase = buyer.create_order(address, PURCHASE_VUSD)
        sent = time.time()
        buyer.pay(purchase)
        order = buyer.follow(purchase)
        seen = time.time()
    except Exception as error:  # a failed purchase is data here, recorded with its reason
        return {"started_unix": started, "finished_unix": time.time(), "completed": False, "error": repr(error)}
    record: dict[str, Any] = {"started_unix": started, "sent_unix": sent, "finished_unix": seen,
                              "completed": order["status"] == OrderStatus.COMPLETED, "status": order["status"]}
    if record["completed"]:
        record.update(purchase_legs(order["history"], sent, seen))
        record["state_unix"] = state_times(order["history"])
    return record


@dataclass(frozen=True)
class NetworkShape:
    """What the measured network was made of; written to the file as its "network"."""

    starknet_block_time_s: float
    mint_lanes: int = 1
    workers: int = 0
    api_instances: int = 1
    database: str = "sqlite"

    def as_dict(self, bring_up_s: float) -> dict[str, Any]:
        return {"starknet_block_time_s": self.starknet_block_time_s, "mint_lanes": self.mint_lanes,
                "workers": self.workers, "api_instances": self.api_instances, "database": self.database,
                "payer_nodes": 1, "bring_up_s": bring_up_s}


@dataclass(frozen=True)
class MeasurementRun:
    """A warmed-up buyer on a network that is up; `began_unix` is when its bring-up started."""

    shape: NetworkShape
    buyer: Any  # harness.purchase.Buyer
    address: str  # the Starknet address the VUSD goes to
    began_unix: float
    bring_up_s: float

    def purchase(self) -> dict[str, Any]:
        return purchase_record(self.buyer, self.address)

    def network(self) -> dict[str, Any]:
        return self.shape.as_dict(self.bring_up_s)

    def provenance(self, n: int, seed: int | None, command: str) -> dict[str, Any]:
        return of_measurement(self.began_unix, n, seed, command)


@contextmanager
def measurement_run(shape: NetworkShape) -> Iterator[MeasurementRun]:
    """A network of `shape`, brought up and timed, and its buyer after the warm-up purchases; closed on exit."""
    from harness.network import Network
    from harness.purchase import Buyer

    began = time.time()
    with Network(starknet_block_time=shape.starknet_block_time_s, mint_lanes=shape.mint_lanes,
                 workers=shape.workers, api_instances=shape.api_instances,
                 database=shape.database) as network:  # type: ignore[arg-type]
        bring_up_s = time.time() - began
        buyer = Buyer(network.service_url, network.payer.client())
        try:
            run = MeasurementRun(shape, buyer, network.users[0]["address"], began, bring_up_s)
            for _ in range(WARM_UP_PURCHASES):
                run.purchase()
            yield run
        finally:
            buyer.close()


def write_measurement(path: Path, data: dict[str, Any]) -> None:
    """The measurement as indented JSON at `path`, said on stdout."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {path}")
