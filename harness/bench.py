"""`python -m harness bench`: figures for the README, printed, never asserted.

Bring-up time of a fresh network (tools cached), latency of single payer -> router -> merchant payments,
and throughput with several senders at once, for plain invoices and for hold invoices settled at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psutil
from rich.console import Console
from rich.progress import track
from rich.table import Table

from harness.contracts.deploy import deploy_all_sync, make_account
from harness.devnet import Devnet
from harness.lnd_client import HarnessLndClient
from harness.network import Network
from harness.purchase import Buyer, PurchaseNotCompleted
from harness.scale import Database
from harness.tools import locate
from harness.util import WaitTimeout
from service.config import Settings
from service.domain.pricing import quote_for_vusd, vusd_base_units
from service.starknet.client import StarknetClient, StarknetConfig

console = Console(width=160)  # tables of figures: wide enough for every column in a log file too
PAYMENT_MSAT = 100_000_000
ONE_VUSD = vusd_base_units(Decimal(1))


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def pay_plain(merchant: HarnessLndClient, payer: HarnessLndClient) -> float:
    invoice = merchant.add_invoice(PAYMENT_MSAT, memo="bench")
    started = time.perf_counter()
    result = payer.pay(invoice["payment_request"])
    elapsed = time.perf_counter() - started
    if result.get("status") != "SUCCEEDED":
        raise RuntimeError(f"bench payment failed: {result.get('failure_reason')}")
    return elapsed


def pay_hold_settled_at_once(merchant: HarnessLndClient, payer: HarnessLndClient,
                             amount_msat: int = PAYMENT_MSAT) -> float:
    preimage = secrets.token_bytes(32)
    payment_hash = hashlib.sha256(preimage).digest()
    bolt11 = merchant.add_hold_invoice(payment_hash, amount_msat, memo="bench hold")
    with ThreadPoolExecutor(max_workers=1) as settler:
        settled = settler.submit(_settle_when_accepted, merchant, payment_hash, preimage)
        started = time.perf_counter()
        result = payer.pay(bolt11)
        elapsed = time.perf_counter() - started
        settled.result(timeout=30)
    if result.get("status") != "SUCCEEDED":
        raise RuntimeError(f"bench hold payment failed: {result.get('failure_reason')}")
    return elapsed


def _settle_when_accepted(merchant: HarnessLndClient, payment_hash: bytes, preimage: bytes) -> None:
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


def stats_line(name: str, samples: list[float]) -> str:
    return (f"{name}: p50 {percentile(samples, 0.5) * 1000:.0f} ms, p95 {percentile(samples, 0.95) * 1000:.0f} ms, "
            f"p99 {percentile(samples, 0.99) * 1000:.0f} ms, mean {statistics.mean(samples) * 1000:.0f} ms")


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


# -- purchases through the service -------------------------------------------------------------------


def plain_mint(network: Network, starknet: StarknetClient) -> float:
    started = time.perf_counter()
    starknet.mint_for_payment(int(network.users[0]["address"], 16), ONE_VUSD, secrets.token_bytes(32))
    return time.perf_counter() - started


def run_purchase_bench(purchases: int = 100, concurrent: int = 300, payers: int = 8,
                       starknet_block_time: float | None = None) -> int:
    """Purchases against the same run's raw parts: a plain mint, a hold payment settled at once, a plain
    payment. With `starknet_block_time` the devnet closes blocks on a timer, as Starknet does."""
    started = time.perf_counter()
    with Network(starknet_block_time=starknet_block_time) as network:
        console.print(f"network bring-up with devnet, contracts and service: {time.perf_counter() - started:.1f}s "
                      f"({', '.join(f'{k} {v:.1f}s' for k, v in network.timings.items())}); Starknet blocks: "
                      f"{'per transaction' if starknet_block_time is None else f'every {starknet_block_time:g} s'}")
        assert network.service is not None
        buyer = Buyer(network.service.url, network.payer.client())
        # Plain mints go first, while the service's own client has not cached the operator's nonce yet.
        starknet = StarknetClient(network.starknet_config())
        merchant, payer = network.merchant.client(), network.payer.client()
        address = network.users[0]["address"]
        raw_count = 20 if starknet_block_time is None else 10
        try:
            mints = [plain_mint(network, starknet) for _ in range(raw_count)]
            console.print(stats_line(f"raw mint, send -> accepted on L2 with event ({raw_count})", mints))
            holds = [pay_hold_settled_at_once(merchant, payer) for _ in range(raw_count)]
            console.print(stats_line(f"raw hold payment settled at once ({raw_count})", holds))
            legs = [buyer.timed_purchase(address) for _ in track(range(purchases), description="purchases")]
            payments = [pay_plain(merchant, payer) for _ in range(raw_count)]
            console.print(stats_line(f"raw plain lnd payment payer->router->merchant ({raw_count})", payments))
            _report_legs(legs, purchases, statistics.median(payments))
            console.print(f"purchase p50 against raw hold payment p50 + raw mint p50: "
                          f"{percentile([leg['end_to_end'] for leg in legs], 0.5):.2f} s vs "
                          f"{percentile(holds, 0.5) + percentile(mints, 0.5):.2f} s")
            if concurrent:
                _throughput(buyer, address, concurrent, payers)
        finally:
            buyer.close()
            starknet.close()
    return 0


def _report_legs(legs: list[dict[str, float]], count: int, plain_payment_s: float) -> None:
    for leg in ("end_to_end", "htlc_arrival", "checks", "mint", "settle", "notify"):
        console.print(stats_line(f"purchase {leg} ({count})", [sample[leg] for sample in legs]))
    overhead = [sample["end_to_end"] - sample["mint"] - plain_payment_s for sample in legs]
    console.print(stats_line("service overhead per order (end_to_end - mint - plain payment p50)", overhead))


def _throughput(buyer: Buyer, address: str, count: int, payers: int) -> None:
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=payers) as pool:
        legs = list(pool.map(lambda _: buyer.timed_purchase(address), range(count)))
    elapsed = time.perf_counter() - started
    console.print(f"{count} purchases with {payers} payers at once: {elapsed:.1f}s = {count / elapsed:.2f} purchases/s")
    for leg in ("end_to_end", "htlc_arrival", "mint", "settle"):
        console.print(stats_line(f"  under load {leg}", [sample[leg] for sample in legs]))


# -- Starknet alone ----------------------------------------------------------------------------------


def run_starknet_bench(mints: int = 100, concurrent: int = 100, senders: int = 8) -> int:
    run_dir = Path(tempfile.mkdtemp(prefix="volta-bench-devnet-"))
    devnet = Devnet(locate("starknet-devnet")["starknet-devnet"], run_dir)
    try:
        started = time.perf_counter()
        devnet.start()
        console.print(f"devnet start: {time.perf_counter() - started:.2f}s")
        accounts = devnet.predeployed_accounts()
        owner, operator, user = accounts[0], accounts[1], accounts[2]
        started = time.perf_counter()
        contracts = deploy_all_sync(make_account(devnet.rpc_url, owner["address"], owner["private_key"]),
                                    int(operator["address"], 16), Decimal("97000"))
        console.print(f"declare + deploy of VUSD, Vault, PriceOracle (+ set_minter, set_price): "
                      f"{time.perf_counter() - started:.2f}s")
        # Built as the service builds its own (its settings' defaults, mint timeout included), from this devnet alone.
        client = StarknetClient(StarknetConfig.from_settings(Settings(
            starknet_rpc_url=devnet.rpc_url, vault_address=hex(contracts.vault), vusd_address=hex(contracts.vusd),
            oracle_address=hex(contracts.oracle), operator_address=operator["address"],
            operator_private_key=operator["private_key"])))
        recipient = int(user["address"], 16)

        def mint() -> float:
            begun = time.perf_counter()
            client.mint_for_payment(recipient, ONE_VUSD, secrets.token_bytes(32))
            return time.perf_counter() - begun

        started = time.perf_counter()
        samples = [mint() for _ in track(range(mints), description="sequential mints")]
        elapsed = time.perf_counter() - started
        console.print(stats_line(f"mint latency, send -> accepted with event ({mints})", samples))
        console.print(f"sequential: {mints / elapsed:.1f} mints/s")
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=senders) as pool:
            list(pool.map(lambda _: mint(), range(concurrent)))
        console.print(f"concurrent ({senders} threads, one operator account): "
                      f"{concurrent / (time.perf_counter() - started):.1f} mints/s")
        client.close()
    finally:
        devnet.stop()
        shutil.rmtree(run_dir, ignore_errors=True)
    return 0


# -- throughput of a service topology against raw lnd hold payments (issue #12) ----------------------


def run_scaled_purchase_bench(purchases: int = 24, concurrency: int = 8, api_instances: int = 1, workers: int = 0,
                              database: Database = "sqlite", payers: int = 1, mint_lanes: int = 1) -> int:
    """One run, one topology: raw lnd hold payments settled at once at `concurrency`, then as many purchases
    through `network.service_url` (nginx when scaled out) at the same concurrency. The payer nodes take turns.
    Prints a table against issue #12's goals (purchases/s >= 0.8 x hold payments/s, p99 < 5 s); asserts nothing."""
    started = time.perf_counter()
    with Network(payers=payers, api_instances=api_instances, workers=workers, database=database,
                 mint_lanes=mint_lanes) as network:
        scale = (f"{network.scale.describe()}, {database}" if network.scale.scaled
                 else f"one process (API and worker), {database}") + f", {mint_lanes} mint lane(s)"
        console.print(f"network bring-up: {time.perf_counter() - started:.1f}s; service: {scale}; "
                      f"{payers} payer node(s); {purchases} each at concurrency {concurrency}")
        with _bench_clients(network) as (merchant, payer_clients, buyers, address):
            holds, holds_s = _concurrently(
                lambda i: pay_hold_settled_at_once(merchant, payer_clients[i % payers]), purchases, concurrency)
            for i in range(2):  # warm-up, not counted: the first orders pay for caches and connections
                buyers[i % payers].timed_purchase(address)
            legs, legs_s = _concurrently(
                lambda i: buyers[i % payers].timed_purchase(address), purchases, concurrency)
    _print_scaled_table(scale, concurrency, purchases, holds, purchases / holds_s, legs, purchases / legs_s)
    return 0


