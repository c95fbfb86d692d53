"""A bad scenario file is refused with every problem named by its field; the catalogue is valid."""

from __future__ import annotations

from pathlib import Path

import pytest

from scenarios.cli import run_cli
from scenarios.invariants import check_all, expected_deltas
from scenarios.plan import plan_orders, price_path
from scenarios.schema import CHECKPOINT_STATUS, ScenarioError, load_scenario, parse_scenario
from service.domain.pricing import VUSD_DECIMALS
from service.domain.settlement import Checkpoint

CATALOGUE = sorted((Path(__file__).resolve().parents[2] / "scenarios" / "catalogue").glob("*.yaml"))
MINIMAL = {"name": "t", "purchases": [{"vusd_amount": "25.00"}]}


def problems(data: object) -> str:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(data, "t.yaml")
    return str(caught.value)


@pytest.mark.parametrize("path", CATALOGUE, ids=lambda path: path.stem)
def test_catalogue_is_valid(path: Path) -> None:
    assert load_scenario(path).name == path.stem


def test_catalogue_covers_the_issue() -> None:
    names = {path.stem for path in CATALOGUE}
    assert {"happy_path", "slippage_beyond_bound", "slow_payer", "double_pay", "concurrent_burst",
            "crash_in_minting", "crash_in_minted", "node_restart", "devnet_restart"} <= names


def test_every_problem_is_named_by_its_field() -> None:
    message = problems({"name": "Bad Name", "purchases": [
        {"vusd_amount": "25", "payer": {"behaviour": "sometimes"}, "adress": "0x1"}]})
    assert "t.yaml: 3 problem(s)" in message
    assert "name: String should match pattern" in message
    assert "purchases.0.payer.behaviour: Input should be 'pays', 'pays_late'" in message
    assert "purchases.0.adress: Extra inputs are not permitted" in message


@pytest.mark.parametrize(("data", "expected"), [
    ({"name": "t", "purchases": []}, "purchases: List should have at least 1 item"),
    ({"name": "t", "purchases": [{"count": 1}]}, "give exactly one of vusd_amount or amount_sat"),
    ({"name": "t", "purchases": [{"vusd_amount": "1", "amount_sat": 5}]}, "give exactly one of"),
    ({"name": "t", "purchases": [{"vusd_amount": "1", "address": "bob"}]}, "is not \"0x<hex>\", \"user N\""),
    ({**MINIMAL, "faults": [{"kind": "kill_service"}]}, "kill_service needs at_checkpoint: one of payment_held, "),
    ({**MINIMAL, "faults": [{"kind": "kill_service", "at_checkpoint": "signing"}]},
     "faults.0.at_checkpoint: Input should be 'payment_held', 'minting', 'mint_signed'"),
    ({**MINIMAL, "faults": [{"kind": "restart_devnet", "at_s": 1, "in_state": "minting"}]},
     "either at_s or at_checkpoint"),
    ({**MINIMAL, "faults": [{"kind": "kill_service", "at_checkpoint": "minting", "in_state": "minting"}]},
     "give at_checkpoint or its old name in_state, not both"),
    ({**MINIMAL, "faults": [{"kind": "restart_devnet", "at_s": 1, "until_s": 3}]},
     "until_s and for_s only apply to pause_vault, proxy_latency, proxy_outage"),
    ({**MINIMAL, "faults": [{"kind": "pause_vault", "in_state": "minting"}]}, "pause_vault is triggered by at_s"),
    ({**MINIMAL, "faults": [{"kind": "restart_merchant", "in_state": "minting", "order": 3}]},
     "faults.0.order is 3 but the scenario has 1 orders"),
    ({**MINIMAL, "service": {"quote_lifetime_s": 2}}, "service.quote_lifetime_s: Input should be greater than or"),
    ({**MINIMAL, "price": {"moves": [{"at_s": 1, "price": 1}], "random_walk": {"volatility": 1, "duration_s": 5}}},
     "either fixed moves or a random_walk"),
    ([1, 2], "a scenario is a mapping"),
])
def test_bad_files_say_what_is_wrong(data: object, expected: str) -> None:
    assert expected in problems(data)


