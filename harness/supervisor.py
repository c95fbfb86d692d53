"""The network's life cycle for humans: `up` in the background (a supervisor process owns the network and
writes `state.json`), `down`. The CLI and the demo both use it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

from rich.console import Console

from harness import tools
from harness.devnet import block_generation
from harness.network import Network
from harness.scale import ServiceScale
from harness.state import operator_starknet_config, read_state, regtest_dir, state_path, write_state
from harness.topology import Topology
from harness.util import tail
from service.starknet.client import StarknetClient

console = Console()


def bring_up(starknet_block_time: float | None = None, faults: bool = False, foreground: bool = False,
             topology: Topology | None = None, scale: ServiceScale | None = None, mint_lanes: int = 1) -> int:
    """Start the network unless one is up: in this process with `foreground`, else in a supervisor.
    `topology`: its Lightning nodes (default: payer -> router -> merchant). `scale`: the service's processes
    and database (default: one process on SQLite)."""
    topology = topology or Topology()
    scale = scale or ServiceScale()
    if network_is_up():
        console.print(f"a network is already up (see {state_path()}); `python -m harness down` first")
        return 1
    try:
        block_generation(starknet_block_time)  # refuse an impossible block time before building anything
    except ValueError as exc:
        console.print(f"[red]error:[/red] {exc}")
        return 2
    for name in tools.TOOLS:
        tools.locate(name)  # build now, in the foreground, with progress
    scale.programs()  # postgres, redis-server, nginx if wanted: a missing one is named here, with its make target
    if foreground:
        return _run_foreground(starknet_block_time, faults, topology, scale, mint_lanes)
    return _spawn_background(_network_options(starknet_block_time, faults, topology, scale, mint_lanes), topology,
                             scale)


def network_is_up() -> bool:
    return state_path().exists() and supervisor_alive(read_state())


def _network_options(starknet_block_time: float | None, faults: bool, topology: Topology,
                     scale: ServiceScale | None = None, mint_lanes: int = 1) -> list[str]:
    """The `up` options, handed on to the background supervisor."""
    scale = scale or ServiceScale()
    options = ["--faults"] if faults else []
    if starknet_block_time is not None:
        options += ["--starknet-block-time", str(starknet_block_time)]
    options += ["--payers", str(topology.payers), "--routers", str(topology.routers), "--topology", topology.shape]
    options += ["--api", str(scale.api_instances), "--workers", str(scale.workers), "--db", scale.database]
    options += ["--lanes", str(mint_lanes)]
    return options


def _run_foreground(starknet_block_time: float | None = None, faults: bool = False,
                    topology: Topology | None = None, scale: ServiceScale | None = None, mint_lanes: int = 1) -> int:
    topology = topology or Topology()
    scale = scale or ServiceScale()

    def _terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    # Installed, not inherited: a shell starts a background job (`make test &`) with SIGINT ignored, and a
    # Python started with it ignored never raises KeyboardInterrupt, so Ctrl-C (or a test's SIGINT) did nothing.
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    run_dir = regtest_dir() / "run"
    shutil.rmtree(run_dir, ignore_errors=True)
    try:
        with Network(run_dir, keep_run_dir=True, starknet_block_time=starknet_block_time, fault_proxy=faults,
                     payers=topology.payers, routers=topology.routers, topology=topology.shape,
                     api_instances=scale.api_instances, workers=scale.workers, database=scale.database,
                     mint_lanes=mint_lanes) as network:
            state = {**network.state(), "supervisor_pid": os.getpid(), "ready": True, **network.timings}
            write_state(state)
            print(f"regtest network up in {network.timings['bring_up_s']:.1f}s; state in {state_path()}", flush=True)
            while True:
                time.sleep(1)
    except KeyboardInterrupt:
        print("stopping the network", flush=True)
    finally:
        state_path().unlink(missing_ok=True)
    return 0


def _spawn_background(options: list[str], topology: Topology, scale: ServiceScale) -> int:
    log_path = regtest_dir() / "supervisor.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    state_path().unlink(missing_ok=True)
    with log_path.open("w") as log:
        child = subprocess.Popen(
            [sys.executable, "-m", "harness", "up", "--foreground", *options],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
    names = topology.node_names
    with console.status(f"bringing up btcd and {len(names)} lnd nodes ({', '.join(names)}, {topology.shape}), "
                        f"the service as {scale.describe()}…"):
        while not state_path().exists():
            if child.poll() is not None:
                console.print(f"[red]bring-up failed[/red]; {log_path}:\n{tail(log_path, 40)}")
                return 1
            time.sleep(0.5)
    state = read_state()
    console.print(f"network up in {state['bring_up_s']:.1f}s; state in {state_path()}")
    if "service" in state:
        console.print(f"service at {state['service']['url']}")
    return 0


def supervisor_alive(state: dict) -> bool:
    try:
        os.kill(int(state.get("supervisor_pid", 0)), 0)
    except (OSError, ValueError):
        return False
    return True


def starknet_from_state() -> tuple[dict, StarknetClient]:
    state = read_state()
    return state.get("starknet", {}), StarknetClient(operator_starknet_config(state))
