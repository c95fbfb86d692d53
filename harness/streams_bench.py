"""Thousands of open checkout pages and open invoices on one API instance: `python -m harness bench streams`.

One API instance (gunicorn, one gevent worker) behind nginx and one worker, on PostgreSQL and Redis. The run
creates `count` orders (each an open hold invoice the worker follows) and opens an event stream for each
through nginx, all from one asyncio loop here; then it reads the API instance's and the worker's memory and
threads, and the API's latency for `POST /api/v1/orders` with all of them open, against the same before any
was. Every order then expires (a short quote lifetime), and every stream must receive that as its last event.
Prints figures; the regtest test (tests/harness/test_open_streams.py) asserts only that every stream got its
events and the service kept answering.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from harness.network import Network
from harness.service_process import ServiceProcess
from service.domain.states import OrderStatus
from service.loop_thread import LoopThread

console = Console()

# Orders live long enough for all of them to be open together while the figures are read (the creation time
# measured at idle, with margin), and then end on their own (`expired`: an event for every stream) without a
# payment each.
MIN_QUOTE_LIFETIME_S = 120
# How many requests are in flight at once while the orders are created and the streams opened.
CREATE_CONCURRENCY = 4
OPEN_CONCURRENCY = 16
LATENCY_SAMPLES = 100
STREAM_READ_TIMEOUT_S = 60  # the service writes at least a keepalive every 15 s
# A stream refused with 429 (its client's slots all held) is tried again this often, for this long: a page
# closed must free its slot within moments, where the service used to notice only at its next keepalive (15 s).
RETRY_429_EVERY_S, RETRY_429_FOR_S = 0.2, 5.0


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (gunicorn's master and its worker), from /proc."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            children = (task / "children").read_text().split() if (task / "children").exists() else []
            pending.extend(int(child) for child in children)
    return found


def memory_and_threads(pid: int) -> tuple[int, int]:
    """Resident memory (kB) and threads of a process and its descendants."""
    rss_kb = threads = 0
    for member in process_tree(pid):
        for line in Path(f"/proc/{member}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss_kb += int(line.split()[1])
            elif line.startswith("Threads:"):
                threads += int(line.split()[1])
    return rss_kb, threads


def connections_to(pid: int, port: int) -> int:
    """Established TCP connections of a process tree to 127.0.0.1:`port` (the worker's streams to lnd)."""
    inodes = set()
    for member in process_tree(pid):
        for descriptor in Path(f"/proc/{member}/fd").glob("*"):
            try:
                target = descriptor.readlink().as_posix()
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    remote = f"0100007F:{port:04X}"
    count = 0
    for table in ("/proc/net/tcp",):
        for line in Path(table).read_text().splitlines()[1:]:
            parts = line.split()
            if parts[2] == remote and parts[3] == "01" and parts[9] in inodes:
                count += 1
    return count


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))]


@dataclass
class Stream:
    order_id: str
    statuses: list[str] = field(default_factory=list)
    error: str = ""
    closed_by_service: bool = False
    first_event_at: float | None = None
    retries: int = 0  # refused with 429 first (its slot not yet free), then tried again


@dataclass
class StreamsFigures:
    """What one run measured; printed by `print_figures`."""

    count: int
    latency_idle_s: list[float] = field(default_factory=list)
    latency_loaded_s: list[float] = field(default_factory=list)
    api_idle: tuple[int, int] = (0, 0)  # (kB resident, threads)
    api_loaded: tuple[int, int] = (0, 0)
    worker_idle: tuple[int, int] = (0, 0)
    worker_loaded: tuple[int, int] = (0, 0)
    worker_lnd_connections: int = 0
    create_s: float = 0.0
    open_s: float = 0.0
    open_streams_when_measured: int = 0
    streams: dict[str, Stream] = field(default_factory=dict)
    health_while_loaded: int = 0
    slot_reuse_s: float | None = None
    slot_reuse_retries: int = 0
    reused: list[str] = field(default_factory=list)  # the streams closed and opened again

    def streams_ended_expired(self) -> int:
        """How many streams' last event so far says the order expired."""
        return sum(1 for stream in self.streams.values()
                   if stream.statuses and stream.statuses[-1] == OrderStatus.EXPIRED)