def _concurrently(job: Callable[[int], Any], count: int, concurrency: int) -> tuple[list[Any], float]:
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        results = list(pool.map(job, range(count)))
    return results, time.perf_counter() - started


LEG_NAMES = {
    "htlc_arrival": "HTLC held (send -> payment_held)",
    "checks": "checks (payment_held -> minting)",
    "mint": "mint (minting -> minted, accepted on L2)",
    "settle": "settle (minted -> completed)",
    "notify": "buyer sees it (completed -> seen)",
}


def _print_scaled_table(scale: str, concurrency: int, count: int, holds: list[float], holds_per_s: float,
                        legs: list[dict[str, float]], purchases_per_s: float) -> None:
    """The topology's throughput and latency against raw hold payments, and where a purchase's time goes (its legs,
    harness.purchase.purchase_legs): what a faster topology would have to shorten."""
    end_to_end = [leg["end_to_end"] for leg in legs]
    def ms(samples: list[float], fraction: float) -> str:
        return f"{percentile(samples, fraction) * 1000:,.0f} ms"

    table = Table(title=f"{scale}: {count} at concurrency {concurrency}")
    for column in ("what", "per second", "p50", "p95", "p99"):
        table.add_column(column, justify="left" if column == "what" else "right")
    table.add_row("raw lnd hold payment, settled at once", f"{holds_per_s:.2f}",
                  ms(holds, 0.5), ms(holds, 0.95), ms(holds, 0.99))
    table.add_row("purchase through the service, end to end", f"{purchases_per_s:.2f}",
                  ms(end_to_end, 0.5), ms(end_to_end, 0.95), ms(end_to_end, 0.99))
    for name, what in LEG_NAMES.items():
        samples = [leg[name] for leg in legs]
        table.add_row(f"  of which {what}", "", ms(samples, 0.5), ms(samples, 0.95), ms(samples, 0.99))
    console.print(table)
    ratio = purchases_per_s / holds_per_s
    p99 = percentile(end_to_end, 0.99)
    console.print(f"issue #12 goals: purchases/s = {ratio:.2f} x raw hold payments/s (goal >= 0.8: "
                  f"{'met' if ratio >= 0.8 else 'not met'}); purchase p99 {p99:.2f} s (goal < 5 s: "
                  f"{'met' if p99 < 5 else 'not met'})")


