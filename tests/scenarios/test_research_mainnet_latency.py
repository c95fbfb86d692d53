"""The mainnet latency model (scenarios/mainnet_latency.py): each leg does what its rule says, the rule's check
against the devnet can fail, the answer follows its figures, and the committed devnet runs are whole."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from scenarios import mainnet_latency as ml
from scenarios.model import LogNormal

N = 20_000
DEVNET_MINT = LogNormal(0.5, 0.2)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(2026)


def lightning(**overrides: float) -> dict[str, float]:
    """Central inputs with deterministic-looking Lightning knobs unless overridden."""
    return ml.central() | {"pathfinding_s": 0.0, "mpp_probability": 0.0} | overrides


def measurement(block_time_s: float, mint: np.ndarray, n: int = 200) -> ml.Measurement:
    legs = {name: np.full(n, 0.01) for name in ("htlc_arrival", "checks", "settle", "notify")}
    legs["mint"] = mint[:n]
    legs["end_to_end"] = sum(legs.values())
    return ml.Measurement(block_time_s, legs, [], {})


def test_every_input_has_a_range_and_a_source() -> None:
    for name, figure in ml.FIGURES.items():
        assert figure.low <= figure.central <= figure.high, name
        assert figure.source in ("assumption", "measured") or figure.source.startswith("https://"), name
        assert figure.says, name
    assert all(row["source"].startswith("https://") for row in ml.PUBLISHED)


def test_inclusion_waits_uniformly_up_to_one_block(rng: np.random.Generator) -> None:
    wait = ml.inclusion_wait(6.0, rng, N)
    assert wait.min() >= 0 and wait.max() <= 6.0
    assert wait.mean() == pytest.approx(3.0, rel=0.03)


def test_a_first_attempt_that_always_succeeds_takes_one_attempt(rng: np.random.Generator) -> None:
    leg = ml.lightning_leg(lightning(first_attempt_success=1.0, attempt_success_s=1.0), rng, N)
    assert not np.isnan(leg).any()
    assert np.median(leg) == pytest.approx(1.0, rel=0.03)  # the attempt's median, nothing added


def test_one_failure_then_success_adds_the_failed_attempt(rng: np.random.Generator) -> None:
    params = lightning(first_attempt_success=0.0, retry_success=1.0, attempt_success_s=1.0, attempt_fail_s=0.5)
    leg = ml.lightning_leg(params, rng, N)
    spread = np.exp(ml.ATTEMPT_SIGMA**2 / 2)  # mean over median of one attempt
    assert leg.mean() == pytest.approx(1.5 * spread, rel=0.03)


def test_a_payment_that_never_gets_through_times_out(rng: np.random.Generator) -> None:
    leg = ml.lightning_leg(lightning(first_attempt_success=0.0, retry_success=0.0), rng, 500)
    assert np.isnan(leg).all()


def test_mpp_waits_for_the_slowest_shard(rng: np.random.Generator) -> None:
    single = ml.lightning_leg(lightning(), rng, N)
    split = ml.lightning_leg(lightning(mpp_probability=1.0), rng, N)
    assert np.nanmean(split) > np.nanmean(single) * 1.2


def test_a_longer_block_time_means_a_longer_mint(rng: np.random.Generator) -> None:
    short = ml.starknet_leg(ml.central() | {"block_time_s": 2.0}, DEVNET_MINT, rng, N)
    long = ml.starknet_leg(ml.central() | {"block_time_s": 9.5}, DEVNET_MINT, rng, N)
    assert long.mean() - short.mean() == pytest.approx((9.5 - 2.0) / 2, rel=0.05)
    preconfirmed = ml.starknet_leg(ml.central(), DEVNET_MINT, rng, N, preconfirmed=True)
    assert preconfirmed.mean() < short.mean()


def test_the_rule_check_accepts_the_rule_and_rejects_a_wrong_block_time(rng: np.random.Generator) -> None:
    from_rule = ml.devnet_prediction(6.0, DEVNET_MINT, rng, 150)
    assert ml.validate_rule(measurement(6.0, from_rule, 150), DEVNET_MINT, rng)["ks"]["agrees"]
    wrong = ml.validate_rule(measurement(2.0, from_rule, 150), DEVNET_MINT, rng)  # measured at 6 s, called 2 s
    assert not wrong["ks"]["agrees"]  # the check has the power to fail


def test_landing_phase_sees_mints_land_at_block_close(rng: np.random.Generator) -> None:
    closes = 1_000 + 6.0 * rng.integers(0, 500, 200) + 0.3 + rng.uniform(0, 0.1, 200)  # a close, then the poll
    at_close = ml.landing_phase(ml.Measurement(6.0, {"end_to_end": np.zeros(200)}, [], {}, closes))
    assert at_close["share_within_0.5s"] > 0.95 and at_close["spread_p95_s"] < 0.2
    anywhere = ml.landing_phase(ml.Measurement(6.0, {"end_to_end": np.zeros(200)}, [], {},
                                               rng.uniform(1_000, 4_000, 200)))
    assert anywhere["share_within_0.5s"] < 0.3


def test_landing_phase_handles_a_close_at_the_clock_wrap(rng: np.random.Generator) -> None:
    closes = 6.0 * rng.integers(0, 500, 200) + rng.uniform(-0.1, 0.1, 200)  # around phase 0 = 6
    assert ml.landing_phase(ml.Measurement(6.0, {"end_to_end": np.zeros(200)}, [], {}, closes))[
        "share_within_0.5s"] > 0.95


def test_transfer_check_predicts_a_longer_block_time_from_a_shorter_one(rng: np.random.Generator) -> None:
    short = measurement(2.0, ml.devnet_prediction(2.0, DEVNET_MINT, rng, 150), 150)
    long = measurement(6.0, ml.devnet_prediction(6.0, DEVNET_MINT, rng, 150), 150)
    assert ml.transfer_check(short, long, rng)["ks"]["agrees"]
    too_long = measurement(6.0, ml.devnet_prediction(12.0, DEVNET_MINT, rng, 150), 150)
    assert not ml.transfer_check(short, too_long, rng)["ks"]["agrees"]
    with pytest.raises(ValueError, match="whole multiple"):
        ml.transfer_check(short, measurement(5.0, long.legs["mint"], 150), rng)


def test_overhead_read_from_a_run_moves_the_per_mint_time(rng: np.random.Generator) -> None:
    run = measurement(6.0, ml.devnet_prediction(6.0, ml.shifted(DEVNET_MINT, 1.5), rng, 2_000), 2_000)
    assert ml.block_mode_overhead_s(run) == pytest.approx(1.5, abs=0.1)
    assert ml.shifted(DEVNET_MINT, 1.5).mean() == pytest.approx(1.5)


def test_mint_overhead_figure_spans_the_runs_it_was_read_from(rng: np.random.Generator) -> None:
    runs = [measurement(t, ml.devnet_prediction(t, ml.shifted(DEVNET_MINT, o), rng, 2_000), 2_000)
            for t, o in ((6.0, 1.4), (2.0, 2.2))]
    figure = ml.mint_overhead_figure(runs, DEVNET_MINT)
    assert figure.low == pytest.approx(DEVNET_MINT.mean()) and figure.high == pytest.approx(2.2, abs=0.1)
    assert figure.central == pytest.approx(1.8, abs=0.1) and figure.source == "measured"
    slow = ml.starknet_leg(ml.central() | {"mint_overhead_s": 2.0}, DEVNET_MINT, rng, N)
    fast = ml.starknet_leg(ml.central(), DEVNET_MINT, rng, N)
    assert slow.mean() - fast.mean() == pytest.approx(2.0 - DEVNET_MINT.mean(), abs=0.1)


def test_summary_counts_timeouts_apart_and_gives_intervals(rng: np.random.Generator) -> None:
    latency = np.concatenate([rng.uniform(1, 9, 1_000), np.full(10, np.nan)])
    summary = ml.summarise(latency, rng)
    assert summary["timed_out"][0] == pytest.approx(10 / 1010)
    for key in ("mean_s", "p50_s", "p95_s", "p_under_5s"):
        value, low, high = summary[key]
        assert low <= value <= high, key
    assert summary["p_under_5s"][0] == pytest.approx(0.5, abs=0.05)


@pytest.mark.parametrize(("means", "verdict"), [([3.0, 4.0, 4.5], "yes"), ([6.0, 7.0], "no"),
                                                ([3.0, 4.0, 6.0, 7.0], "uncertain")])
def test_answer_says_yes_only_when_even_the_pessimistic_mean_is_under(means: list[float], verdict: str) -> None:
    result = ml.answer((4.0, 3.9, 4.1), np.array(means))
    assert result["verdict"] == verdict


def test_tornado_moves_the_mean_the_right_way(rng: np.random.Generator) -> None:
    service = measurement(6.0, np.full(50, 3.0), 50)
    rows = {row["input"]: row for row in ml.tornado(service, DEVNET_MINT, rng, 4_000)}
    assert set(rows) == set(ml.FIGURES)
    assert rows["block_time_s"]["mean_at_high_s"] > rows["block_time_s"]["mean_at_low_s"]
    assert rows["first_attempt_success"]["mean_at_high_s"] < rows["first_attempt_success"]["mean_at_low_s"]


def test_load_measurement_keeps_failed_orders_apart(tmp_path: Path) -> None:
    leg = {"htlc_arrival": 0.2, "checks": 0.01, "mint": 3.0, "settle": 0.02, "notify": 0.1, "end_to_end": 3.4}
    data = {"network": {"starknet_block_time_s": 6.0}, "provenance": {"n": 2},
            "orders": [{"completed": True, **leg}, {"completed": False, "error": "timeout"}]}
    path = tmp_path / "run.json"
    path.write_text(json.dumps(data))
    loaded = ml.load_measurement(path)
    assert loaded.n == 1 and loaded.block_time_s == 6.0 and loaded.failed == [{"completed": False, "error": "timeout"}]


@pytest.mark.parametrize(("name", "block_time_s", "at_least"), [("mainnet_block6.json", 6.0, 100),
                                                                 ("mainnet_block2.json", 2.0, 60)])
def test_committed_devnet_runs_are_whole(name: str, block_time_s: float, at_least: int) -> None:
    path = ml.CALIBRATION_DIR / name
    if not path.exists():
        pytest.skip(f"{name} not measured yet (python -m scenarios.mainnet_latency)")
    run = ml.load_measurement(path)
    assert run.block_time_s == block_time_s and run.failed == [] and run.n >= at_least
    assert run.provenance["commit"] and run.provenance["seed"] is not None
    assert len(run.minted_unix) == run.n
    assert ml.landing_phase(run)["share_within_0.5s"] > 0.9  # mints land when a block closes
