"""Notebook 8 (quote shopping) runs top to bottom from a fresh kernel, small, into its own output folder, and the
figures it printed (results.json) agree with the model and with each other. The same approach as
tests/notebooks/test_notebooks.py."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from scenarios.quote_shopping import RateLimits, rate_per_hour
from service.config import Settings
from tests.notebooks.support import README_PLOTS, execute

NAME = "08_quote_shopping.ipynb"
N = 400
FIGURES = {"quote_shopping_k.png", "quote_shopping_grid.png", "quote_shopping_atomiq.png"}


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    readme_plot = README_PLOTS / "quote_shopping_grid.png"
    before = readme_plot.stat().st_mtime_ns if readme_plot.exists() else None
    with pytest.MonkeyPatch.context() as monkeypatch:
        report = execute(NAME, N, tmp_path_factory.mktemp("quote_shopping"), monkeypatch)
    assert set(report["figures"]) >= FIGURES
    assert (readme_plot.stat().st_mtime_ns if readme_plot.exists() else None) == before  # README untouched
    return report


def test_it_reads_the_services_limits(results: dict[str, Any]) -> None:
    settings = Settings.model_fields
    defaults = results["defaults"]
    for name in ("quote_lifetime_s", "max_price_drop_bps", "spread_bps", "rate_limit_orders_per_ip"):
        assert defaults[name] == str(settings[name].default)
    answer = results["answer"]
    assert answer["quotes_per_hour_one_ip"] == rate_per_hour(settings["rate_limit_orders_per_ip"].default)
    assert answer["k_cap_one_ip"] == RateLimits.from_settings().k_cap(settings["quote_lifetime_s"].default, 10.0)


def test_the_printed_answer_is_the_grids(results: dict[str, Any]) -> None:
    lifetimes, bounds = results["lifetimes_s"], results["bounds_bps"]
    i = lifetimes.index(int(results["defaults"]["quote_lifetime_s"]))
    j = bounds.index(int(results["defaults"]["max_price_drop_bps"]))
    for regime, row in results["answer"]["per_order_bps"].items():
        assert row["best_of_k"] == results["heat_best_of_k_bps"][regime][i][j]
        assert row["single"] == results["heat_single_bps"][regime][i][j]
    assert set(results["regimes"]) == {"calm", "typical", "stressed"}


def test_more_quotes_are_a_bigger_option(results: dict[str, Any]) -> None:
    for key, rows in results["by_k"].items():  # powers of two are nested sets of quotes: hindsight can only grow
        nested = [row["hindsight_bps"] for row in rows if row["k"] & (row["k"] - 1) == 0]
        assert all(b >= a - 1e-9 for a, b in itertools.pairwise(nested)), key


def test_closed_forms_agree_with_monte_carlo(results: dict[str, Any]) -> None:
    for check in results["closed_form_checks"]:
        assert abs(check["monte_carlo_bps"] - check["closed_form_bps"]) < \
            3 * check["se_bps"] + 0.10 * check["closed_form_bps"], check


def test_recommendation_and_atomiq_comparison(results: dict[str, Any]) -> None:
    answer = results["answer"]
    assert isinstance(answer["recommend_change"], bool) and answer["recommended_bound_bps"] in results["bounds_bps"]
    if answer["recommend_change"]:
        assert answer["completion_cost"] <= 0.005 + 1e-12 and answer["cut_in_extraction"] >= 0.25
    for rows in results["atomiq"].values():
        assert set(rows) == {"VOLTA defaults", "VOLTA, no bound", "Atomiq LP, 90 s", "Atomiq LP, secret withheld"}
        assert rows["Atomiq LP, 90 s"]["k"] == 6
    assert all(row["protocol_usd_per_hour"] >= 0 for row in results["per_hour"].values())
