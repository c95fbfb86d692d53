"""`python -m harness …`: the same harness the tests use, for humans."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harness import tools
from harness.btcd import BtcdRpc, BtcdRpcError
from harness.contracts.deploy import make_account, set_price
from harness.devnet import DevnetError
from harness.errors import UsageError, down_message, unreachable_address
from harness.faults import FaultClient, FaultError, Proxy
from harness.network import Network
from harness.scale import DATABASES, ServiceScale
from harness.state import (
    devnet_client,
    fault_client,
    lnd_client,
    read_state,
    regtest_dir,
    state_path,
)
from harness.supervisor import bring_up, starknet_from_state, supervisor_alive
from harness.topology import SHAPES, Topology
from harness.util import Timeouts, tail, wait_until
from service.domain.pricing import vusd_from_base_units
from service.lightning.lnd_rest import LndError

console = Console(soft_wrap=True)  # URLs and paths stay on one line, to be copied
errors = Console(stderr=True, soft_wrap=True)  # what went wrong goes to stderr, so scripts can read stdout


def cmd_tools(args: argparse.Namespace) -> int:
    names = args.only or list(tools.TOOLS)
    missing = [name for name in names if tools.needs_build(name)]
    if len(missing) > 1:
        log_dir = tools.cache_root() / "build-logs"
        failed = {name: code for name, code in tools.build_at_once(missing, log_dir).items() if code != 0}
        if failed:
            for name in failed:
                console.print(f"[red]building {name} failed[/red]; {log_dir / (name + '.log')}:\n"
                              f"{tail(log_dir / (name + '.log'), 20)}")
            return 1
    for name in names:
        located = tools.locate(name)
        built = f", built in {located.build_seconds:.0f}s" if located.build_seconds else ""
        print(f"{name}: {tools.tool_version(located)} (from {located.source}{built})")
        for path in located.paths.values():
            print(f"    {path}")
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    try:
        topology = Topology(args.payers, args.routers, args.topology)
        scale = ServiceScale(args.api, args.workers, args.db)
    except ValueError as exc:
        return report_error(exc, 2)
    code = bring_up(args.starknet_block_time, args.faults, args.foreground, topology, scale, args.lanes)
    if code == 0 and not args.foreground:
        print_where_things_are(read_state())
    return code


def print_where_things_are(state: dict[str, Any]) -> None:
    """After `up`: where to buy, where each process logs, and how to stop it all."""
    if "service" in state:
        console.print(f"checkout: open {state['service']['url']}/ in a browser (API: {state['service']['url']}"
                      f"/api/v1, docs at /api/v1/docs)")
    console.print(f"logs: {state['run_dir']}/<process>/ (btcd, merchant, payer, router, devnet, service, …); "
                  f"the supervisor's log is {regtest_dir() / 'supervisor.log'}")
    console.print(f"stop it with `{program_name()} down`")


def cmd_down(args: argparse.Namespace) -> int:
    if not state_path().exists():
        console.print("no network is up")
        return 0
    state = read_state()
    pid = int(state.get("supervisor_pid", 0))
    if supervisor_alive(state):
        os.kill(pid, signal.SIGTERM)
        wait_until(lambda: not supervisor_alive(state), timeout=Timeouts.PROCESS_STOP * 3, what="network to stop")
    state_path().unlink(missing_ok=True)
    console.print("network down")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    state = read_state()
    chain = BtcdRpc.from_state(state["bitcoin"])
    table = Table("node", "pubkey", "synced", "channels", "local sat", "remote sat", "wallet sat")
    for name in state["lightning"]["nodes"]:
        client = lnd_client(state, name)
        info, balance = client.get_info(), client.channel_balance()
        table.add_row(
            name, info["identity_pubkey"][:16] + "…", str(info.get("synced_to_chain")),
            str(info.get("num_active_channels", 0)), str(balance["local_msat"] // 1000),
            str(balance["remote_msat"] // 1000), str(client.wallet_balance_sat()),
        )
    console.print(f"btcd {state['bitcoin']['rpc_url']} height {chain.block_count()}")
    console.print(table)
    service = state.get("service")
    if service:
        scale = service.get("scale", {})
        behind = f" (nginx -> {', '.join(service['api'])}; workers {', '.join(service['workers'])})" \
            if "nginx" in service else ""
        console.print(f"service {service['url']}{behind} on {scale.get('database', 'sqlite')}")
    return 0


def cmd_invoice(args: argparse.Namespace) -> int:
    invoice = lnd_client(read_state(), args.node).add_invoice(args.msat, memo=args.memo)
    print(invoice["payment_request"])
    return 0


def cmd_pay(args: argparse.Namespace) -> int:
    result = lnd_client(read_state(), args.sender).pay(args.bolt11)
    summary = {key: result.get(key) for key in ("status", "payment_hash", "value_msat", "fee_msat", "failure_reason")}
    print(json.dumps(summary, indent=2))
    return 0 if result.get("status") == "SUCCEEDED" else 1


def cmd_mine(args: argparse.Namespace) -> int:
    rpc = BtcdRpc.from_state(read_state()["bitcoin"])
    rpc.generate(args.blocks)
    print(f"mined {args.blocks}; height {rpc.block_count()}")
    return 0


def cmd_price(args: argparse.Namespace) -> int:
    if args.action == "set" and args.value is None:
        raise UsageError(f"price set needs a value, e.g. `{program_name()} price set 97123.45`")
    starknet, client = starknet_from_state()
    try:
        if args.action == "set":
            owner = starknet["owner"]
            account = make_account(starknet["rpc_url"], owner["address"], Path(owner["private_key_file"]).read_text())
            asyncio.run(set_price(account, int(starknet["contracts"]["oracle"], 16), Decimal(args.value)))
        price = client.btc_usd()
        print(f"BTC/USD {price.btc_usd} (updated {price.age_s(time.time()):.0f}s ago)")
    finally:
        client.close()
    return 0


def cmd_balance(args: argparse.Namespace) -> int:
    _, client = starknet_from_state()
    try:
        base_units = client.vusd_balance(int(args.address, 16))
    finally:
        client.close()
    print(f"{vusd_from_base_units(base_units)} VUSD")
    return 0


def cmd_fault(args: argparse.Namespace) -> int:
    client = fault_client(read_state())
    try:
        _apply_fault(client, args)
        _print_proxies(client.proxies())
    finally:
        client.close()
    return 0


def _apply_fault(client: FaultClient, args: argparse.Namespace) -> None:
    if args.action == "latency":
        client.latency(args.proxy, args.ms, jitter_ms=args.jitter_ms, stream=args.stream)
    elif args.action == "stall":
        client.stall(args.proxy, stream=args.stream)
    elif args.action == "reset":
        client.reset(args.proxy, stream=args.stream)
    elif args.action == "cut":
        client.cut(args.proxy)
    elif args.action == "restore":
        client.restore(args.proxy)
    elif args.action == "clear":
        client.clear(args.proxy)


def _print_proxies(proxies: dict[str, Proxy]) -> None:
    table = Table("proxy", "listen", "upstream", "enabled", "toxics")
    for proxy in proxies.values():
        toxics = ", ".join(f"{toxic.type}/{toxic.stream} {toxic.attributes}" for toxic in proxy.toxics) or "-"
        table.add_row(proxy.name, proxy.listen, proxy.upstream, str(proxy.enabled), toxics)
    console.print(table)


def cmd_block(args: argparse.Namespace) -> int:
    devnet = devnet_client(read_state())
    if args.action == "create":
        block_hash = devnet.create_block()
        print(f"closed block {block_hash}; latest is now {devnet.block_number()}")
        return 0
    first = devnet.block_number() - args.count + 1
    aborted = devnet.abort_blocks(first)
    # With interval blocks the timer may close a new block (numbered `first` again) right after.
    print(f"aborted blocks {first}..{first + len(aborted) - 1}; latest is now {devnet.block_number()}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from harness.demo import run_demo

    return run_demo()


def cmd_scenario(args: argparse.Namespace) -> int:
    from scenarios.cli import run_cli

    return run_cli(args.scenario_args)


def cmd_bench(args: argparse.Namespace) -> int:
    from harness.bench import run_lightning_bench, run_purchase_bench, run_scaled_purchase_bench, run_starknet_bench

    if args.what == "streams":
        from harness.streams_bench import run_streams_bench

        return run_streams_bench(count=args.streams)
    if args.what == "sweep":
        from harness.bench import run_scale_sweep

        return run_scale_sweep(workers=args.workers or 3, api_instances=args.api or 2, payers=args.payers or 2)
    topology = (args.api, args.workers, args.db, args.payers, args.lanes)
    if args.what == "purchase" and any(option is not None for option in topology):
        return run_scaled_purchase_bench(purchases=args.payments, concurrency=args.senders, api_instances=args.api or 1,
                                         workers=args.workers or 0, database=args.db or "sqlite",
                                         payers=args.payers or 1, mint_lanes=args.lanes or 1)
    if args.what == "starknet":
        return run_starknet_bench(mints=args.payments, concurrent=args.concurrent, senders=args.senders)
    if args.what == "lightning":
        return run_lightning_bench(payments=args.payments, concurrent=args.concurrent, senders=args.senders)
    return run_purchase_bench(purchases=args.payments, concurrent=args.concurrent, payers=args.senders,
                              starknet_block_time=args.starknet_block_time)


def cmd_chaos(args: argparse.Namespace) -> int:
    """On a network of its own: the service must be this process's child to be SIGKILLed and restarted."""
    from harness.chaos import run_chaos

    try:
        scale = ServiceScale(args.api, args.workers, args.db)
    except ValueError as exc:
        return report_error(exc, 2)
    with console.status("bringing up a network for the chaos run…"), \
            Network(starknet_block_time=args.starknet_block_time, api_instances=scale.api_instances,
                    workers=scale.workers, database=scale.database, mint_lanes=args.lanes) as network:
        victims = ", ".join(process.name for process in network.service_processes)
        console.print(f"network up in {network.timings['bring_up_s']:.0f}s; buying while one of {victims} is "
                      f"SIGKILLed every {args.kill_every[0]:g}-{args.kill_every[1]:g} s for {args.minutes:g} min")
        report = run_chaos(network, args.minutes * 60, kill_every_s=(args.kill_every[0], args.kill_every[1]),
                           seed=args.seed, service_env={"VOLTA_VOID_UNSEEN_MINT_AFTER_S": "6"})
    console.print(report.summary())
    for violation in report.violations:
        console.print(f"[red]violation:[/red] {violation}")
    return 0 if report.sound else 1


