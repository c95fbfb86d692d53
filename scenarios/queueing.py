"""The service as a queue: purchases through one service process, its mint lanes and a Starknet block timer.

A closed system of `concurrency` buyers, each starting a new purchase as soon as the last one ended (what
`scenarios.queue_bench` and `harness bench purchase` do). A purchase visits, in order:

1. **before** — a pure delay: creating the order, the Lightning payment reaching the merchant, the service's
   checks, without the service's shared work (sampled from the calibration run at concurrency 1);
2. **cpu** — the service's per-order work, one order at a time (a FIFO single server, `cpu_s` each): the one
   place where buyers wait for each other. On this 2-core machine the service, lnd, btcd and devnet share the
   cores, so this is a fitted number, not a measured CPU time;
3. **mint lane** — the lane with the fewest mints queued or waiting takes it. A lane that is not sending takes
   everything queued (at most `MAX_BATCH`) as one multicall and is busy until it is sent: `send_s +
   send_per_mint_s x batch` of work on the Starknet node (the fee estimate simulates every call), which serves
   one lane's request at a time when `shared_node` (one devnet, as here), so lanes share its time;
   mints that queue meanwhile go in the next batch (`service/starknet/lanes.py`). Waiting for acceptance is
   off the send path: a batch is accepted at the first block boundary after it was sent (blocks every
   `block_time_s`; `None` closes a block per transaction), seen after the receipt poll (uniform in
   `POLL_INTERVAL_S`) and `accept_s` more;
4. **after** — a pure delay: settling the HTLC and the buyer seeing `completed` (sampled at concurrency 1).

A purchase's latency is measured from the payer pressing send to the buyer seeing it end, as
`harness.purchase.purchase_legs` does; its cycle adds the order's creation (`create_s`, sampled).

The model has two fitted numbers, `cpu_s` and `send_s`; everything else is sampled from the calibration runs.
`fit` chooses them on the calibration runs only; `validate` compares the prediction with held-out runs.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

MAX_BATCH = 20  # service/starknet/lanes.py MAX_BATCH (checked by tests/scenarios/test_research_queueing.py)
POLL_INTERVAL_S = 0.1  # service/starknet/lanes.py POLL_INTERVAL_S (checked likewise)
PERCENTILES = (50, 95, 99)
SEND_FIXED_S = 0.1  # signing and the RPC round trips of one batch, apart from simulating its calls (assumed)


@dataclass(frozen=True)
class QueueParams:
    block_time_s: float | None  # None: a block per transaction (the devnet's default)
    lanes: int
    cpu_s: float  # the service's serialised work per order (fitted)
    send_s: float  # a lane signing and sending one batch, fixed part
    send_per_mint_s: float  # and per mint in it: the fee estimate simulates every call of the multicall (fitted)
    accept_s: float  # from the block to the service recording `minted` (follows from the others, see fit)
    block_jitter_s: float  # mean extra time a block takes to close on a loaded machine (exponential; fitted)
    before_s: NDArray[np.float64] = field(repr=False)  # samples: send -> minting, minus cpu_s
    after_s: NDArray[np.float64] = field(repr=False)  # samples: minted -> the buyer sees completed
    create_s: NDArray[np.float64] = field(repr=False)  # samples: creating the order (before send)
    max_batch: int = MAX_BATCH
    shared_node: bool = True  # every lane's send work queues at one Starknet node (False: each lane has its own)


@dataclass(frozen=True)
class Prediction:
    concurrency: int
    throughput_per_s: float
    latency_s: NDArray[np.float64] = field(repr=False)  # per purchase, send -> seen completed
    mint_s: NDArray[np.float64] = field(repr=False)  # per purchase, minting -> minted
    batch_sizes: NDArray[np.int64] = field(repr=False)

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latency_s, q))

    def summary(self) -> dict[str, float]:
        out = {"concurrency": float(self.concurrency), "throughput_per_s": self.throughput_per_s,
               "mean_s": float(self.latency_s.mean()), "mint_mean_s": float(self.mint_s.mean()),
               "mean_batch": float(self.batch_sizes.mean()) if len(self.batch_sizes) else 0.0}
        out.update({f"p{q}_s": self.percentile(q) for q in PERCENTILES})
        return out


def simulate(params: QueueParams, concurrency: int, purchases: int, seed: int = 0,
             warmup: int | None = None) -> Prediction:
    """Discrete-event simulation of `purchases` completed purchases (after `warmup` more) at `concurrency`."""
    if concurrency < 1 or purchases < 1:
        raise ValueError(f"concurrency and purchases must be at least 1, not {concurrency} and {purchases}")
    rng = np.random.default_rng(seed)
    warmup = concurrency * 2 if warmup is None else warmup
    total = purchases + warmup
    phase = float(rng.uniform(0, params.block_time_s)) if params.block_time_s else 0.0

    events: list[tuple[float, int, str, int]] = []  # (time, tie-break, kind, purchase id)
    counter = 0

    def push(at: float, kind: str, pid: int) -> None:
        nonlocal counter
        counter += 1
        heapq.heappush(events, (at, counter, kind, pid))

    sent_at: dict[int, float] = {}
    minting_at: dict[int, float] = {}
    mint_s: list[float] = []
    latency_s: list[float] = []
    ended_at: list[float] = []
    batch_sizes: list[int] = []
    cpu_free_at = 0.0
    node_free_at = 0.0
    lane_queue: list[list[int]] = [[] for _ in range(params.lanes)]
    lane_busy = [False] * params.lanes
    lane_waiting = [0] * params.lanes  # mints sent, not yet accepted
    started = 0

    def draw(samples: NDArray[np.float64]) -> float:
        return float(samples[rng.integers(len(samples))])

    def start_purchase(now: float) -> None:
        nonlocal started
        if started >= total:
            return
        pid = started
        started += 1
        sent = now + draw(params.create_s)
        sent_at[pid] = sent
        push(sent + max(0.0, draw(params.before_s)), "cpu", pid)

    boundaries = [phase]  # when blocks close: every block_time_s, each late by an exponential jitter

    def next_block(after: float) -> float:
        if not params.block_time_s:
            return after
        while boundaries[-1] < after:
            late = float(rng.exponential(params.block_jitter_s)) if params.block_jitter_s > 0 else 0.0
            boundaries.append(boundaries[-1] + params.block_time_s + late)
        return boundaries[bisect.bisect_left(boundaries, after)]

    def start_batch(lane: int, now: float) -> None:
        batch = lane_queue[lane][: params.max_batch]
        del lane_queue[lane][: params.max_batch]
        lane_busy[lane] = True
        lane_waiting[lane] += len(batch)
        batch_sizes.append(len(batch))
        nonlocal node_free_at
        work = params.send_s + params.send_per_mint_s * len(batch)
        if params.shared_node:
            node_free_at = max(now, node_free_at) + work
            sent_done = node_free_at
        else:
            sent_done = now + work
        push(sent_done, f"sent:{lane}", -1)
        accepted = next_block(sent_done) + float(rng.uniform(0, POLL_INTERVAL_S)) + params.accept_s
        for pid in batch:
            push(accepted, f"minted:{lane}", pid)

    for _ in range(concurrency):
        start_purchase(0.0)
    while events:
        now, _, kind, pid = heapq.heappop(events)
        if kind == "cpu":
            begin = max(now, cpu_free_at)
            cpu_free_at = begin + params.cpu_s
            push(cpu_free_at, "minting", pid)
        elif kind == "minting":
            minting_at[pid] = now
            lane = min(range(params.lanes), key=lambda i: len(lane_queue[i]) + lane_waiting[i])
            lane_queue[lane].append(pid)
            if not lane_busy[lane]:
                start_batch(lane, now)
        elif kind.startswith("sent:"):
            lane = int(kind.split(":")[1])
            lane_busy[lane] = False
            if lane_queue[lane]:
                start_batch(lane, now)
        elif kind.startswith("minted:"):
            lane = int(kind.split(":")[1])
            lane_waiting[lane] -= 1
            end = now + max(0.0, draw(params.after_s))
            push(end, "end", pid)
            if pid >= warmup:
                mint_s.append(now - minting_at[pid])
        elif kind == "end":
            if pid >= warmup:
                latency_s.append(now - sent_at[pid])
                ended_at.append(now)
            start_purchase(now)
    first_start = min(sent_at[pid] for pid in range(warmup, total)) if total > warmup else 0.0
    span = max(ended_at) - first_start if ended_at else float("nan")
    # Throughput as the bench measures it: completed purchases over the wall time they took.
    throughput = len(ended_at) / span if span > 0 else float("nan")
    return Prediction(concurrency, throughput, np.asarray(latency_s), np.asarray(mint_s),
                      np.asarray(batch_sizes[-max(1, len(batch_sizes) - warmup):], dtype=np.int64))


# -- measured runs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MeasuredLevel:
    """One concurrency level of a measured run (scenarios/calibration/queue_*.json)."""
    source: str
    block_time_s: float | None
    lanes: int
    concurrency: int
    wall_s: float
    orders: list[dict[str, Any]] = field(repr=False)

    @property
    def completed(self) -> list[dict[str, Any]]:
        return [order for order in self.orders if order.get("completed")]

    @property
    def failed(self) -> int:
        return len(self.orders) - len(self.completed)

    def legs(self, name: str) -> NDArray[np.float64]:
        return np.asarray([order[name] for order in self.completed], dtype=float)

    @property
    def latency_s(self) -> NDArray[np.float64]:
        return self.legs("end_to_end")

    @property
    def throughput_per_s(self) -> float:
        return len(self.completed) / self.wall_s

    def summary(self) -> dict[str, float]:
        latency = self.latency_s
        out = {"concurrency": float(self.concurrency), "throughput_per_s": self.throughput_per_s,
               "mean_s": float(latency.mean()), "mint_mean_s": float(self.legs("mint").mean()),
               "n": float(len(latency)), "failed": float(self.failed)}
        out.update({f"p{q}_s": float(np.percentile(latency, q)) for q in PERCENTILES})
        return out


def load_levels(data: dict[str, Any], source: str) -> list[MeasuredLevel]:
    network = data["network"]
    return [MeasuredLevel(source, network["starknet_block_time_s"], network["mint_lanes"], run["concurrency"],
                          run["wall_s"], run["orders"]) for run in data["runs"]]


def create_samples(level: MeasuredLevel) -> NDArray[np.float64]:
    """Creating the order: the buyer's whole cycle less send -> seen completed."""
    return np.asarray([max(0.0, o["finished_unix"] - o["started_unix"] - o["end_to_end"])
                       for o in level.completed], dtype=float)


