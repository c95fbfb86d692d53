"""How a scenario's faults fire and are judged, without a network: the service's pause line plus the order's
status trigger a checkpoint fault, a fault that never fired fails the run, and a proxy fault needs evidence."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, cast

import pytest

from harness.faults import FaultClient
from harness.lnd_client import HarnessLndClient
from scenarios.invariants import check_all, faults_fired
from scenarios.runner import Runner
from scenarios.schema import parse_scenario
from scenarios.target import PauseLog, Target, UnsupportedFault, through_proxies
from service.domain.settlement import Checkpoint


class FakeTarget(Target):
    """Just enough of a network for the runner's fault logic; anything else is a test bug."""

    def __init__(self, block_time: float | None = None, fault_proxy: bool = False) -> None:
        self.contracts, self.rpc_url, self.users = {}, "http://127.0.0.1:9/rpc", ["0xa"]
        self.block_time, self.restarts_nodes, self.fault_proxy = block_time, False, fault_proxy
        self.killed: list[int] = []

    @property
    def service_url(self) -> str:
        return "http://127.0.0.1:9"

    def lnd(self, name: str) -> HarnessLndClient:
        return cast(HarnessLndClient, None)

    def owner_account(self) -> Any:
        raise AssertionError("not in these tests")

    def operator_config(self) -> Any:
        raise AssertionError("not in these tests")

    def restart_service(self, env: dict[str, str]) -> None:
        pass

    def kill_service(self) -> int | None:
        self.killed.append(4242)
        return 4242

    def service_log(self) -> Path:
        raise AssertionError("not in these tests")

    def fault_client(self) -> FaultClient:
        if not self.fault_proxy:
            raise UnsupportedFault("this network has no fault proxy")
        raise AssertionError("not in these tests")

    def restart_merchant(self) -> None:
        raise UnsupportedFault("no")

    def restart_devnet(self) -> None:
        raise UnsupportedFault("no")


class FakeBuyer:
    def __init__(self, statuses: dict[str, str]) -> None:
        self.statuses = statuses

    def get(self, order_id: str) -> dict[str, str]:
        return {"status": self.statuses[order_id]}

    def close(self) -> None:
        pass


def pause_line(checkpoint: str, seconds: int = 120) -> str:
    # As service.faults.pause_checkpoint logs it, behind the service's log format.
    return f"2026-01-01 00:00:00,000 WARNING volta.faults: fault injection: pausing {seconds}s at {checkpoint}\n"


def runner_for(faults: list[dict[str, Any]], log: Path, statuses: dict[str, str], orders: int = 1,
               wait_s: float = 0.3) -> Runner:
    """A runner whose faults look at `log` and see orders o0, o1, … in `statuses`, giving up after `wait_s`."""
    scenario = parse_scenario({"name": "t", "purchases": [{"vusd_amount": "1", "count": orders}], "faults": faults})
    runner = Runner(scenario, FakeTarget())
    runner.buyer.close()
    runner.buyer = cast(Any, FakeBuyer(statuses))
    runner.faults.pause_log = PauseLog(log)
    runner.clock.deadline = time.monotonic() + wait_s
    for index, run in enumerate(runner.orders):
        run.order = {"order_id": f"o{index}", "status": "awaiting_payment"}
    return runner


def test_the_pause_log_reads_only_this_runs_lines_at_this_checkpoint(tmp_path: Path) -> None:
    log = tmp_path / "process.log"
    log.write_text(pause_line("minting"))  # an earlier run's pause
    pauses = PauseLog(log)
    with log.open("a") as out:
        out.write("INFO volta: order o0 minted\n" + pause_line("mint_signed") + pause_line("minting", 3))
    assert pauses.pauses(Checkpoint.MINTING) == [pause_line("minting", 3).strip()]
    assert len(pauses.pauses(Checkpoint.MINT_SIGNED)) == 1
    assert PauseLog(tmp_path / "not-yet.log").pauses(Checkpoint.MINTING) == []


