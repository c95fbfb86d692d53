"""A person buying VUSD, driven from outside the service: create the order over HTTP, pay its invoice
from the payer's lnd, follow the order until it ends. Used by the demo, tests, features and benchmarks."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from harness.lnd_client import HarnessLndClient
from harness.util import Timeouts, WaitTimeout
from service.domain.states import FINAL_STATUSES, OrderStatus


class PurchaseNotCompleted(RuntimeError):
    def __init__(self, order: dict[str, Any]) -> None:
        super().__init__(f"purchase ended {order['status']} ({order.get('refund_reason')})")
        self.order = order


def iso_to_unix(text: str) -> float:
    """The API's timestamps ("2026-11-27T08:00:00.123Z") as unix seconds."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def state_times(history: list[dict[str, Any]]) -> dict[str, float]:
    """When the order first entered each state, as unix seconds (the service's clock)."""
    times: dict[str, float] = {}
    for event in history:
        times.setdefault(event["status"], iso_to_unix(event["at"]))
    return times


def purchase_legs(history: list[dict[str, Any]], sent_unix: float, seen_unix: float) -> dict[str, float]:
    """Seconds for each leg of a completed purchase, from the payer pressing send to the buyer seeing it done.

    The same machine runs payer, service and buyer, so their clocks agree."""
    at = state_times(history)
    return {
        "htlc_arrival": at[OrderStatus.PAYMENT_HELD] - sent_unix,
        "checks": at[OrderStatus.MINTING] - at[OrderStatus.PAYMENT_HELD],
        "mint": at[OrderStatus.MINTED] - at[OrderStatus.MINTING],
        "settle": at[OrderStatus.COMPLETED] - at[OrderStatus.MINTED],
        "notify": seen_unix - at[OrderStatus.COMPLETED],
        "end_to_end": seen_unix - sent_unix,
    }


@dataclass
class Purchase:
    order: dict[str, Any]
    created_s: float = 0.0
    payment: Future[dict[str, Any]] | None = None
    timeline: dict[str, float] = field(default_factory=dict)  # status -> seconds since the order was created

    @property
    def order_id(self) -> str:
        return self.order["order_id"]


class Buyer:
    def __init__(self, service_url: str, payer: HarnessLndClient) -> None:
        self.http = httpx.Client(base_url=service_url, timeout=30)
        self.payer = payer
        self._payments = ThreadPoolExecutor(max_workers=16, thread_name_prefix="payer")

    def close(self) -> None:
        self._payments.shutdown(wait=False, cancel_futures=True)
        self.http.close()

    def create_order(self, starknet_address: str, vusd_amount: str = "25.00", **extra: Any) -> Purchase:
        started = time.monotonic()
        response = self.http.post("/api/v1/orders", json={"starknet_address": starknet_address,
                                                          "vusd_amount": vusd_amount, **extra})
        if response.status_code != 201:
            raise RuntimeError(f"order refused: HTTP {response.status_code} {response.text}")
        return Purchase(response.json(), created_s=started)

    def pay(self, purchase: Purchase, payer: HarnessLndClient | None = None) -> Future[dict[str, Any]]:
        """Start paying (the HTLC is held until the service mints), returning the payment's future."""
        node = payer or self.payer
        purchase.payment = self._payments.submit(node.pay, purchase.order["bolt11"], int(Timeouts.PAYMENT))
        purchase.timeline["paid_at"] = time.monotonic() - purchase.created_s
        return purchase.payment

    def get(self, order_id: str) -> dict[str, Any]:
        return self.http.get(f"/api/v1/orders/{order_id}").raise_for_status().json()

    def follow(self, purchase: Purchase, timeout: float = Timeouts.PAYMENT * 2) -> dict[str, Any]:
        """Read the order's live events until it reaches a final state; records when each state came."""
        deadline = time.monotonic() + timeout
        order = purchase.order
        for order in self._events(purchase.order_id, timeout):
            purchase.timeline.setdefault(order["status"], time.monotonic() - purchase.created_s)
            if order["status"] in FINAL_STATUSES:
                purchase.order = order
                return order
            if time.monotonic() > deadline:
                break
        raise WaitTimeout(f"order {purchase.order_id} still {order['status']} after {timeout:.0f}s")

    def _events(self, order_id: str, timeout: float) -> Iterator[dict[str, Any]]:
        with self.http.stream("GET", f"/api/v1/orders/{order_id}/events",
                              timeout=httpx.Timeout(10, read=timeout)) as response:
            response.raise_for_status()
            for line in response.iter_lines():
                if line.startswith("data: "):
                    yield json.loads(line.removeprefix("data: "))

    def timed_purchase(self, starknet_address: str, vusd_amount: str = "10.00") -> dict[str, float]:
        """One purchase, split into its legs (see `purchase_legs`); raises if it does not complete."""
        purchase = self.create_order(starknet_address, vusd_amount)
        sent_unix = time.time()
        self.pay(purchase)
        order = self.follow(purchase)
        seen_unix = time.time()
        if order["status"] != OrderStatus.COMPLETED:
            raise PurchaseNotCompleted(order)
        return purchase_legs(order["history"], sent_unix, seen_unix)

    def buy(self, starknet_address: str, vusd_amount: str = "25.00", **extra: Any) -> Purchase:
        """The whole purchase: order, pay, wait for the end. Returns it with its timeline."""
        purchase = self.create_order(starknet_address, vusd_amount, **extra)
        self.pay(purchase)
        self.follow(purchase)
        return purchase