class StreamsLoad:
    """Orders and their event streams through nginx, driven from one asyncio loop on a thread of its own."""

    def __init__(self, service_url: str) -> None:
        self.service_url = service_url
        self._loop = LoopThread(name="streams-load")
        self._client: httpx.AsyncClient | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.streams: dict[str, Stream] = {}

    def close(self) -> None:
        self._loop.run(self._close())
        self._loop.close()

    async def _close(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(base_url=self.service_url, timeout=httpx.Timeout(60),
                                             limits=httpx.Limits(max_connections=None, max_keepalive_connections=64))
        return self._client

    # -- orders ------------------------------------------------------------------------------------------

    async def _create(self) -> tuple[str, float]:
        # A new buyer each: orders of one address are admitted one at a time (its limits), which would make
        # this a test of that lock. No VUSD is ever minted to these (the orders expire unpaid).
        address = hex(secrets.randbits(248) | 1)
        started = time.perf_counter()
        response = await self._http().post("/api/v1/orders", json={"starknet_address": address, "vusd_amount": "1.00"})
        elapsed = time.perf_counter() - started
        if response.status_code != 201:
            raise RuntimeError(f"POST /api/v1/orders: HTTP {response.status_code}: {response.text[:300]}")
        return response.json()["order_id"], elapsed

    async def _create_many(self, count: int, concurrency: int) -> list[tuple[str, float]]:
        gate = asyncio.Semaphore(concurrency)

        async def one() -> tuple[str, float]:
            async with gate:
                return await self._create()

        return list(await asyncio.gather(*(one() for _ in range(count))))

    def create_orders(self, count: int, concurrency: int = CREATE_CONCURRENCY) -> list[tuple[str, float]]:
        """(order id, seconds) of each `POST /api/v1/orders`."""
        return self._loop.run(self._create_many(count, concurrency))

    async def _create_and_follow(self, count: int, concurrency: int) -> list[str]:
        gate, opened = asyncio.Semaphore(concurrency), asyncio.Semaphore(OPEN_CONCURRENCY)

        async def one() -> str:
            async with gate:
                order_id, _elapsed = await self._create()
            await opened.acquire()
            stream = self.streams[order_id] = Stream(order_id)
            self._tasks[order_id] = asyncio.get_running_loop().create_task(self._follow(stream, opened))
            return order_id

        order_ids = list(await asyncio.gather(*(one() for _ in range(count))))
        for _ in range(OPEN_CONCURRENCY):  # every stream has had its first event (or failed)
            await opened.acquire()
        return order_ids

    def create_and_follow(self, count: int, concurrency: int = CREATE_CONCURRENCY) -> list[str]:
        """Create `count` orders and open each one's stream as soon as it exists; return once every stream has
        had its first event (or failed)."""
        return self._loop.run(self._create_and_follow(count, concurrency))

    # -- streams -----------------------------------------------------------------------------------------

    async def _follow(self, stream: Stream, opened: asyncio.Semaphore) -> None:
        url = f"/api/v1/orders/{stream.order_id}/events"
        give_up_at = time.monotonic() + RETRY_429_FOR_S
        try:
            while not await self._read_stream(url, stream, opened) and time.monotonic() < give_up_at:
                stream.retries += 1
                await asyncio.sleep(RETRY_429_EVERY_S)
        except (httpx.HTTPError, ValueError) as exc:
            stream.error = f"{type(exc).__name__}: {exc}"
        finally:
            if stream.first_event_at is None:  # released at its first event otherwise
                opened.release()

    async def _read_stream(self, url: str, stream: Stream, opened: asyncio.Semaphore) -> bool:
        """Read the stream to its end; False if refused with 429 (to be tried again)."""
        timeout = httpx.Timeout(30, read=STREAM_READ_TIMEOUT_S)
        async with self._http().stream("GET", url, timeout=timeout) as answer:
            if answer.status_code == 429:
                stream.error = "HTTP 429: too many streams"
                return False
            stream.error = ""
            if answer.status_code != 200:
                stream.error = f"HTTP {answer.status_code}: {(await answer.aread())[:200]!r}"
                return True
            async for line in answer.aiter_lines():
                if line.startswith("data: "):
                    stream.statuses.append(json.loads(line[6:])["status"])
                    if stream.first_event_at is None:
                        stream.first_event_at = time.monotonic()
                        opened.release()
            stream.closed_by_service = True
            return True

    async def _open(self, order_ids: list[str], concurrency: int) -> None:
        opened = asyncio.Semaphore(concurrency)  # at most this many waiting for their first event
        for order_id in order_ids:
            await opened.acquire()
            stream = self.streams[order_id] = Stream(order_id)
            self._tasks[order_id] = asyncio.get_running_loop().create_task(self._follow(stream, opened))
        for _ in range(concurrency):  # every stream has had its first event (or failed)
            await opened.acquire()

    def open_streams(self, order_ids: list[str], concurrency: int = OPEN_CONCURRENCY) -> None:
        """Open a stream for each order; return once each has had its first event (or failed)."""
        self._loop.run(self._open(order_ids, concurrency))

    async def _drop(self, order_ids: list[str]) -> None:
        tasks = [self._tasks.pop(order_id) for order_id in order_ids if order_id in self._tasks]
        for task in tasks:
            task.cancel()  # the connection closes: the browser went away
        await asyncio.gather(*tasks, return_exceptions=True)

    def drop_streams(self, order_ids: list[str]) -> None:
        self._loop.run(self._drop(order_ids))

    def open_count(self) -> int:
        return sum(1 for task in self._tasks.values() if not task.done())

    def wait_streams_ended(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.open_count() and time.monotonic() < deadline:
            time.sleep(1)


def latency_samples(load: StreamsLoad, samples: int = LATENCY_SAMPLES) -> list[float]:
    """`POST /api/v1/orders`, four at a time (each makes an order, so an open invoice, too)."""
    return [elapsed for _order_id, elapsed in load.create_orders(samples, concurrency=4)]


def measure_open_streams(network: Network, count: int, *,
                         progress: Callable[[str], None] = lambda _text: None) -> StreamsFigures:
    """The run itself, on a started network with one API instance and one worker (see the module's text)."""
    (api,), (worker,) = network.api_services, network.workers
    figures = StreamsFigures(count)
    load = StreamsLoad(network.service_url)
    try:
        started = time.perf_counter()
        figures.latency_idle_s = latency_samples(load)
        # The idle run's pace (4 at a time) says how long the orders take to create (as many at a time).
        expected_create_s = (time.perf_counter() - started) / len(figures.latency_idle_s) * count
        # Creation slows as streams pile up (measured: 13 orders/s at first, 6 by the end): a wide margin.
        lifetime_s = max(MIN_QUOTE_LIFETIME_S, round(3 * expected_create_s + 150))
        _restart_with(api, {"VOLTA_QUOTE_LIFETIME_S": str(lifetime_s),
                            # exactly the streams this run opens, so a slot not freed at once shows as a 429
                            "VOLTA_MAX_EVENT_STREAMS_PER_IP": str(count)})
        assert api.pid is not None and worker.pid is not None
        load.create_orders(20, concurrency=4)  # the restarted instance warmed up before its idle figures
        figures.api_idle, figures.worker_idle = memory_and_threads(api.pid), memory_and_threads(worker.pid)
        progress(f"idle: POST p99 {percentile(figures.latency_idle_s, 0.99) * 1000:.0f} ms; creating {count} orders "
                 f"(quote lifetime {lifetime_s}s), each followed live at once")

        started = time.perf_counter()
        order_ids = load.create_and_follow(count)
        figures.create_s = figures.open_s = time.perf_counter() - started
        figures.open_streams_when_measured = load.open_count()
        progress(f"{figures.open_streams_when_measured} streams open after {figures.open_s:.1f}s; measuring")

        # The worker subscribes to new invoices on its re-check passes: wait until it follows all of them.
        deadline = time.monotonic() + 120
        while connections_to(worker.pid, network.merchant.rest_port) < count and time.monotonic() < deadline:
            time.sleep(2)
        figures.api_loaded, figures.worker_loaded = memory_and_threads(api.pid), memory_and_threads(worker.pid)
        figures.worker_lnd_connections = connections_to(worker.pid, network.merchant.rest_port)
        figures.latency_loaded_s = latency_samples(load)
        figures.health_while_loaded = httpx.get(f"{network.service_url}/api/v1/health", timeout=30).status_code

        # A page closed frees its slot at once: a tenth of the streams go away, as many new ones must open.
        reused = order_ids[: max(1, count // 10)]
        load.drop_streams(reused)
        started = time.perf_counter()
        load.open_streams(reused)
        figures.slot_reuse_s = time.perf_counter() - started
        figures.slot_reuse_retries = sum(load.streams[order_id].retries for order_id in reused)
        figures.reused = reused
        progress(f"{len(reused)} streams closed and opened again in {figures.slot_reuse_s:.1f}s; "
                 "waiting for every order to expire")

        figures.streams = dict(load.streams)
        print_figures(figures)  # now: what follows only waits for the orders to expire
        load.wait_streams_ended(timeout=lifetime_s + 300)
        figures.streams = dict(load.streams)
    finally:
        load.close()
    return figures


def _restart_with(process: ServiceProcess, env: dict[str, str]) -> None:
    process.restart({**process.extra_env, **env})


def print_figures(figures: StreamsFigures) -> None:
    def ms(samples: list[float], fraction: float) -> str:
        return f"{percentile(samples, fraction) * 1000:.0f}" if samples else "-"

    count = figures.count
    api_growth_kb = figures.api_loaded[0] - figures.api_idle[0]
    worker_growth_kb = figures.worker_loaded[0] - figures.worker_idle[0]
    table = Table(title=f"{count} open event streams and {count} open invoices on one API instance")
    table.add_column("")
    table.add_column("idle", justify="right")
    table.add_column("loaded", justify="right")
    table.add_row("POST /api/v1/orders p50 (ms)", ms(figures.latency_idle_s, 0.5), ms(figures.latency_loaded_s, 0.5))
    table.add_row("POST /api/v1/orders p99 (ms)", ms(figures.latency_idle_s, 0.99), ms(figures.latency_loaded_s, 0.99))
    table.add_row("API instance RSS (MB)", f"{figures.api_idle[0] / 1024:.1f}", f"{figures.api_loaded[0] / 1024:.1f}")
    table.add_row("API instance threads", str(figures.api_idle[1]), str(figures.api_loaded[1]))
    table.add_row("worker RSS (MB)", f"{figures.worker_idle[0] / 1024:.1f}", f"{figures.worker_loaded[0] / 1024:.1f}")
    table.add_row("worker threads", str(figures.worker_idle[1]), str(figures.worker_loaded[1]))
    console.print(table)
    finals = figures.streams_ended_expired()
    console.print(
        f"per open stream: {api_growth_kb / count:.1f} kB in the API instance; per open invoice: "
        f"{worker_growth_kb / count:.1f} kB in the worker ({figures.worker_lnd_connections} connections to lnd); "
        f"{count} orders created and followed in {figures.create_s:.1f}s "
        f"({figures.open_streams_when_measured} open when measured); a tenth closed and reopened in "
        f"{figures.slot_reuse_s or 0:.1f}s ({figures.slot_reuse_retries} retries after a 429); "
        f"{finals} of {len(figures.streams)} streams ended with `expired`; "
        f"health {figures.health_while_loaded} while loaded")


def run_streams_bench(count: int = 2000) -> int:
    started = time.perf_counter()
    with Network(api_instances=1, workers=1, database="postgres") as network:
        console.print(f"network bring-up: {time.perf_counter() - started:.1f}s; one API instance (gunicorn, gevent) "
                      "behind nginx, one worker, PostgreSQL, Redis")
        figures = measure_open_streams(network, count, progress=console.print)  # prints its figures
        console.print(f"{figures.streams_ended_expired()} of {len(figures.streams)} streams ended with `expired`")
    return 0