def test_a_checkpoint_fault_fires_on_the_pause_line_with_its_order_there(tmp_path: Path) -> None:
    log = tmp_path / "process.log"
    log.write_text("")
    runner = runner_for([{"kind": "kill_service", "at_checkpoint": "mint_signed"},
                         {"kind": "restart_merchant", "at_checkpoint": "mint_signed"}], log, {"o0": "minting"})
    log.write_text(pause_line("mint_signed"))
    seen = runner.faults.wait_checkpoint(runner.scenario.faults[0])
    assert seen == {"pause_line": pause_line("mint_signed").strip(), "order_status": "minting"}
    cast(FakeBuyer, runner.buyer).statuses["o0"] = "completed"  # the kill moved it on: the other fault still fires
    assert runner.faults.wait_checkpoint(runner.scenario.faults[1]) == seen


@pytest.mark.parametrize(("lines", "status"), [
    ("", "minting"),  # the service never paused
    (pause_line("minting"), "minting"),  # paused elsewhere
    (pause_line("minted"), "completed"),  # the line is there, but the order is not in `minted`
])
def test_no_pause_with_the_order_there_means_no_trigger(tmp_path: Path, lines: str, status: str) -> None:
    log = tmp_path / "process.log"
    log.write_text("")
    runner = runner_for([{"kind": "kill_service", "at_checkpoint": "minted"}], log, {"o0": status})
    log.write_text(lines)
    assert runner.faults.wait_checkpoint(runner.scenario.faults[0]) is None
    assert "none while order #0 was minted" in runner.faults.why_not_fired(runner.scenario.faults[0])


def test_a_pause_line_serves_one_order(tmp_path: Path) -> None:
    log = tmp_path / "process.log"
    log.write_text("")
    runner = runner_for([{"kind": "restart_merchant", "at_checkpoint": "minting", "order": 0},
                         {"kind": "restart_devnet", "at_checkpoint": "minting", "order": 1}], log,
                        {"o0": "minting", "o1": "minting"}, orders=2)
    log.write_text(pause_line("minting", 3))
    assert runner.faults.wait_checkpoint(runner.scenario.faults[0]) is not None
    assert runner.faults.wait_checkpoint(runner.scenario.faults[1]) is None  # order 1 has not paused yet
    with log.open("a") as out:
        out.write(pause_line("minting", 3))
    runner.clock.deadline = time.monotonic() + 0.3
    assert runner.faults.wait_checkpoint(runner.scenario.faults[1]) is not None


def test_a_kill_that_never_fired_fails_the_run(tmp_path: Path) -> None:
    log = tmp_path / "process.log"
    log.write_text("")
    runner = runner_for([{"kind": "kill_service", "at_checkpoint": "refunded"}], log, {"o0": "completed"})
    runner.faults.run(0, runner.scenario.faults[0])
    [record] = runner.faults.records
    assert record["triggered"] is False and runner.target.killed == []  # type: ignore[attr-defined]
    check = faults_fired(runner.faults.records)
    assert not check.ok
    assert check.detail.startswith("fault 0 (kill_service) never fired: the service logged 0 pause(s) at refunded")


def test_a_kill_that_fired_records_what_it_killed(tmp_path: Path) -> None:
    log = tmp_path / "process.log"
    log.write_text("")
    runner = runner_for([{"kind": "kill_service", "at_checkpoint": "settled"}], log, {"o0": "minted"})
    log.write_text(pause_line("settled"))
    worker = threading.Thread(target=runner.faults.run, args=(0, runner.scenario.faults[0]))
    worker.start()
    runner._serve_main_actions(lambda: not worker.is_alive())  # the restart runs on this thread
    [record] = runner.faults.records
    assert (record["triggered"], record["killed_pid"], record["order_status"]) == (True, 4242, "minted")
    assert faults_fired(runner.faults.records).ok