def cmd_reconcile(args: argparse.Namespace) -> int:
    """`python -m service.reconcile` against the running network's service database and nodes."""
    state = read_state()
    env = {**os.environ, "VOLTA_REGTEST_STATE": str(state_path()),
           "VOLTA_DATABASE_URL": state["service"]["database_url"]}
    if "preimage_key_file" in state["service"]:  # a shared database: the key is not beside it
        env["VOLTA_PREIMAGE_KEY_FILE"] = state["service"]["preimage_key_file"]
    command = [sys.executable, "-m", "service.reconcile", "--hours", str(args.hours)]
    return subprocess.run(command, env=env, check=False).returncode


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Every option's help ends with its default, unless the help says it already or there is no default value
    to show (a flag, or an option whose help says what happens without it)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        help_text = action.help or ""
        if action.default is None or action.default is False or "default" in help_text:
            return help_text
        return super()._get_help_string(action)


def program_name() -> str:
    """`volta-harness` when run as the installed script, `python -m harness` when run as a module."""
    return "python -m harness" if Path(sys.argv[0]).name == "__main__.py" else "volta-harness"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=program_name(), description=__doc__, formatter_class=HelpFormatter,
                                     epilog="exit codes: 0 done, 1 failed (a node down, a payment failed), "
                                            "2 usage error")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="COMMAND")

    def verb(name: str, handler: Callable[[argparse.Namespace], int], help_text: str) -> argparse.ArgumentParser:
        sub = verbs.add_parser(name, help=help_text, description=help_text, formatter_class=HelpFormatter)
        sub.set_defaults(handler=handler)
        return sub

    verb("tools", cmd_tools, "locate or build btcd, lnd, starknet-devnet").add_argument(
        "only", nargs="*", help=f"only these tools, of: {', '.join(tools.TOOLS)} (default: all)"
    )
    _up_parser(verb("up", cmd_up, "bring the regtest network up in the background; prints the service's URL "
                                  "and where the logs are"))
    verb("down", cmd_down, "tear the network down")
    verb("status", cmd_status, "show chain height and each node's channels and balances")
    invoice = verb("invoice", cmd_invoice, "create a plain invoice")
    invoice.add_argument("--msat", type=int, required=True, help="the amount in millisatoshis (required)")
    invoice.add_argument("--node", default="merchant", help="the lnd node that issues the invoice")
    invoice.add_argument("--memo", default="", help="the invoice's description")
    pay = verb("pay", cmd_pay, "pay a BOLT11 invoice")
    pay.add_argument("bolt11", help="the invoice, e.g. from `volta-harness invoice` or an order's `bolt11`")
    pay.add_argument("--from", dest="sender", default="payer", help="the lnd node that pays")
    verb("mine", cmd_mine, "mine blocks").add_argument("blocks", type=int, help="how many blocks to mine")
    price = verb("price", cmd_price, "read or move BTC/USD on the devnet's price oracle")
    price.add_argument("action", choices=["get", "set"], help="get: print the price; set: move it to VALUE")
    price.add_argument("value", nargs="?", help="for set: the new price, e.g. 97123.45")
    verb("balance", cmd_balance, "VUSD balance of a Starknet address").add_argument(
        "address", help="the Starknet address, 0x-prefixed hex")
    _fault_parser(verb("fault", cmd_fault, "faults between the service and its dependencies (needs `up --faults`)"))
    block = verb("block", cmd_block, "close a devnet block now, or roll back the latest ones")
    block_actions = block.add_subparsers(dest="action", required=True, metavar="ACTION")
    block_actions.add_parser("create", help="close the pre-confirmed block now")
    block_actions.add_parser("abort", help="roll back the latest COUNT blocks").add_argument(
        "count", type=int, help="how many of the latest blocks to roll back")
    verb("demo", cmd_demo, "bring up regtest (if needed) and make a real payment end to end")
    verb("scenario", cmd_scenario, "run a scenario file against the network (see scenarios/)").add_argument(
        "scenario_args", nargs=argparse.REMAINDER, help="e.g. run scenarios/catalogue/happy_path.yaml")
    _bench_parser(verb("bench", cmd_bench, "measure bring-up, latency and throughput (prints figures, asserts "
                                           "nothing)"))
    _chaos_parser(verb("chaos", cmd_chaos, "buy from two payers while SIGKILLing the service at random; judge "
                                           "every order"))
    verb("reconcile", cmd_reconcile, "compare finished orders with lnd and the vault; repair what can be").add_argument(
        "--hours", type=float, default=24, help="orders finished this many hours back")
    return parser