def test_unreadable_and_invalid_yaml(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n")
    with pytest.raises(ScenarioError, match="not valid YAML"):
        load_scenario(broken)


def test_cli_check_reports_a_bad_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\npurchases:\n  - vusd_amount: -3\n")
    assert run_cli(["check", str(bad)]) == 2
    assert "purchases.0.vusd_amount: Input should be greater than 0" in capsys.readouterr().out
    assert run_cli(["check", *map(str, CATALOGUE)]) == 0


def test_orders_are_planned_on_one_clock() -> None:
    scenario = parse_scenario({"name": "t", "purchases": [
        {"count": 3, "start_s": 2, "spacing_s": 1.5, "vusd_amount": "1", "address": "user 1"},
        {"vusd_amount": "1"}]})
    runs = plan_orders(scenario, ["0xa", "0xb"])
    assert [run.planned_s for run in runs] == [2, 3.5, 5, 0]
    assert [run.address for run in runs[:3]] == ["0xb"] * 3
    with pytest.raises(ScenarioError, match="user 0 … user 0"):
        plan_orders(scenario, ["0xa"])


def test_random_walk_is_repeatable() -> None:
    walk = {"name": "t", "purchases": [{"vusd_amount": "1"}],
            "price": {"random_walk": {"volatility": 0.6, "step_s": 2, "duration_s": 20, "seed": 3}}}
    first, again = price_path(parse_scenario(walk)), price_path(parse_scenario(walk))
    assert first == again and len(first) == 10 and first[0][0] == 2


def test_invariants_catch_a_double_mint_and_lost_sats() -> None:
    paid = {"node": "payer", "status": "SUCCEEDED", "value_msat": 1000, "fee_msat": 1}
    order = {"index": 0, "group": 0, "order_id": "o", "status": "completed", "address": "0xa", "vusd_amount": "1",
             "invoice_state": "SETTLED", "mints": 2, "payments": [paid]}
    result = {"orders": [order], "mint_events": {"ab" * 32: 2},
              "balances": {"before": {"payer": 5000, "router": 0, "merchant": 0},
                           "after": {"payer": 3000, "router": 1, "merchant": 1000}},
              "vusd": {"0xa": {"before": "0", "after": str(2 * 10**VUSD_DECIMALS)}}}
    assert expected_deltas([order]) == {"payer": -1001, "router": 1, "merchant": 1000}
    failed = {check["name"] for check in check_all(result) if not check["ok"]}
    assert failed == {"every paid HTLC settled with one mint or cancelled with none", "no payment hash minted twice",
                      "sats accounted for on every node", "VUSD grew by exactly the completed orders"}


# -- faults: checkpoints, proxies, the network a scenario asks for ---------------------------------------------

def fault(**fields: object) -> dict[str, object]:
    return {**MINIMAL, "faults": [fields]}


@pytest.mark.parametrize("checkpoint", list(Checkpoint))
def test_the_service_can_be_killed_at_every_checkpoint(checkpoint: Checkpoint) -> None:
    scenario = parse_scenario(fault(kind="kill_service", at_checkpoint=str(checkpoint)))
    assert scenario.checkpoint() is checkpoint and scenario.kills_service()
    assert checkpoint in CHECKPOINT_STATUS  # a trigger knows the order's status there


def test_in_state_is_still_read_as_at_checkpoint() -> None:
    scenario = parse_scenario(fault(kind="kill_service", in_state="minting", order=0))
    assert scenario.faults[0].at_checkpoint is Checkpoint.MINTING
    assert scenario.model_dump(mode="json")["faults"][0]["at_checkpoint"] == "minting"


@pytest.mark.parametrize(("faults", "expected"), [
    ([{"kind": "kill_service", "at_checkpoint": "minting"}, {"kind": "restart_devnet", "at_checkpoint": "minted"}],
     "faults at a checkpoint must all name the same one (the service pauses at one checkpoint per run), not minted,"),
    ([{"kind": "kill_service", "at_checkpoint": "minting"}, {"kind": "kill_service", "at_checkpoint": "minting"}],
     "one kill_service per scenario"),
])
def test_one_pause_per_run(faults: list[dict[str, object]], expected: str) -> None:
    assert expected in problems({**MINIMAL, "faults": faults})


@pytest.mark.parametrize(("fields", "expected"), [
    ({"kind": "proxy_latency", "latency_ms": 100, "at_s": 0}, "proxy_latency needs proxy: one of devnet_rpc, merchant"),
    ({"kind": "proxy_outage", "proxy": "btcd", "at_s": 0}, "proxy_outage needs proxy: one of devnet_rpc, merchant_lnd"),
    ({"kind": "proxy_latency", "proxy": "devnet_rpc", "at_s": 0}, "latency_ms is needed by proxy_latency"),
    ({"kind": "proxy_outage", "proxy": "devnet_rpc", "latency_ms": 5, "at_s": 0}, "latency_ms is needed by proxy_l"),
    ({"kind": "proxy_outage", "proxy": "devnet_rpc", "stream": "upstream", "at_s": 0}, "stream only applies to"),
    ({"kind": "proxy_latency", "proxy": "devnet_rpc", "latency_ms": 5, "stream": "sideways", "at_s": 0},
     "faults.0.stream: Input should be 'upstream' or 'downstream'"),
    ({"kind": "restart_merchant", "proxy": "merchant_lnd", "at_s": 0}, "proxy only applies to proxy_latency and"),
    ({"kind": "proxy_outage", "proxy": "merchant_lnd", "at_checkpoint": "minted", "until_s": 30},
     "a fault triggered at_checkpoint lasts for_s seconds (or to the end), not until_s"),
    ({"kind": "proxy_outage", "proxy": "merchant_lnd", "at_s": 10, "until_s": 10}, "until_s (10.0) must come after"),
    ({"kind": "proxy_outage", "proxy": "merchant_lnd", "at_s": 1, "until_s": 9, "for_s": 3}, "until_s or for_s, not"),
    ({"kind": "kill_service", "at_checkpoint": "minted", "for_s": 3}, "until_s and for_s only apply to pause_vault"),
])
def test_bad_faults_say_what_is_wrong(fields: dict[str, object], expected: str) -> None:
    assert expected in problems(fault(**fields))


def test_proxy_faults_need_the_fault_proxy() -> None:
    latency = parse_scenario(fault(kind="proxy_latency", proxy="devnet_rpc", latency_ms=10_000, stream="upstream",
                                   at_checkpoint="mint_signed", for_s=20))
    assert latency.needs_fault_proxy() and latency.checkpoint() is Checkpoint.MINT_SIGNED
    assert not latency.kills_service()
    outage = parse_scenario(fault(kind="proxy_outage", proxy="merchant_lnd", at_s=2, until_s=12))
    assert outage.needs_fault_proxy() and outage.checkpoint() is None
    assert not parse_scenario(MINIMAL).needs_fault_proxy()
    assert parse_scenario({**MINIMAL, "fault_proxy": True}).needs_fault_proxy()


def test_service_mint_budget_settings_and_their_bound() -> None:
    service = {"mint_timeout_s": 4, "mint_answer_margin_s": 4, "max_hold_s": 20, "void_unseen_mint_after_s": 6}
    env = parse_scenario({**MINIMAL, "service": service}).service.env()
    assert env == {"VOLTA_MINT_TIMEOUT_S": "4.0", "VOLTA_MINT_ANSWER_MARGIN_S": "4.0", "VOLTA_MAX_HOLD_S": "20",
                   "VOLTA_VOID_UNSEEN_MINT_AFTER_S": "6.0"}
    # The service's defaults (30 s + 30 s) fill in what the scenario leaves out.
    assert "max_hold_s (20.0) must be at least twice mint_timeout_s (30.0) + mint_answer_margin_s (30.0)" in problems(
        {**MINIMAL, "service": {"max_hold_s": 20}})
    assert "max_hold_s (120.0) must be at least twice mint_timeout_s (50.0)" in problems(
        {**MINIMAL, "service": {"mint_timeout_s": 50}})


@pytest.mark.parametrize(("block_time", "expected"), [
    (0, "starknet.block_time: Input should be greater than or equal to 1"),
    (1.5, "starknet.block_time: Input should be a valid integer"),
])
def test_block_time_is_whole_seconds(block_time: float, expected: str) -> None:
    assert expected in problems({**MINIMAL, "starknet": {"block_time": block_time}})
    assert parse_scenario({**MINIMAL, "starknet": {"block_time": 2}}).starknet.block_time == 2
