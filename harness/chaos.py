"""The chaos run: purchases from several payers while the service's processes are SIGKILLed at random moments,
then every order judged from lnd and the vault (the invariant), and 0 `failed`, 0 still open.

On one service process, that process is killed and restarted. Scaled out (API instances behind nginx, workers,
mint lanes), each kill picks one of them at random, so buyers meet nginx passing over a dead instance and orders
meet a worker dying with their claim or its mint lanes leased.

`python -m harness chaos --minutes 3` runs it on a network of its own (`make chaos`; `--api 3 --workers 3 --db
postgres --lanes 3` scaled out); the test suite runs a short one on the atomicity tests' network and another on
the scaled network.
"""

from __future__ import annotations

import contextlib
import itertools
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from harness.judge import Judge
from harness.lnd_client import HarnessLndClient
from harness.network import Network
from harness.purchase import Buyer
from harness.service_process import ServiceProcess
from harness.util import Timeouts, WaitTimeout, wait_until
from service.domain.states import FINAL_STATUSES, OrderStatus
from service.starknet.client import StarknetClient

SHOPPERS_PER_PAYER = 2
ADDRESSES_PER_SHOPPER = 3
SETTLE_TIMEOUT_S = 300  # after the last kill, how long every order may take to reach a final state


@dataclass
class ChaosReport:
    seconds: float
    kills: int = 0
    killed: dict[str, int] = field(default_factory=dict)  # kills per process name
    orders: list[dict[str, Any]] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)

    @property
    def sound(self) -> bool:
        return not self.violations and not self.statuses.get(OrderStatus.FAILED) and all(
            status in FINAL_STATUSES for status in self.statuses)

    def summary(self) -> str:
        counts = ", ".join(f"{status} {count}" for status, count in sorted(self.statuses.items()))
        victims = ", ".join(f"{name} {count}" for name, count in sorted(self.killed.items()))
        return (f"{len(self.orders)} orders in {self.seconds:.0f} s, {self.kills} SIGKILLs ({victims}): {counts}; "
                f"violations: {len(self.violations)}")


class Shopper(threading.Thread):
    """Buys again and again from one payer node: order, pay (blocking until the payment ends), repeat."""

    def __init__(self, name: str, service_url: str, payer: HarnessLndClient, vault: StarknetClient,
                 stop: threading.Event, record: Callable[[dict[str, Any], int], None], rng: random.Random) -> None:
        super().__init__(name=name, daemon=True)
        self.buyer = Buyer(service_url, payer)
        self.vault, self.stop, self.record, self.rng = vault, stop, record, rng
        self.addresses = [hex(rng.getrandbits(248) | 1) for _ in range(ADDRESSES_PER_SHOPPER)]

    def run(self) -> None:
        while not self.stop.is_set():
            address = self.rng.choice(self.addresses)
            try:
                purchase = self.buyer.create_order(address, f"{self.rng.randint(1, 20)}.00")
            except (httpx.HTTPError, RuntimeError):  # the service is down right now: try again shortly
                self.stop.wait(0.3)
                continue
            self.record(purchase.order, self.vault.vusd_balance(int(purchase.order["starknet_address"], 16)))
            with contextlib.suppress(Exception):  # however the payment ends, the judge reads it from lnd
                self.buyer.pay(purchase).result(timeout=Timeouts.PAYMENT * 2)
        self.buyer.close()


def run_chaos(network: Network, seconds: float, kill_every_s: tuple[float, float] = (2.0, 8.0),
              seed: int = 7, service_env: dict[str, str] | None = None) -> ChaosReport:
    """Call from the thread that owns the network: restarted processes die with the thread that started them."""
    rng, stop, lock = random.Random(seed), threading.Event(), threading.Lock()
    victims = kill_rotation(network, rng)
    report = ChaosReport(seconds)
    balances: dict[str, int] = {}
    vault = StarknetClient(network.starknet_config())

    def record(order: dict[str, Any], balance: int) -> None:
        with lock:
            report.orders.append(order)
            balances.setdefault(order["starknet_address"], balance)

    payers = [network.payer.client(), network.router.client()]
    shoppers = [Shopper(f"shopper-{i}", network.service_url, payers[i % len(payers)], vault, stop, record,
                        random.Random(seed + i)) for i in range(SHOPPERS_PER_PAYER * len(payers))]
    try:
        for shopper in shoppers:
            shopper.start()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(rng.uniform(*kill_every_s))
            victim = victims[report.kills % len(victims)]
            victim.kill()
            if victim.is_running():
                raise RuntimeError(f"{victim.name} survived SIGKILL")
            report.kills += 1
            report.killed[victim.name] = report.killed.get(victim.name, 0) + 1
            victim.restart(service_env)
        stop.set()
        for shopper in shoppers:
            shopper.join(timeout=Timeouts.PAYMENT * 3)
        judge_orders(network, vault, report, balances)
    finally:
        stop.set()
        vault.close()
    return report


def kill_rotation(network: Network, rng: random.Random) -> list[ServiceProcess]:
    """The order processes are killed in, from a random start: API instances and workers take turns, so a short run
    kills both kinds (a restart takes seconds, so few kills fit in a short run)."""
    apis, workers = network.api_services or ([network.service] if network.service else []), network.workers
    assert apis, "the network runs no service"
    rotation = [process for pair in itertools.zip_longest(apis, workers) for process in pair if process is not None]
    start = rng.randrange(len(rotation))
    return rotation[start:] + rotation[:start]


def judge_orders(network: Network, vault: StarknetClient, report: ChaosReport, balances: dict[str, int]) -> None:
    http = httpx.Client(base_url=network.service_url, timeout=30)
    try:
        def status(order: dict[str, Any]) -> str:
            return str(http.get(f"/api/v1/orders/{order['order_id']}").raise_for_status().json()["status"])

        with contextlib.suppress(WaitTimeout):  # what is still open is counted below
            wait_until(lambda: all(status(order) in FINAL_STATUSES for order in report.orders),
                       timeout=SETTLE_TIMEOUT_S, what="every chaos order to reach a final state", interval=1)
        for order in report.orders:
            final = status(order)
            report.statuses[final] = report.statuses.get(final, 0) + 1
    finally:
        http.close()
    judge = Judge(network.merchant.client(), [network.payer.client(), network.router.client()], vault)
    report.violations = judge.unsound(report.orders) + judge.vusd_mismatches(report.orders, balances)