# -- the same, as one sweep: worker counts and concurrencies in one network (issue #12's figures) ---------------

SWEEP_WAVES = {32: 3, 128: 2}  # purchases per phase = waves x concurrency: enough for batches to fill
SWEEP_PURCHASE_VUSD = Decimal("10.00")  # each purchase, and each raw hold payment's worth


def run_scale_sweep(workers: int = 3, concurrencies: tuple[int, ...] = (32, 128), api_instances: int = 2,
                    payers: int = 2) -> int:
    """One network with `workers` workers (one mint lane each) behind nginx on PostgreSQL; for each worker count
    from `workers` down to 1 (a worker is stopped between phases) and each concurrency: raw lnd hold payments
    settled at once, then purchases through nginx, at that concurrency, so every ratio compares two figures
    measured under the same load. Prints one table; asserts nothing."""
    started = time.perf_counter()
    with Network(payers=payers, api_instances=api_instances, workers=workers, database="postgres",
                 mint_lanes=workers) as network:
        console.print(f"network bring-up: {time.perf_counter() - started:.1f}s; {api_instances} API instances, "
                      f"{workers} workers with a mint lane each, {payers} payer nodes")
        rows = _sweep(network, concurrencies, payers)
    _print_sweep(rows)
    return 0


def _sweep(network: Network, concurrencies: tuple[int, ...], payers: int) -> list[dict[str, Any]]:
    # Raw holds of a purchase's size: the same work for lnd, and the same liquidity (a phase of 100,000-sat holds
    # would drain the 1 BTC channels before the sweep ends).
    amount_msat = purchase_msat(network.service_url, SWEEP_PURCHASE_VUSD)
    rows: list[dict[str, Any]] = []
    with _bench_clients(network) as (merchant, payer_clients, buyers, address):
        for i in range(2):  # warm-up, not counted
            buyers[i % payers].timed_purchase(address)
        while network.workers:
            for concurrency in concurrencies:
                count = SWEEP_WAVES.get(concurrency, 2) * concurrency
                idle = idle_cpu_rate(network)
                before = cpu_seconds(network)
                outcomes, holds_s = _concurrently(
                    lambda i: _hold_or_none(merchant, payer_clients[i % payers], amount_msat), count, concurrency)
                between = cpu_seconds(network)
                legs_or_none, legs_s = _concurrently(lambda i: _purchase_or_none(buyers[i % payers], address),
                                                     count, concurrency)
                after = cpu_seconds(network)
                holds = [hold for hold in outcomes if hold is not None]
                legs = [leg for leg in legs_or_none if leg is not None]
                rows.append({"workers": len(network.workers), "concurrency": concurrency, "count": count,
                             "unfinished": count - len(legs),
                             "holds_per_s": len(holds) / holds_s, "purchases_per_s": len(legs) / legs_s,
                             "end_to_end": [leg["end_to_end"] for leg in legs], "mint": [leg["mint"] for leg in legs],
                             "cpu_per_hold": _per_item(before, between, len(holds), idle, holds_s),
                             "cpu_per_purchase": _per_item(between, after, len(legs), idle, legs_s)})
                console.print(_sweep_line(rows[-1]))
            network.workers.pop().stop()  # its claims lapse; the others hold their own lanes
    return rows