def _up_parser(up: argparse.ArgumentParser) -> None:
    up.add_argument("--foreground", action="store_true", help="run in this terminal until Ctrl-C")
    up.add_argument("--starknet-block-time", type=float, default=None, metavar="SECONDS",
                    help="close a devnet block every SECONDS (whole seconds); 0: only on `block create`; "
                         "default: one block per transaction")
    up.add_argument("--faults", action="store_true",
                    help="put toxiproxy between the service and the devnet RPC / merchant lnd REST")
    up.add_argument("--payers", type=int, default=1, metavar="N", help="paying nodes: payer, payer2, …")
    up.add_argument("--routers", type=int, default=1, metavar="M",
                    help="routing nodes between the payers and the merchant: router, router2, …")
    up.add_argument("--topology", choices=SHAPES, default="line",
                    help="line: payers -> router -> router2 -> … -> merchant; star: each router -> merchant, "
                         "the payers dealt out over the routers")
    up.add_argument("--api", type=int, default=1, metavar="N",
                    help="API instances (api, api2, …); more than 1, or any --workers, puts nginx in front and "
                         "needs --db postgres; 1: one process that is API and worker")
    up.add_argument("--workers", type=int, default=0, metavar="M",
                    help="worker processes (`python -m service.worker`) beside the API instances")
    up.add_argument("--db", choices=DATABASES, default="sqlite",
                    help="the service's database; postgres also starts a Redis")
    up.add_argument("--lanes", type=int, default=1, metavar="L",
                    help="mint lanes: operator accounts the vault accepts mints from, each with its own nonce, "
                         "leased to one worker at a time")


