"""`python -m harness scenario run|check`: run a scenario file and print what it came to, or validate files.

The command's help is `scenarios.runner`'s docstring: what a run does, for the person about to start one.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

from scenarios import runner
from scenarios.runner import run_scenario
from scenarios.schema import ScenarioError, load_scenario
from scenarios.summary import print_summary
from scenarios.target import NetworkTarget, StateTarget, UnsupportedFault


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m harness scenario", description=runner.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = parser.add_subparsers(dest="verb", required=True)
    run = verbs.add_parser("run", help="run a scenario file and write its result (JSON)")
    run.add_argument("file", type=Path)
    run.add_argument("--out", type=Path, help="result file (default artifacts/scenarios/<name>-<time>.json)")
    where = run.add_mutually_exclusive_group()
    where.add_argument("--state", type=Path, help="state.json of a running network (default .regtest/state.json)")
    where.add_argument("--own-network", action="store_true",
                       help="start a fresh network in this process, with the scenario's block time and fault "
                            "proxy (needed for node and devnet restarts)")
    verbs.add_parser("check", help="validate scenario files without running them").add_argument(
        "files", type=Path, nargs="+")
    return parser


def run_cli(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.verb == "check":
            for path in args.files:
                scenario = load_scenario(path)
                print(f"{path}: ok ({scenario.order_count()} orders, {len(scenario.faults)} faults)")
            return 0
        return _cli_run(args)
    except ScenarioError as exc:
        print(f"error: {exc}")
        return 2
    except UnsupportedFault as exc:
        print(f"error: {exc}")
        return 2


def _cli_run(args: argparse.Namespace) -> int:
    scenario = load_scenario(args.file)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    out = args.out or Path("artifacts") / "scenarios" / f"{scenario.name}-{stamp}.json"
    if args.own_network:
        from harness.network import Network

        print("starting a fresh network (≈ 30 s)…", flush=True)
        with Network(starknet_block_time=scenario.starknet.block_time,
                     fault_proxy=scenario.needs_fault_proxy()) as network:
            result = run_scenario(scenario, NetworkTarget(network), out, log=_print)
    else:
        target = StateTarget(args.state)
        try:
            result = run_scenario(scenario, target, out, log=_print)
        finally:
            target.close()
    print_summary(result, out)
    return 0 if result["summary"]["ok"] else 1


def _print(message: str) -> None:
    print(message, flush=True)