@contextlib.contextmanager
def _bench_clients(network: Network) -> Iterator[tuple[HarnessLndClient, list[HarnessLndClient], list[Buyer], str]]:
    """The merchant's and the payers' lnd clients, a buyer per payer node (closed afterwards), and the address
    every purchase mints to."""
    payer_clients = [node.client() for node in network.payers]
    buyers = [Buyer(network.service_url, client) for client in payer_clients]
    try:
        yield network.merchant.client(), payer_clients, buyers, network.users[0]["address"]
    finally:
        for buyer in buyers:
            buyer.close()


def purchase_msat(service_url: str, vusd: Decimal) -> int:
    """What the service's invoice for `vusd` asks at its current rate and spread (the quote it would make)."""
    rate = httpx.get(f"{service_url}/api/v1/rate", timeout=30).raise_for_status().json()
    return quote_for_vusd(vusd, Decimal(rate["btc_usd"]), rate["spread_bps"]).amount_msat


def _hold_or_none(merchant: HarnessLndClient, payer: HarnessLndClient, amount_msat: int) -> float | None:
    """A raw hold payment's seconds, or None when lnd did not finish it (counted out of the rate, and shown)."""
    try:
        return pay_hold_settled_at_once(merchant, payer, amount_msat)
    except Exception as exc:  # a stream read timeout under load, a payment lnd failed: the rate counts only the rest
        console.print(f"[yellow]a raw hold payment did not complete: {exc!r}")
        return None


def _purchase_or_none(buyer: Buyer, address: str) -> dict[str, float] | None:
    """A purchase's legs, or None when it did not complete in time (counted and shown, never hidden)."""
    try:
        return buyer.timed_purchase(address, str(SWEEP_PURCHASE_VUSD))
    except (WaitTimeout, PurchaseNotCompleted) as exc:
        console.print(f"[yellow]a purchase did not complete: {exc}")
        return None