def _bench_parser(bench: argparse.ArgumentParser) -> None:
    bench.add_argument("what", choices=["lightning", "starknet", "purchase", "streams", "sweep"],
                       help="plain Lightning payments, plain mints, purchases through the service, open event "
                            "streams, or the scale sweep: raw hold payments against purchases through nginx with "
                            "--workers down to 1 worker, at 32 and 128 at once, with CPU per item")
    bench.add_argument("--payments", type=int, default=100, help="payments, mints or purchases to make")
    bench.add_argument("--streams", type=int, default=2000, metavar="N",
                       help="streams bench: open orders, each followed live, on one API instance")
    bench.add_argument("--concurrent", type=int, default=300, help="how many in flight at once")
    bench.add_argument("--senders", type=int, default=8,
                       help="sending nodes or accounts (purchase bench: paying nodes; with a topology option: "
                            "purchases at once)")
    bench.add_argument("--starknet-block-time", type=float, default=None, metavar="SECONDS",
                       help="purchase bench only: devnet blocks every SECONDS, as on Starknet (e.g. 6); "
                            "default: one block per transaction")
    # Any of these makes the purchase bench one topology's throughput: --payments raw hold payments, then
    # --payments purchases, both --senders at once (issue #12).
    bench.add_argument("--api", type=int, default=None, metavar="N",
                       help="purchase bench on a topology of its own: API instances (default: 1 when any "
                            "topology option is given)")
    bench.add_argument("--workers", type=int, default=None, metavar="M",
                       help="purchase bench: worker processes (default: 0); sweep: workers to start from (default: 3)")
    bench.add_argument("--db", choices=DATABASES, default=None,
                       help="purchase bench: the service's database (default: sqlite)")
    bench.add_argument("--lanes", type=int, default=None, metavar="L", help="purchase bench: mint lanes (default: 1)")
    bench.add_argument("--payers", type=int, default=None, metavar="K",
                       help="purchase bench: paying lnd nodes, taking turns (default: 1)")