def params_from(base: MeasuredLevel, cpu_s: float, send_s: float, send_per_mint_s: float, accept_s: float,
                block_jitter_s: float = 0.0, block_time_s: float | None = None,
                lanes: int | None = None) -> QueueParams:
    """The model's delays sampled from a run at concurrency 1 (`base`), with the fitted numbers."""
    before = base.legs("htlc_arrival") + base.legs("checks") - cpu_s
    after = base.legs("settle") + base.legs("notify")
    return QueueParams(block_time_s=base.block_time_s if block_time_s is None else block_time_s,
                       lanes=base.lanes if lanes is None else lanes, cpu_s=cpu_s, send_s=send_s,
                       send_per_mint_s=send_per_mint_s, accept_s=accept_s, block_jitter_s=block_jitter_s,
                       before_s=np.maximum(before, 0.0), after_s=after,
                       create_s=create_samples(base))


def _loss(params: QueueParams, levels: Sequence[MeasuredLevel], seed: int, purchases: int) -> float:
    """Squared relative errors of mean latency, mean mint leg and throughput over the levels."""
    loss = 0.0
    for level in levels:
        p = replace(params, block_time_s=level.block_time_s, lanes=level.lanes)
        pred = simulate(p, level.concurrency, purchases, seed=seed)
        measured = level.summary()
        for key in ("mean_s", "mint_mean_s", "throughput_per_s"):
            loss += (pred.summary()[key] / measured[key] - 1.0) ** 2
    return loss


