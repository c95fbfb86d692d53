"""Proxy faults from scenario files, on a network with 2-second blocks and toxiproxy between the service and
its dependencies: every invariant and expectation holds, and each fault's evidence is in the result."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.network import Network
from scenarios.runner import run_scenario
from scenarios.target import NetworkTarget
from tests.scenarios.test_catalogue import CATALOGUE, failures

pytestmark = pytest.mark.regtest


@pytest.mark.parametrize("name", ["slow_rpc_while_minting", "lnd_outage_while_settling"])
def test_proxy_fault_scenario_keeps_every_invariant(realistic_network: Network, tmp_path: Path, name: str) -> None:
    result = run_scenario(CATALOGUE / f"{name}.yaml", NetworkTarget(realistic_network), tmp_path / f"{name}.json")
    assert not failures(result), json.dumps({"summary": result["summary"], "faults": result["faults"]}, indent=2)
    [fault] = result["faults"]
    assert fault["triggered"] and fault["pause_line"].endswith(f"pausing 3s at {fault['at_checkpoint']}")
    evidence = fault["evidence"]
    assert evidence["connections"] or evidence["bytes"], evidence
    assert realistic_network.faults is not None
    assert not any(proxy.toxics or not proxy.enabled for proxy in realistic_network.faults.proxies().values())