@pytest.mark.parametrize(("record", "problem"), [
    ({"kind": "proxy_latency", "proxy": "devnet_rpc", "triggered": True,
      "evidence": {"connections": 0, "bytes": 0}}, "on devnet_rpc: no traffic through the proxy while it was on"),
    ({"kind": "proxy_outage", "proxy": "merchant_lnd", "triggered": True}, "no traffic through the proxy"),
    ({"kind": "restart_devnet", "triggered": True, "error": "UnsupportedFault('no')"}, "failed: UnsupportedFault"),
    ({"kind": "pause_vault", "triggered": False, "why": "the run ended before at_s 30.0"}, "never fired: the run"),
])
def test_every_fault_must_fire_with_evidence(record: dict[str, Any], problem: str) -> None:
    check = faults_fired([{"index": 3, **record}])
    assert not check.ok and problem in check.detail and "fault 3" in check.detail


def test_faults_with_evidence_pass() -> None:
    fired = [{"kind": "proxy_latency", "proxy": "devnet_rpc", "triggered": True,
              "evidence": {"connections": 4, "bytes": 0}},
             {"kind": "proxy_outage", "proxy": "merchant_lnd", "triggered": True,
              "evidence": {"connections": None, "bytes": 812}},
             {"kind": "kill_service", "triggered": True, "killed_pid": 7}]
    assert faults_fired(fired).ok and faults_fired([]).ok


def test_the_fault_check_is_part_of_every_result() -> None:
    result = {"orders": [], "mint_events": {}, "vusd": {},
              "balances": {"before": {"payer": 0, "router": 0, "merchant": 0},
                           "after": {"payer": 0, "router": 0, "merchant": 0}},
              "faults": [{"index": 0, "kind": "kill_service", "triggered": False, "why": "x"}]}
    failed = [check["name"] for check in check_all(result) if not check["ok"]]
    assert failed == ["every fault fired"]


def test_the_network_must_be_what_the_scenario_asks_for() -> None:
    scenario = parse_scenario({"name": "t", "purchases": [{"vusd_amount": "1"}], "starknet": {"block_time": 2},
                               "faults": [{"kind": "proxy_outage", "proxy": "merchant_lnd", "at_s": 1}]})
    with pytest.raises(UnsupportedFault, match="needs a block every 2 s but this network has one block per "
                                               "transaction: run it with --own-network"):
        Runner(scenario, FakeTarget())._check_target()
    with pytest.raises(UnsupportedFault, match="no fault proxy"):
        Runner(scenario, FakeTarget(block_time=2))._check_target()
    restart = parse_scenario({"name": "t", "purchases": [{"vusd_amount": "1"}],
                              "faults": [{"kind": "restart_devnet", "at_s": 1}]})
    with pytest.raises(UnsupportedFault, match="restart_devnet needs a network this process owns"):
        Runner(restart, FakeTarget())._check_target()


def test_our_service_on_a_shared_network_goes_through_its_proxies() -> None:
    proxies = {"merchant_lnd": {"listen": "127.0.0.1:41001", "upstream": "127.0.0.1:8080"},
               "devnet_rpc": {"listen": "127.0.0.1:41002", "upstream": "127.0.0.1:5050"}}
    state: dict[str, Any] = {"lightning": {"nodes": {"merchant": {"rest_url": "https://127.0.0.1:8080"}}},
                             "starknet": {"rpc_url": "http://127.0.0.1:5050/rpc"}, "faults": {"proxies": proxies}}
    proxied = through_proxies(state)
    assert proxied["lightning"]["nodes"]["merchant"]["rest_url"] == "https://127.0.0.1:41001"
    assert proxied["starknet"]["rpc_url"] == "http://127.0.0.1:41002/rpc"
    assert state["starknet"]["rpc_url"] == "http://127.0.0.1:5050/rpc"  # the judge keeps the direct addresses