def fit(base: MeasuredLevel, calibration: Sequence[MeasuredLevel], seed: int = 0, purchases: int = 400,
        cpu_grid: Iterable[float] | None = None, per_mint_grid: Iterable[float] | None = None,
        jitter_grid: Iterable[float] | None = None, send_s: float = SEND_FIXED_S) -> QueueParams:
    """Grid search for `cpu_s`, `send_per_mint_s` and `block_jitter_s` on the calibration levels only.
    `accept_s` follows from the base run's mint leg: what is left after the send and the wait for a block."""
    cpu_values = list(cpu_grid if cpu_grid is not None else np.round(np.arange(0.0, 1.01, 0.1), 3))
    per_mint_values = list(per_mint_grid if per_mint_grid is not None else np.round(np.arange(0.0, 1.21, 0.2), 3))
    jitter_values = list(jitter_grid if jitter_grid is not None else (0.0, 0.5, 1.0, 2.0))
    best: tuple[float, QueueParams] | None = None
    for per_mint_s, jitter_s in itertools.product(per_mint_values, jitter_values):
        accept_s = _accept_for(base, send_s, per_mint_s, jitter_s, seed, purchases)
        for cpu_s in cpu_values:
            params = params_from(base, cpu_s, send_s, per_mint_s, accept_s, jitter_s)
            loss = _loss(params, calibration, seed, purchases)
            if best is None or loss < best[0]:
                best = (loss, params)
    assert best is not None
    return best[1]