def cpu_seconds(network: Network) -> Counter[str]:
    """CPU seconds (user + system) each kind of process of the network has used so far, its children included
    (PostgreSQL's backends, gunicorn's workers; those already reaped through their parent's children_* times),
    and this process (the bench's own clients)."""
    totals: Counter[str] = Counter()
    for process in network.processes:
        if not process.is_running() or process.pid is None:
            continue
        with contextlib.suppress(psutil.NoSuchProcess):
            root = psutil.Process(process.pid)
            for member in (root, *root.children(recursive=True)):
                with contextlib.suppress(psutil.NoSuchProcess):
                    times = member.cpu_times()
                    totals[type(process).__name__] += times.user + times.system + times.children_user + \
                        times.children_system
    own = psutil.Process().cpu_times()
    totals["bench clients"] = own.user + own.system
    return totals


IDLE_WINDOW_S = 10.0


def idle_cpu_rate(network: Network) -> dict[str, float]:
    """CPU seconds per second each kind of process uses with nothing to do (block timers, polls, keepalives):
    subtracted from a phase's CPU so a slower phase is not charged for idling longer."""
    start = cpu_seconds(network)
    time.sleep(IDLE_WINDOW_S)
    end = cpu_seconds(network)
    return {kind: max(0.0, end[kind] - start[kind]) / IDLE_WINDOW_S for kind in end}


def _per_item(start: Counter[str], end: Counter[str], completed: int, idle: dict[str, float],
              duration_s: float) -> dict[str, float]:
    """The CPU each completed item added (the phase's CPU less what idling would have used in as long)."""
    return {kind: max(0.0, end[kind] - start[kind] - idle.get(kind, 0.0) * duration_s) / max(1, completed)
            for kind in end}


def _sweep_line(row: dict[str, Any]) -> str:
    purchase_cpu = ", ".join(f"{kind} {seconds * 1000:.0f}" for kind, seconds in
                             sorted(row["cpu_per_purchase"].items(), key=lambda item: -item[1]) if seconds > 0.0005)
    return (f"{row['workers']} worker(s), concurrency {row['concurrency']}: {row['purchases_per_s']:.2f} purchases/s "
            f"({row['unfinished']} of {row['count']} unfinished) "
            f"vs {row['holds_per_s']:.2f} raw hold payments/s ({row['purchases_per_s'] / row['holds_per_s']:.2f}x), "
            f"p99 {percentile(row['end_to_end'], 0.99):.2f} s; CPU per raw hold "
            f"{sum(row['cpu_per_hold'].values()) * 1000:.0f} ms, per purchase "
            f"{sum(row['cpu_per_purchase'].values()) * 1000:.0f} ms ({purchase_cpu})")


def _print_sweep(rows: list[dict[str, Any]]) -> None:
    table = Table(title="purchases through nginx against raw lnd hold payments, same network, same concurrency")
    for column in ("workers", "concurrency", "n", "unfinished", "raw holds/s", "purchases/s", "ratio", "p50", "p95",
                   "p99", "mint p50", "CPU/hold", "CPU/purchase", "CPU ratio"):
        table.add_column(column, justify="right")
    for row in rows:
        end_to_end = row["end_to_end"]
        table.add_row(str(row["workers"]), str(row["concurrency"]), str(row["count"]), str(row["unfinished"]),
                      f"{row['holds_per_s']:.2f}",
                      f"{row['purchases_per_s']:.2f}", f"{row['purchases_per_s'] / row['holds_per_s']:.2f}",
                      *(f"{percentile(end_to_end, q):.2f} s" for q in (0.5, 0.95, 0.99)),
                      f"{percentile(row['mint'], 0.5):.2f} s", f"{sum(row['cpu_per_hold'].values()) * 1000:.0f} ms",
                      f"{sum(row['cpu_per_purchase'].values()) * 1000:.0f} ms",
                      f"{sum(row['cpu_per_hold'].values()) / sum(row['cpu_per_purchase'].values()):.2f}")
    console.print(table)
    console.print(f"{os.cpu_count()} cores. CPU: what each raw hold payment or purchase added over idling, all "
                  "processes of the network counted (children included). CPU ratio: a raw hold's over a purchase's: "
                  "where the CPU is what runs out, purchases/s cannot exceed that fraction of raw hold payments/s.")