def _chaos_parser(chaos: argparse.ArgumentParser) -> None:
    chaos.add_argument("--minutes", type=float, default=3, help="how long to buy and kill")
    chaos.add_argument("--starknet-block-time", type=float, default=2, metavar="SECONDS",
                       help="devnet blocks every SECONDS")
    chaos.add_argument("--kill-every", type=float, nargs=2, default=(2.0, 8.0), metavar=("MIN_S", "MAX_S"),
                       help="seconds between kills, drawn between MIN_S and MAX_S")
    chaos.add_argument("--seed", type=int, default=7, help="the random schedule's seed (same seed, same schedule)")
    chaos.add_argument("--api", type=int, default=1, metavar="N", help="API instances behind nginx")
    chaos.add_argument("--workers", type=int, default=0, metavar="M", help="worker processes")
    chaos.add_argument("--db", choices=DATABASES, default="sqlite", help="the service's database")
    chaos.add_argument("--lanes", type=int, default=1, metavar="L", help="mint lanes")


def _fault_parser(fault: argparse.ArgumentParser) -> None:
    actions = fault.add_subparsers(dest="action", required=True, metavar="ACTION")

    def action(name: str, help_text: str) -> argparse.ArgumentParser:
        return actions.add_parser(name, help=help_text, description=help_text, formatter_class=HelpFormatter)

    action("list", "proxies and their toxics")
    latency = action("latency", "delay data through PROXY by MS milliseconds")
    latency.add_argument("proxy", help=PROXY_HELP)
    latency.add_argument("ms", type=int, help="milliseconds of delay")
    latency.add_argument("--jitter-ms", type=int, default=0, help="up to this many milliseconds more or less")
    for name, help_text in (("stall", "hold all data, never close"), ("reset", "reset connections (TCP RST)"),
                            ("cut", "disable PROXY: connections refused"), ("restore", "enable PROXY again")):
        action(name, help_text).add_argument("proxy", help=PROXY_HELP)
    action("clear", "remove toxics (of PROXY, or all) and re-enable").add_argument(
        "proxy", nargs="?", help=PROXY_HELP + " (default: all)")
    for name in ("latency", "stall", "reset"):
        actions.choices[name].add_argument("--stream", choices=["downstream", "upstream"], default="downstream",
                                           help="downstream: server to client; upstream: client to server")


PROXY_HELP = "the proxy's name, as `volta-harness fault list` shows it"


def main(argv: list[str] | None = None) -> int:
    """Exit codes: 0 done, 1 failed, 2 usage error (argparse's own code for a wrong command line)."""
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except UsageError as exc:
        return report_error(exc, 2)
    except (tools.ToolError, FileNotFoundError, FaultError, DevnetError, BtcdRpcError, LndError, ValueError) as exc:
        return report_error(exc, 1)
    except KeyError as exc:  # state.json lacks a part this command needs; the message says which
        return report_error(exc.args[0] if exc.args else exc, 1)
    except (httpx.TransportError, OSError) as exc:  # a node, the devnet or the service is not answering
        return report_error(_down_message(exc) if unreachable_address(exc) else exc, 1)


def report_error(problem: object, exit_code: int) -> int:
    """One line on stderr; escaped, as messages hold brackets that rich would read as markup ("[merchant] …")."""
    errors.print(f"[red]error:[/red] {escape(str(problem))}")
    return exit_code


def _down_message(exc: BaseException) -> str:
    try:
        state: dict[str, Any] | None = read_state()
    except (OSError, ValueError):
        state = None
    return down_message(exc, state, network_running=bool(state) and supervisor_alive(state or {}))


if __name__ == "__main__":
    sys.exit(main())
