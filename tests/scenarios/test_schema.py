"""A bad scenario file is refused with every problem named by its field; the catalogue is valid."""

from __future__ import annotations

from pathlib import Path

import pytest

from scenarios.invariants import check_all, expected_deltas
from scenarios.runner import plan_orders, price_path, run_cli
from scenarios.schema import ScenarioError, load_scenario, parse_scenario

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
    ({**MINIMAL, "faults": [{"kind": "kill_service"}]}, "kill_service needs in_state: minting or minted"),
    ({**MINIMAL, "faults": [{"kind": "kill_service", "in_state": "payment_held"}]}, "needs in_state: minting"),
    ({**MINIMAL, "faults": [{"kind": "restart_devnet", "at_s": 1, "in_state": "minting"}]}, "either at_s or in_state"),
    ({**MINIMAL, "faults": [{"kind": "restart_devnet", "at_s": 1, "until_s": 3}]}, "until_s only applies"),
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
              "vusd": {"0xa": {"before": "0", "after": str(2 * 10**18)}}}
    assert expected_deltas([order]) == {"payer": -1001, "router": 1, "merchant": 1000}
    failed = {check["name"] for check in check_all(result) if not check["ok"]}
    assert failed == {"every paid HTLC settled with one mint or cancelled with none", "no payment hash minted twice",
                      "sats accounted for on every node", "VUSD grew by exactly the completed orders"}
