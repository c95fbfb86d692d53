"""`python -m harness bench`: figures for the README, printed, never asserted.

Bring-up time of a fresh network (tools cached), latency of single payer -> router -> merchant payments,
and throughput with several senders at once, for plain invoices and for hold invoices settled at once.
"""

from __future__ import annotations

import hashlib
import secrets
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from rich.console import Console
from rich.progress import track

from harness.network import Network
from service.lightning.lnd_rest import LndRestClient

console = Console()
PAYMENT_MSAT = 100_000_000


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def pay_plain(merchant: LndRestClient, payer: LndRestClient) -> float:
    invoice = merchant.add_invoice(PAYMENT_MSAT, memo="bench")
    started = time.perf_counter()
    result = payer.pay(invoice["payment_request"])
    elapsed = time.perf_counter() - started
    if result.get("status") != "SUCCEEDED":
        raise RuntimeError(f"bench payment failed: {result.get('failure_reason')}")
    return elapsed


def pay_hold_settled_at_once(merchant: LndRestClient, payer: LndRestClient) -> float:
    preimage = secrets.token_bytes(32)
    payment_hash = hashlib.sha256(preimage).digest()
    bolt11 = merchant.add_hold_invoice(payment_hash, PAYMENT_MSAT, memo="bench hold")
    with ThreadPoolExecutor(max_workers=1) as settler:
        settled = settler.submit(_settle_when_accepted, merchant, payment_hash, preimage)
        started = time.perf_counter()
        result = payer.pay(bolt11)
        elapsed = time.perf_counter() - started
        settled.result(timeout=30)
    if result.get("status") != "SUCCEEDED":
        raise RuntimeError(f"bench hold payment failed: {result.get('failure_reason')}")
    return elapsed


def _settle_when_accepted(merchant: LndRestClient, payment_hash: bytes, preimage: bytes) -> None:
    updates = merchant.subscribe_invoice(payment_hash, timeout=60)
    try:
        for invoice in updates:
            if invoice.get("state") == "ACCEPTED":
                merchant.settle_invoice(preimage)
                return
    finally:
        updates.close()


def latency(kind: str, pay: Callable[[], float], count: int) -> None:
    samples = [pay() for _ in track(range(count), description=f"{kind}: {count} sequential payments")]
    console.print(
        f"{kind}: latency over {count} payments: p50 {percentile(samples, 0.5) * 1000:.0f} ms, "
        f"p95 {percentile(samples, 0.95) * 1000:.0f} ms, mean {statistics.mean(samples) * 1000:.0f} ms"
    )


def throughput(kind: str, pay: Callable[[], float], count: int, senders: int) -> None:
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=senders) as pool:
        samples = list(pool.map(lambda _: pay(), range(count)))
    elapsed = time.perf_counter() - started
    console.print(
        f"{kind}: {count} payments with {senders} senders at once in {elapsed:.1f}s = "
        f"{count / elapsed:.1f} payments/s (p50 {percentile(samples, 0.5) * 1000:.0f} ms each)"
    )


def run_lightning_bench(payments: int = 100, concurrent: int = 300, senders: int = 8) -> int:
    started = time.perf_counter()
    with Network() as network:
        console.print(f"network bring-up (btcd + 3 lnd, funded, channels open, routable): "
                      f"{time.perf_counter() - started:.1f}s")
        merchant, payer = network.merchant.client(), network.payer.client()
        plain = lambda: pay_plain(merchant, payer)  # noqa: E731
        hold = lambda: pay_hold_settled_at_once(merchant, payer)  # noqa: E731
        latency("plain invoice", plain, payments)
        latency("hold invoice settled at once", hold, payments)
        throughput("plain invoice", plain, concurrent, senders)
        throughput("hold invoice settled at once", hold, concurrent, senders)
    return 0
