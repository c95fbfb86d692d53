"""Catalogue scenarios against the real network: every invariant and every expectation holds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.network import Network
from scenarios.runner import run_scenario
from scenarios.schema import parse_scenario
from scenarios.target import NetworkTarget

pytestmark = pytest.mark.regtest
CATALOGUE = Path(__file__).resolve().parents[2] / "scenarios" / "catalogue"


def failures(result: dict) -> list[str]:
    checks = result["summary"]["invariants"] + result["summary"]["expectations"]
    return [f"{check['name']}: {check['detail']}" for check in checks if not check["ok"]]


# A few seconds each on this machine; the restarts (node, devnet) take about a minute and run from the CLI.
@pytest.mark.parametrize("name", ["happy_path", "slippage_beyond_bound", "price_drop_beyond_operator_bound",
                                  "crash_in_minting"])
def test_catalogue_scenario_keeps_every_invariant(network: Network, tmp_path: Path, name: str) -> None:
    out = tmp_path / f"{name}.json"
    result = run_scenario(CATALOGUE / f"{name}.yaml", NetworkTarget(network), out)
    assert not failures(result), json.dumps(result["summary"], indent=2)
    written = json.loads(out.read_text())
    assert written["summary"]["ok"] is True
    for order in written["orders"]:
        statuses = [event["status"] for event in order["timeline"]]
        assert statuses[0] == "awaiting_payment" and statuses[-1] == order["status"]


def test_double_pay_records_the_refused_second_payment(network: Network) -> None:
    result = run_scenario(CATALOGUE / "double_pay.yaml", NetworkTarget(network))
    assert not failures(result), json.dumps(result["summary"], indent=2)
    for order in result["orders"]:
        outcomes = sorted(payment["status"] for payment in order["payments"])
        assert outcomes == ["FAILED", "SUCCEEDED"], order["payments"]
        assert order["mints"] == 1


def test_a_kill_between_signing_and_sending_is_proven_by_the_service_log(network: Network) -> None:
    """About 20 s: the service waits to void the unsent mint's nonce before it mints again."""
    result = run_scenario(CATALOGUE / "kill_at_mint_signed.yaml", NetworkTarget(network))
    assert not failures(result), json.dumps(result["summary"], indent=2)
    [kill] = result["faults"]
    assert kill["triggered"] and kill["killed_pid"] and kill["order_status"] == "minting"
    assert kill["pause_line"].endswith("fault injection: pausing 120s at mint_signed")


def test_a_kill_that_never_lands_fails_the_run(network: Network) -> None:
    """The order completes, so the service never reaches `refunded`: the SIGKILL cannot land."""
    scenario = parse_scenario({"name": "kill_never_lands", "purchases": [
        {"vusd_amount": "5.00", "expect": {"status": "completed"}}],
        "faults": [{"kind": "kill_service", "at_checkpoint": "refunded"}]})
    result = run_scenario(scenario, NetworkTarget(network))
    assert failures(result) == ["every fault fired: fault 0 (kill_service) never fired: the service logged 0 "
                                "pause(s) at refunded, none while order #0 was refunded (last seen completed)"]
    assert result["summary"]["ok"] is False
