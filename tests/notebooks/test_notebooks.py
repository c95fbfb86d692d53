"""Every notebook runs top to bottom from a fresh kernel, small (VOLTA_NOTEBOOK_N), into its own output folder;
the figures it reports (results.json) are checked, with the provenance that says how they were made."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from harness.network import Network
from tests.notebooks.support import NOTEBOOKS, README_PLOTS, execute


def test_outputs_are_not_committed() -> None:
    for path in NOTEBOOKS.glob("*.ipynb"):
        notebook = nbformat.read(path, as_version=4)
        assert not any(cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"), path.name


def test_bridge_options_answer_matches_its_figures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The figures notebook 4 wrote are the model's at its seed and N, its answer follows from them, and the
    README's plot is left alone."""
    from scenarios import bridges

    readme_plot = README_PLOTS / "bridge_options.png"
    before = readme_plot.stat().st_mtime_ns if readme_plot.exists() else None
    n = 2_000
    report = json.loads(json.dumps(bridges.simulate(n, 0)))  # through JSON, as the notebook wrote it
    results = execute("04_bridge_options.ipynb", n, tmp_path, monkeypatch)
    summary, answer = results["summary"], results["answer"]
    assert summary == report
    assert results["figures"] == ["bridge_options.png", "bridge_tornado.png"]
    assert results["tornado"] == json.loads(json.dumps({d.key: bridges.tornado(d) for d in bridges.DESIGNS}))
    assert results["parameters"] == json.loads(json.dumps(bridges.parameter_table()))
    costs = {key: row["cost_bps"][0] for key, row in summary.items()}
    assert answer["ranking_by_cost"] == sorted(costs, key=costs.__getitem__)
    assert answer["cheapest_cost_bps"] == min(costs.values())
    times = {key: row["time_s"][0] for key, row in summary.items()}
    assert answer["ranking_by_time"] == sorted(times, key=times.__getitem__)
    assert answer["hold_invoice_top_driver"] == results["tornado"]["hold_invoice"][0]["parameter"]
    assert set(answer["refund_unbounded"]) == {"settle_then_mint", "custodial"}
    assert answer["stablecoin_on_starknet_without_dex_or_bridge"] == ["hold_invoice", "settle_then_mint", "custodial"]
    assert (readme_plot.stat().st_mtime_ns if readme_plot.exists() else None) == before  # README untouched


@pytest.fixture
def on_the_network(network: Network, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The notebook finds the session's network as a researcher's would: through a state.json file."""
    state = tmp_path / "state.json"
    state.write_text(json.dumps(network.state()))
    monkeypatch.setenv("VOLTA_REGTEST_STATE", str(state))


@pytest.mark.regtest
@pytest.mark.usefixtures("on_the_network")
def test_payment_latency_notebook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    results = execute("01_payment_latency.ipynb", 4, tmp_path / "out", monkeypatch)
    assert results["failed"] == []  # every purchase in the sample completed
    assert results["one at a time"]["n"] == 4 and results["one at a time"]["end_to_end_mean_s"] > 0


@pytest.mark.regtest
@pytest.mark.usefixtures("on_the_network")
def test_attacks_notebook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    results = execute("03_double_pay_replay.ipynb", 1, tmp_path / "out", monkeypatch)
    assert all(row[-1] == "yes" for row in results["rows"])  # every invariant held
    assert all(r["outcome"].startswith("refused: PAYMENT_ALREADY_USED") for r in results["replays"])


def test_timeouts_slippage_notebook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    results = execute("02_timeouts_slippage.ipynb", 300, tmp_path, monkeypatch)
    assert results["recommended"]["quote_lifetime_s"] in results["lifetimes_s"]
    completion = results["grids"]["completion"]
    assert all(0 <= rate <= 1 for row in completion for rate in row)
    answer = results["answer"]  # the printed answer: lifetimes move completion far more than the bound does
    assert answer["completion_range_over_lifetimes"] > 2 * answer["largest_completion_range_over_bounds"]
    assert set(results["by_regime"]) == {"calm", "typical", "stressed"} and "stable" in results


def test_market_risk_notebook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    results = execute("05_market_risk.ipynb", 1_500, tmp_path, monkeypatch)
    regimes = results["regimes"]
    assert regimes["calm"] < regimes["typical"] < regimes["stressed"]
    assert results["simulated_5min_excess_kurtosis"] > 2  # fat tails survive to the quote's horizon
    assert results["optima"]["typical/stalled"]["interior"]
    at_defaults = results["at_defaults"]
    assert at_defaults["stressed/stalled"]["cvar99_bps"] >= at_defaults["calm/stalled"]["cvar99_bps"]
    for key, rows in results["free_option_by_lifetime"].items():
        assert all(row["hindsight_bps"] >= row["optimal_bps"] - 1e-9 for row in rows), key
    assert {"market_risk.png", "free_option.png"} <= set(results["figures"])


def test_griefing_capacity_notebook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    results = execute("06_griefing_capacity.ipynb", 200, tmp_path, monkeypatch)
    assert results["failed"] == {}  # every measured purchase in the committed runs completed
    roles = [row["role"] for row in results["validation"]]
    assert roles.count("calibration") == 2 and roles.count("held out") >= 3  # judged on runs it was not fitted on
    assert all(row["measured"]["throughput_per_s"] > 0 and row["predicted"]["p95_s"] > 0
               for row in results["validation"])
    jam = results["attacks"]["slot jamming"]
    assert jam["fees_sat"] == 0 and jam["htlcs"] == results["lightning_facts"]["max_accepted_htlcs"]
    assert results["rate_limit_bounds"]["orders_per_ip_per_hour"] > 0
    probe = results["jam_probe"]  # the regtest check of the premises: every shard held, the order never paid
    assert probe["htlcs_held_on_router_to_merchant"] == probe["parts"]
    assert probe["order_status_while_held"] == "awaiting_payment" and probe["shard_failure_codes"] == ["MPP_TIMEOUT"]
    assert {"queue_validation.png", "queue_sweep.png", "griefing_cost.png"} <= set(results["figures"])
