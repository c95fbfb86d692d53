"""The installed command lines, run as a person runs them: `volta-harness` and `volta-service` from the venv's
bin/. Help names every option's default; a wrong command exits 2, a failure 1; a node that is down is one line
that says which and how to start it, never a traceback."""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import certifi
import httpx
import pytest

from harness.cli import build_parser, print_where_things_are
from service.cli import build_parser as build_service_parser

BIN = Path(sys.executable).parent
REPO_ROOT = Path(__file__).resolve().parents[2]


def run(program: str, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / program), *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "COLUMNS": "200", **(env or {})}, cwd=cwd or REPO_ROOT, check=False)


def closed_port() -> int:
    """A loopback port nothing listens on: bound once to pick it, then released."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def dead_network_state(run_dir: Path) -> dict[str, Any]:
    """state.json of a network whose supervisor and processes are gone (a reboot, a kill -9). Certificates: any
    readable PEM file (certifi's bundle); no connection gets as far as TLS."""
    (run_dir / "merchant").mkdir(parents=True)
    (run_dir / "merchant" / "admin.macaroon").write_bytes(b"\x02")
    (run_dir / "operator.key").write_text("0x1234")
    node = {"rest_url": f"https://127.0.0.1:{closed_port()}", "tls_cert": certifi.where(),
            "macaroon": str(run_dir / "merchant" / "admin.macaroon"), "pubkey": "02" + "00" * 32}
    account = {"address": "0x1", "private_key_file": str(run_dir / "operator.key")}
    return {
        "bitcoin": {"kind": "btcd", "rpc_url": f"https://127.0.0.1:{closed_port()}", "rpc_user": "volta",
                    "rpc_password": "x", "rpc_cert": certifi.where()},
        "lightning": {"kind": "lnd", "nodes": {"merchant": node}},
        "starknet": {"rpc_url": f"http://127.0.0.1:{closed_port()}/rpc", "block_time": None,
                     "chain_id": "0x534e5f5345504f4c4941",
                     "contracts": {"vusd": "0x2", "vault": "0x3", "oracle": "0x4"},
                     "owner": account, "operator": account, "mint_lanes": []},
        "run_dir": str(run_dir), "supervisor_pid": 2**22 + 1,  # above Linux's pid_max: never a live process
    }


@pytest.fixture
def stale_network(tmp_path: Path) -> Iterator[tuple[dict[str, str], dict[str, Any]]]:
    regtest = tmp_path / ".regtest"
    state = dead_network_state(regtest / "run")
    (regtest / "state.json").write_text(json.dumps(state))
    yield {"VOLTA_REGTEST_DIR": str(regtest)}, state


def options(parser: argparse.ArgumentParser) -> Iterator[tuple[str, argparse.ArgumentParser, argparse.Action]]:
    """Every argument of every (sub)command, with the parser it belongs to."""
    for action in parser._actions:  # argparse keeps no public list of a parser's arguments
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from options(sub)
        elif not isinstance(action, argparse._HelpAction):
            yield parser.prog, parser, action


@pytest.mark.parametrize("parser", [build_parser(), build_service_parser()], ids=["harness", "service"])
def test_every_option_has_help_that_names_its_default(parser: argparse.ArgumentParser) -> None:
    checked = 0
    for prog, sub, action in options(parser):
        assert action.help, f"{prog} {action.dest}: no help text"
        rendered = sub.format_help()
        has_value = action.default is not None and action.default is not False
        if action.option_strings and has_value:
            checked += 1
            assert f"(default: {action.default})" in rendered or "default" in action.help, \
                f"{prog} {action.option_strings[0]}: its default {action.default!r} is not in the help"
    assert checked >= 10 if parser.prog.endswith("harness") else checked == 2


def test_help_of_the_installed_scripts() -> None:
    harness_help = run("volta-harness", "up", "--help")
    assert harness_help.returncode == 0 and "usage: volta-harness up" in harness_help.stdout
    assert "--payers N" in harness_help.stdout and "(default: 1)" in harness_help.stdout
    service_help = run("volta-service", "--help")
    assert service_help.returncode == 0 and "(default: 127.0.0.1)" in service_help.stdout
    assert "(default: 5000)" in service_help.stdout


@pytest.mark.parametrize("args", [["no-such-command"], ["up", "--payers", "many"], ["mine"],
                                  ["up", "--topology", "ring"], ["up", "--api", "2"]])
def test_a_wrong_command_line_exits_2(args: list[str], tmp_path: Path) -> None:
    """argparse's errors, and the ones the harness finds in the values (two API instances on SQLite)."""
    result = run("volta-harness", *args, env={"VOLTA_REGTEST_DIR": str(tmp_path)})
    assert result.returncode == 2, result
    assert "Traceback" not in result.stdout + result.stderr


def test_an_unknown_node_or_a_missing_value_exits_2(stale_network: tuple[dict[str, str], dict[str, Any]]) -> None:
    env, _ = stale_network
    unknown = run("volta-harness", "invoice", "--msat", "1000", "--node", "nobody", env=env)
    assert unknown.returncode == 2 and "no node named 'nobody'; known: merchant" in unknown.stderr
    no_value = run("volta-harness", "price", "set", env=env)
    assert no_value.returncode == 2 and "price set needs a value" in no_value.stderr


def test_no_network_is_one_line_and_exit_1(tmp_path: Path) -> None:
    result = run("volta-harness", "status", env={"VOLTA_REGTEST_DIR": str(tmp_path)})
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: no regtest network is up ({tmp_path / 'state.json'} missing): start it with `volta-harness up`"]


@pytest.mark.parametrize(("args", "which"), [
    (["status"], "lnd merchant"),  # httpx against lnd's REST
    (["mine", "1"], "btcd"),  # httpx against btcd's JSON-RPC
    (["price", "get"], "starknet-devnet"),  # starknet-py's aiohttp against the devnet
])
def test_a_node_that_is_down_is_named_in_one_line(args: list[str], which: str,
                                                  stale_network: tuple[dict[str, str], dict[str, Any]]) -> None:
    env, state = stale_network
    url = {"lnd merchant": state["lightning"]["nodes"]["merchant"]["rest_url"],
           "btcd": state["bitcoin"]["rpc_url"], "starknet-devnet": state["starknet"]["rpc_url"]}[which]
    with pytest.raises(httpx.ConnectError):  # the fault is real: nothing answers there
        httpx.get(url, verify=False, timeout=5)
    result = run("volta-harness", *args, env=env)
    assert result.returncode == 1, result
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {which} at {url} is not answering: ")
    assert lines[0].endswith("start the network with `volta-harness up`")


def test_up_says_where_the_checkout_and_the_logs_are(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOLTA_REGTEST_DIR", str(tmp_path))
    print_where_things_are({"service": {"url": "http://127.0.0.1:41234"}, "run_dir": str(tmp_path / "run")})
    printed = capsys.readouterr().out
    assert "checkout: open http://127.0.0.1:41234/ in a browser" in printed
    assert f"logs: {tmp_path / 'run'}/<process>/" in printed and str(tmp_path / "supervisor.log") in printed


def test_service_settings_that_are_not_valid_exit_2(tmp_path: Path) -> None:
    result = run("volta-service", env={"VOLTA_FRAME_ANCESTORS": "not an origin"}, cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "frame_ancestors: 'not an origin' is not an origin" in result.stderr
    unconfigured = run("volta-service", env={"VOLTA_DATABASE_URL": f"sqlite:///{tmp_path / 'v.sqlite'}"},
                       cwd=tmp_path)
    assert unconfigured.returncode == 2 and "no Lightning node configured" in unconfigured.stderr


def test_service_whose_database_is_down_is_one_line(tmp_path: Path) -> None:
    port = closed_port()
    url = f"postgresql+psycopg://volta:secret-password@127.0.0.1:{port}/volta"
    result = run("volta-service", env={"VOLTA_DATABASE_URL": url}, cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if "error:" in line]
    assert lines == [line for line in lines if "secret-password" not in line]  # the password is never shown
    assert len(lines) == 1 and f"the database at postgresql+psycopg://volta:***@127.0.0.1:{port}/volta is not " \
                               f"answering" in lines[0]