def _accept_for(base: MeasuredLevel, send_s: float, per_mint_s: float, jitter_s: float, seed: int,
                purchases: int) -> float:
    """The `accept_s` that makes the model's mean mint leg at concurrency 1 equal the base run's."""
    probe = params_from(base, 0.0, send_s, per_mint_s, 0.0, jitter_s)
    simulated = simulate(probe, base.concurrency, purchases, seed=seed).mint_s.mean()
    return max(0.0, float(base.legs("mint").mean() - simulated))


def ks_distance(a: NDArray[np.float64], b: NDArray[np.float64]) -> float:
    """The two-sample Kolmogorov-Smirnov statistic (largest gap between the empirical CDFs)."""
    grid = np.sort(np.concatenate([a, b]))
    cdf_a = np.searchsorted(np.sort(a), grid, side="right") / len(a)
    cdf_b = np.searchsorted(np.sort(b), grid, side="right") / len(b)
    return float(np.max(np.abs(cdf_a - cdf_b)))


def ks_critical(n: int, m: int, alpha: float = 0.05) -> float:
    """The two-sample KS distance above which equal distributions are rejected at `alpha` (asymptotic)."""
    return math.sqrt(-math.log(alpha / 2) / 2) * math.sqrt((n + m) / (n * m))


def validate(params: QueueParams, held_out: Sequence[MeasuredLevel], seed: int = 0,
             purchases: int = 2_000) -> list[dict[str, Any]]:
    """Prediction against each held-out level: throughput, mean and percentiles, relative errors, KS distance,
    and whether each measured percentile lies inside the model's 90 % band for a sample of the measured size."""
    rows = []
    for level in held_out:
        p = replace(params, block_time_s=level.block_time_s, lanes=level.lanes)
        pred = simulate(p, level.concurrency, purchases, seed=seed)
        measured, predicted = level.summary(), pred.summary()
        band = percentile_band(pred.latency_s, len(level.latency_s), seed=seed)
        row: dict[str, Any] = {"source": level.source, "block_time_s": level.block_time_s, "lanes": level.lanes,
                               "concurrency": level.concurrency, "n": len(level.latency_s),
                               "failed": level.failed, "measured": measured, "predicted": predicted,
                               "ks": ks_distance(level.latency_s, pred.latency_s),
                               "ks_critical_5pct": ks_critical(len(level.latency_s), len(pred.latency_s))}
        row["ks_rejects"] = row["ks"] > row["ks_critical_5pct"]
        row["relative_error"] = {key: predicted[key] / measured[key] - 1.0
                                 for key in ("throughput_per_s", "mean_s", "p50_s", "p95_s")}
        row["inside_band"] = {f"p{q}_s": band[q][0] <= measured[f"p{q}_s"] <= band[q][1] for q in (50, 95)}
        rows.append(row)
    return rows


def percentile_band(samples: NDArray[np.float64], n: int, seed: int = 0, draws: int = 400,
                    level: float = 0.90) -> dict[int, tuple[float, float]]:
    """Where a percentile of `n` purchases drawn from the model falls, `level` of the time (a bootstrap
    of the model's own latencies): the noise a measured percentile of n purchases has around the model."""
    rng = np.random.default_rng(seed)
    lo, hi = (1 - level) / 2 * 100, (1 + level) / 2 * 100
    picks = samples[rng.integers(len(samples), size=(draws, n))]
    out = {}
    for q in (50, 95):
        values = np.percentile(picks, q, axis=1)
        out[q] = (float(np.percentile(values, lo)), float(np.percentile(values, hi)))
    return out


def sweep(params: QueueParams, concurrencies: Sequence[int], lanes: Sequence[int],
          block_times: Sequence[float | None], purchases: int = 1_000, seed: int = 0) -> list[dict[str, float]]:
    """Predicted throughput and latency percentiles over concurrency x lanes x block time."""
    rows = []
    for block_time_s in block_times:
        for lane_count in lanes:
            for concurrency in concurrencies:
                p = replace(params, block_time_s=block_time_s, lanes=lane_count)
                summary = simulate(p, concurrency, purchases, seed=seed).summary()
                summary.update({"lanes": float(lane_count),
                                "block_time_s": float("nan") if block_time_s is None else float(block_time_s)})
                rows.append(summary)
    return rows


def capacity_per_s(params: QueueParams) -> dict[str, float]:
    """The stations' ceilings, in purchases per second: the serialised service work, and the lanes (full
    batches, sent one at a time by a shared node)."""
    lanes = 1 if params.shared_node else params.lanes
    return {"service_cpu": 1.0 / params.cpu_s if params.cpu_s > 0 else math.inf,
            "starknet_sends": lanes * params.max_batch
            / (params.send_s + params.send_per_mint_s * params.max_batch)}
