"""The queue model (scenarios/queueing.py): its constants follow the service's lanes, its simulation obeys
Little's law and the batching and block rules, its fit recovers known numbers, and the committed regtest runs
it is validated on are complete."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from scenarios import queueing
from scenarios.queue_bench import parse_levels

CALIBRATION = Path(__file__).resolve().parents[2] / "scenarios" / "calibration"


def params(**changes: object) -> queueing.QueueParams:
    base = queueing.QueueParams(block_time_s=None, lanes=1, cpu_s=0.0, send_s=0.1, send_per_mint_s=0.0,
                                accept_s=0.0, block_jitter_s=0.0, before_s=np.array([0.5]),
                                after_s=np.array([0.2]), create_s=np.array([0.1]))
    return replace(base, **changes)  # type: ignore[arg-type]


def test_constants_follow_the_service_lanes() -> None:
    from service.starknet import lanes

    assert queueing.MAX_BATCH == lanes.MAX_BATCH
    assert queueing.POLL_INTERVAL_S == lanes.POLL_INTERVAL_S


def test_one_buyer_without_blocks_is_the_sum_of_the_legs() -> None:
    prediction = queueing.simulate(params(), concurrency=1, purchases=50)
    assert prediction.latency_s == pytest.approx(np.full(50, 0.5 + 0.1 + 0.2), abs=queueing.POLL_INTERVAL_S)
    assert prediction.throughput_per_s == pytest.approx(1 / (0.1 + 0.8), rel=0.15)


def test_littles_law_in_a_closed_system() -> None:
    p = params(cpu_s=0.2, block_time_s=2.0, block_jitter_s=0.3)
    prediction = queueing.simulate(p, concurrency=8, purchases=2_000, seed=1)
    cycle = prediction.latency_s.mean() + 0.1  # the order's creation is part of the cycle
    assert prediction.throughput_per_s * cycle == pytest.approx(8, rel=0.05)
    assert prediction.throughput_per_s <= 1 / 0.2 + 1e-9  # the serialised work is a ceiling


def test_mints_batch_while_the_lane_sends_and_wait_for_a_block() -> None:
    p = params(send_s=1.0, block_time_s=2.0)
    prediction = queueing.simulate(p, concurrency=30, purchases=600, seed=2)
    assert prediction.batch_sizes.mean() > 1 and prediction.batch_sizes.max() <= queueing.MAX_BATCH
    alone = queueing.simulate(p, concurrency=1, purchases=200, seed=2)
    # one mint: sent after send_s, accepted at the next block boundary (at most one block later) plus the poll
    assert (alone.mint_s >= 1.0 - 1e-9).all() and (alone.mint_s <= 1.0 + 2.0 + queueing.POLL_INTERVAL_S).all()


def test_lanes_help_only_when_each_has_its_own_node() -> None:
    p = params(send_s=0.1, send_per_mint_s=0.3)
    shared = [queueing.simulate(replace(p, lanes=n), 16, 800, seed=3).throughput_per_s for n in (1, 4)]
    own = [queueing.simulate(replace(p, lanes=n, shared_node=False), 16, 800, seed=3).throughput_per_s
           for n in (1, 4)]
    assert shared[1] <= 1.05 * shared[0]  # smaller batches on one node: no gain, a little more overhead
    assert own[1] > 1.5 * own[0]
    assert queueing.capacity_per_s(replace(p, lanes=4, shared_node=False))["starknet_sends"] == pytest.approx(
        4 * queueing.capacity_per_s(replace(p, lanes=1))["starknet_sends"])


def _synthetic_level(p: queueing.QueueParams, concurrency: int, seed: int) -> queueing.MeasuredLevel:
    """A 'measured' level drawn from the model itself, with the legs the bench records."""
    prediction = queueing.simulate(p, concurrency, 150, seed=seed)
    orders = [{"completed": True, "end_to_end": float(total), "htlc_arrival": 0.5, "checks": 0.0,
               "mint": float(mint), "settle": 0.2, "notify": 0.0, "started_unix": 0.0,
               "finished_unix": float(total) + 0.1}
              for total, mint in zip(prediction.latency_s, prediction.mint_s, strict=False)]
    return queueing.MeasuredLevel("synthetic", p.block_time_s, p.lanes, concurrency,
                                  len(orders) / prediction.throughput_per_s, orders)


def test_fit_recovers_the_serialised_work() -> None:
    truth = params(cpu_s=0.4, block_time_s=2.0)
    base, loaded = _synthetic_level(truth, 1, 4), _synthetic_level(truth, 8, 5)
    fitted = queueing.fit(base, [base, loaded], purchases=150, cpu_grid=[0.0, 0.2, 0.4, 0.6],
                          per_mint_grid=[0.0], jitter_grid=[0.0])
    assert fitted.cpu_s == pytest.approx(0.4)


def test_ks_distance() -> None:
    a = np.linspace(0, 1, 50)
    assert queueing.ks_distance(a, a) == 0
    assert queueing.ks_distance(a, a + 10) == 1


def test_ks_critical_value() -> None:
    assert queueing.ks_critical(100, 100) == pytest.approx(1.358 * (2 / 100) ** 0.5, rel=1e-3)
    assert queueing.ks_critical(20, 2_000) > queueing.ks_critical(200, 2_000)


def test_parse_levels() -> None:
    assert parse_levels("1:16,4:24") == [(1, 16), (4, 24)]


@pytest.mark.parametrize("path", sorted(CALIBRATION.glob("queue_*.json")), ids=lambda p: p.name)
def test_measured_runs_are_complete_and_say_how_they_were_made(path: Path) -> None:
    data = json.loads(path.read_text())
    assert {"commit", "dirty", "machine", "date_utc", "n"} <= set(data["provenance"])
    levels = queueing.load_levels(data, path.name)
    assert sum(len(level.orders) for level in levels) == data["provenance"]["n"]
    for level in levels:
        assert level.failed == 0, f"{path.name} c={level.concurrency}: a purchase did not complete"
        summary = level.summary()
        assert summary["throughput_per_s"] > 0 and summary["p95_s"] >= summary["p50_s"] > 0
