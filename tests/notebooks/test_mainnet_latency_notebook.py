"""Notebook 7 (mainnet latency) runs top to bottom from a fresh kernel at small N, without a network (its devnet
runs are committed), into its own folder; the figures it printed (results.json) are checked against each other.
The same approach as tests/notebooks/test_notebooks.py."""

from __future__ import annotations

from typing import Any

import pytest

from tests.notebooks.support import execute

NAME = "07_mainnet_latency.ipynb"
N = 4_000


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    monkeypatch = pytest.MonkeyPatch()
    try:
        return execute(NAME, N, tmp_path_factory.mktemp("07_mainnet_latency"), monkeypatch)
    finally:
        monkeypatch.undo()


def test_every_measured_purchase_completed_and_mints_land_when_blocks_close(results: dict[str, Any]) -> None:
    assert set(results["failed"]) == {"6", "2"} and all(count == 0 for count in results["failed"].values())
    for block_time, phase in results["landing_phase"].items():
        assert phase["share_within_0.5s"] > 0.9 > 3 * phase["share_if_uniform"], block_time
    # the checks of the rule's numbers are printed with their KS figures, whatever they say
    assert results["transfer_check"]["ks"]["n_observed"] == 100
    assert len(results["validation"]) == 4
    assert all(0 <= check["ks"]["p_value"] <= 1 for check in results["validation"].values())
    overhead = results["inputs"]["mint_overhead_s"]
    assert overhead["source"] == "measured"
    assert overhead["low"] < min(results["block_mode_overhead_s"].values()) <= overhead["high"]


def test_the_summary_is_consistent(results: dict[str, Any]) -> None:
    summary = results["summary"]
    for key in ("mean_s", "p50_s", "p95_s", "p_under_5s"):
        value, low, high = summary[key]
        assert low <= value <= high, key
    assert summary["p50_s"][0] < summary["p95_s"][0] and 0 < summary["p_under_5s"][0] < 1
    assert results["preconfirmed"]["mean_s"][0] < summary["mean_s"][0]  # no wait for the block


def test_the_answer_follows_from_the_uncertainty_it_printed(results: dict[str, Any]) -> None:
    low, _, high = results["uncertainty"]["mean_s_p5_p50_p95"]
    answer = results["answer"]
    assert answer["mean_90pct_range_over_inputs_s"] == pytest.approx([low, high])
    expected = "yes" if high < 5 else "no" if low >= 5 else "uncertain"
    assert answer["verdict"] == expected
    assert answer["mean_at_central_inputs_s"] == pytest.approx(results["summary"]["mean_s"][0])


def test_sensitivity_ranks_the_inputs_and_moves_the_right_way(results: dict[str, Any]) -> None:
    rows = results["tornado"]
    assert [row["swing_s"] for row in rows] == sorted((row["swing_s"] for row in rows), reverse=True)
    block = next(row for row in rows if row["input"] == "block_time_s")
    assert block["mean_at_high_s"] > block["mean_at_low_s"]
    grid = results["grid"]["mean_s"]
    assert all(row == sorted(row) for row in grid)  # longer blocks, longer purchases (each attempt time)
    assert all(source in ("assumption", "measured") or source.startswith("https://")
               for source in (figure["source"] for figure in results["inputs"].values()))


def test_the_pessimistic_lightning_corner_is_near_the_published_median(results: dict[str, Any]) -> None:
    published, pessimistic = results["published_median_payment_s"], results["lightning"]["pessimistic"]["p50_s"]
    assert published / 2 < pessimistic < published * 2
    assert results["lightning"]["optimistic"]["mean_s"] < results["lightning"]["central"]["mean_s"]
    assert {"mainnet_rule_vs_devnet.png", "mainnet_latency.png"} <= set(results["figures"])
