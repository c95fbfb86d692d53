"""What a scenario runs against: the session's in-process `Network`, or a network described by `state.json`.

Both give the same handles (service URL, lnd clients, the vault, the oracle) and the same fault actions.
A `state.json` network belongs to another process (`python -m harness up`), so this process cannot restart
its nodes or devnet; it runs its own service instance on that network when a scenario needs service
settings or kills the service (the supervisor's service keeps its own database and orders). On a network
brought up with `--faults`, that service reaches the devnet and the merchant through the shared proxies,
as the supervisor's does, so proxy faults reach it (and the supervisor's service too).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shutil
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from starknet_py.net.account.account import Account
from starknet_py.net.client_errors import ClientError
from starknet_py.net.full_node_client import FullNodeClient

from harness.contracts.deploy import invoke, make_account, set_price
from harness.faults import FaultClient, FaultError, Proxy, Toxic, Traffic
from harness.lnd_client import HarnessLndClient
from harness.network import DEVNET_PROXY, MERCHANT_PROXY, Network
from harness.service_process import VoltaService
from harness.state import fault_client, operator_starknet_config, read_state, state_path, write_state
from harness.util import Timeouts, wait_until
from scenarios.schema import Fault, FaultKind
from service.domain.settlement import Checkpoint
from service.lightning.lnd_rest import LndError
from service.starknet.client import StarknetClient, StarknetConfig
from service.starknet.lanes import is_nonce_error

T = TypeVar("T")
# What the service logs when it reaches its fault pause (service.faults.pause_checkpoint).
PAUSE_LINE = re.compile(r"fault injection: pausing \S+s at (?P<checkpoint>\w+)")
# toxiproxy counts a connection's bytes when it closes: the ones a cut drops, and the service's reconnects
# right after the restore, are counted only a moment later.
OUTAGE_GRACE_S = 2.0


class UnsupportedFault(RuntimeError):
    """This target cannot inject that fault (e.g. restarting a node of a network another process owns)."""


class Target(ABC):
    """The network a scenario drives, and the faults it can inject into it."""

    contracts: dict[str, int]
    rpc_url: str
    users: list[str]
    block_time: float | None  # the devnet's: None one block per transaction, 0 on demand, N every N seconds
    restarts_nodes: bool  # whether restart_merchant / restart_devnet can work here

    def describe_blocks(self) -> str:
        if self.block_time is None:
            return "one block per transaction"
        return "blocks only on demand" if self.block_time == 0 else f"a block every {self.block_time:g} s"

    @property
    @abstractmethod
    def service_url(self) -> str: ...

    @abstractmethod
    def lnd(self, name: str) -> HarnessLndClient:
        """A live client for `payer`, `router` or `merchant` (a new one after that node restarted)."""

    @abstractmethod
    def owner_account(self) -> Account: ...

    @abstractmethod
    def operator_config(self) -> StarknetConfig: ...

    @abstractmethod
    def restart_service(self, env: dict[str, str]) -> None:
        """Stop the service (SIGTERM) and start it with these VOLTA_* settings."""

    @abstractmethod
    def kill_service(self) -> int | None:
        """SIGKILL the scenario's service; the pid it had."""

    @abstractmethod
    def service_log(self) -> Path:
        """The scenario's service's log file (appended to across restarts)."""

    @abstractmethod
    def fault_client(self) -> FaultClient:
        """The toxiproxy between the service and its dependencies; UnsupportedFault when there is none."""

    @abstractmethod
    def restart_merchant(self) -> None: ...

    @abstractmethod
    def restart_devnet(self) -> None: ...

    def close(self) -> None:  # noqa: B027 - most targets start nothing of their own
        """Give back anything this target started for the scenario."""

    # -- shared actions --------------------------------------------------------------------------------

    def set_price(self, price: Decimal) -> None:
        self._owner_tx(lambda account: set_price(account, self.contracts["oracle"], price))

    def set_vault_paused(self, paused: bool) -> None:
        self._owner_tx(lambda account: invoke(account, self.contracts["vault"], "pause" if paused else "unpause", []))

    def _owner_tx(self, send: Callable[[Account], Coroutine[Any, Any, int]], attempts: int = 4) -> None:
        """Send as the owner, again with a fresh nonce if the devnet said ours was stale.

        Seen here: right after another owner transaction was accepted, the devnet sometimes still hands
        out the previous nonce for a moment.
        """
        for attempt in range(attempts):
            try:
                run_async(lambda: send(self.owner_account()))
                return
            except ClientError as exc:
                if not is_nonce_error(str(exc)) or attempt == attempts - 1:
                    raise
                time.sleep(0.5 * (attempt + 1))

    def starknet(self) -> StarknetClient:
        """Reads (balances, price, is_payment_used); the caller closes it."""
        return StarknetClient(self.operator_config())

    def events(self, from_block: int, keys: list[list[int | str]]) -> list[Any]:
        """Every vault event with these keys since `from_block` (all pages)."""
        return run_async(lambda: _vault_events(self.rpc_url, self.contracts["vault"], from_block, keys))

    def block_number(self) -> int:
        return run_async(lambda: FullNodeClient(node_url=self.rpc_url).get_block_number())

    def wait_payer_routes(self) -> None:
        """Return once payer -> router -> merchant carries an HTLC again, without moving any sats.

        The probe pays a random hash the merchant does not know: the merchant's "incorrect payment details"
        proves the route works, and the HTLC is failed back, so no balance changes (a real probe payment
        would break the runner's exact balance accounting).
        """
        wait_until(self._probe_reaches_merchant, timeout=Timeouts.GRAPH_SYNC, what="payer -> merchant route",
                   transient=(LndError, OSError), interval=1)

    def _probe_reaches_merchant(self) -> bool:
        payer = self.lnd("payer")
        merchant_pubkey = self.lnd("merchant").get_info()["identity_pubkey"]
        result = payer.probe(merchant_pubkey, 1_000)
        if result.get("failure_reason") == "FAILURE_REASON_INCORRECT_PAYMENT_DETAILS":
            return True
        payer.reset_mission_control()  # a failure during the restart must not steer routing away for an hour
        return False


class PauseLog:
    """The service's own word that it reached its fault pause: its log, from where this object was made."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = path.stat().st_size if path.exists() else 0

    def pauses(self, checkpoint: Checkpoint) -> list[str]:
        """The pause lines at `checkpoint` logged since, oldest first."""
        if not self.path.exists():
            return []
        with self.path.open("rb") as log:
            log.seek(self.offset)
            text = log.read().decode(errors="replace")
        return [line.strip() for line in text.splitlines()
                if (found := PAUSE_LINE.search(line)) and found["checkpoint"] == checkpoint]


@contextlib.contextmanager
def proxy_fault(faults: FaultClient, fault: Fault) -> Iterator[dict[str, Any]]:
    """`fault` on its proxy for the length of a `with` block, undone even when the block raises.

    The dict it yields gets the evidence on the way out, from toxiproxy's own counters: connections it
    accepted and bytes it counted on that proxy while the fault was on (an outage: until just after the
    restore, since the connections a cut drops are counted as they close).
    """
    assert fault.proxy is not None
    before = _counters(faults, fault.proxy)
    evidence: dict[str, Any] = {}
    try:
        with _fault_on(faults, fault) as put:
            evidence["put"] = asdict(put)  # the toxic, or the proxy as the cut left it (enabled: false)
            yield evidence
    finally:
        if fault.kind is FaultKind.PROXY_OUTAGE:
            time.sleep(OUTAGE_GRACE_S)
        evidence |= _moved(before, _counters(faults, fault.proxy))


def _fault_on(faults: FaultClient, fault: Fault) -> contextlib.AbstractContextManager[Toxic | Proxy]:
    assert fault.proxy is not None
    if fault.kind is FaultKind.PROXY_LATENCY:
        return faults.fault(fault.proxy, "latency", {"latency": fault.latency_ms, "jitter": 0},
                            stream=fault.stream or "downstream")
    return faults.outage(fault.proxy)


def _counters(faults: FaultClient, proxy: str) -> tuple[int | None, Traffic]:
    try:
        accepted: int | None = faults.connections(proxy)
    except FaultError:  # a client without toxiproxy's log: bytes are the only evidence
        accepted = None
    return accepted, faults.traffic(proxy)


def _moved(before: tuple[int | None, Traffic], after: tuple[int | None, Traffic]) -> dict[str, Any]:
    connections = None if before[0] is None or after[0] is None else after[0] - before[0]
    moved = after[1] - before[1]
    return {"connections": connections, "bytes": moved.total, "traffic": vars(moved)}


def run_async(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from sync code, also where an event loop already runs (a notebook's
    kernel), by giving it a fresh loop on a short-lived thread."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="async") as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


async def _vault_events(rpc_url: str, vault: int, from_block: int, keys: list[list[int | str]]) -> list[Any]:
    client = FullNodeClient(node_url=rpc_url)
    found: list[Any] = []
    token: str | None = None
    while True:
        chunk = await client.get_events(address=vault, keys=keys, from_block_number=from_block,
                                        to_block_number="latest", continuation_token=token, chunk_size=500)
        found.extend(chunk.events)
        token = chunk.continuation_token
        if not token:
            return found


class NetworkTarget(Target):
    """The in-process network (pytest's `network` fixture, or one the CLI started with --own-network)."""

    def __init__(self, network: Network) -> None:
        assert network.service is not None and network.contracts is not None and network.devnet is not None
        self.network = network
        self.contracts = dict(vars(network.contracts))
        self.rpc_url = network.devnet.rpc_url
        self.users = [user["address"] for user in network.users]
        self.block_time = network.starknet_block_time
        self.restarts_nodes = True

    @property
    def service_url(self) -> str:
        assert self.network.service is not None
        return self.network.service.url

    def lnd(self, name: str) -> HarnessLndClient:
        return self.network.nodes[name].client()

    def owner_account(self) -> Account:
        return self.network.owner_account()

    def operator_config(self) -> StarknetConfig:
        return self.network.starknet_config()

    def restart_service(self, env: dict[str, str]) -> None:
        assert self.network.service is not None
        self.network.service.restart(dict(env))

    def kill_service(self) -> int | None:
        assert self.network.service is not None
        pid = self.network.service.pid
        self.network.service.kill()
        return pid

    def service_log(self) -> Path:
        assert self.network.service is not None
        return self.network.service.log_path

    def fault_client(self) -> FaultClient:
        if self.network.faults is None:
            raise UnsupportedFault("this network has no fault proxy: start it with Network(fault_proxy=True) "
                                   "(pytest: the realistic_network fixture; the CLI's --own-network does it for "
                                   "a scenario with proxy faults)")
        return self.network.faults

    def restart_merchant(self) -> None:
        self.network.merchant.restart()
        self.network.wait_channels_active()
        self.wait_payer_routes()

    def restart_devnet(self) -> None:
        assert self.network.devnet is not None
        self.network.devnet.restart()


class StateTarget(Target):
    """A network another process runs, described by its `state.json`."""

    def __init__(self, path: Path | None = None) -> None:
        self.state_file = path or state_path()
        self.state = read_state(self.state_file)
        starknet = self.state.get("starknet")
        if not starknet:
            raise UnsupportedFault(f"{self.state_file} describes a network without Starknet; scenarios need the vault")
        self.contracts = {name: int(address, 16) for name, address in starknet["contracts"].items()}
        self.rpc_url = starknet["rpc_url"]
        self.users = [user["address"] for user in starknet["users"]]
        self.block_time = starknet.get("block_time")
        self.restarts_nodes = False
        self._clients: dict[str, HarnessLndClient] = {}
        self._own_service: VoltaService | None = None
        self._faults: FaultClient | None = None

    @property
    def service_url(self) -> str:
        if self._own_service is not None:
            return self._own_service.url
        if "service" not in self.state:
            raise UnsupportedFault(f"{self.state_file} has no running service")
        return self.state["service"]["url"]

    def lnd(self, name: str) -> HarnessLndClient:
        if name not in self._clients:
            self._clients[name] = HarnessLndClient.from_state(self.state["lightning"]["nodes"][name])
        return self._clients[name]

    def owner_account(self) -> Account:
        owner = self.state["starknet"]["owner"]
        return make_account(self.rpc_url, owner["address"], Path(owner["private_key_file"]).read_text().strip())

    def operator_config(self) -> StarknetConfig:
        return operator_starknet_config(self.state)

    def restart_service(self, env: dict[str, str]) -> None:
        """Our own service on the shared network, so its settings and its crashes touch nobody else."""
        if self._own_service is None:
            workdir = Path(tempfile.mkdtemp(prefix="volta-scenario-service-"))
            self._own_service = VoltaService(workdir, self._service_state_file(workdir), name="scenario-service")
            self._own_service.extra_env = dict(env)
            self._own_service.start()
            return
        self._own_service.restart(dict(env))

    def _service_state_file(self, workdir: Path) -> Path:
        """`state.json` for our service: through the fault proxies when the network has them."""
        if "faults" not in self.state:
            return self.state_file
        return write_state(through_proxies(self.state), workdir / "service-state.json")

    def kill_service(self) -> int | None:
        if self._own_service is None:
            raise UnsupportedFault("the supervisor's service is not ours to kill; restart_service first")
        pid = self._own_service.pid
        self._own_service.kill()
        return pid

    def service_log(self) -> Path:
        if self._own_service is None:
            raise UnsupportedFault("the supervisor's service log is not ours to watch; restart_service first")
        return self._own_service.log_path

    def fault_client(self) -> FaultClient:
        if self._faults is None:
            try:
                self._faults = fault_client(self.state)
            except KeyError as exc:
                raise UnsupportedFault(f"{self.state_file}: {exc.args[0]}") from None
        return self._faults

    def restart_merchant(self) -> None:
        raise UnsupportedFault("restart_merchant needs a network this process owns: run with --own-network")

    def restart_devnet(self) -> None:
        raise UnsupportedFault("restart_devnet needs a network this process owns: run with --own-network")

    def close(self) -> None:
        if self._own_service is not None:
            self._own_service.stop()
            shutil.rmtree(self._own_service.workdir, ignore_errors=True)
            self._own_service = None
        for client in self._clients.values():
            client.close()
        self._clients.clear()
        if self._faults is not None:
            self._faults.close()
            self._faults = None


def through_proxies(state: dict[str, Any]) -> dict[str, Any]:
    """`state` with the devnet RPC and the merchant's REST reached through their fault proxies.

    Only host and port change (scheme and path stay), as in `Network.service_state`: lnd's TLS passes
    through toxiproxy and its certificate is for 127.0.0.1.
    """
    proxies = state["faults"]["proxies"]
    changed = json.loads(json.dumps(state))
    merchant = changed["lightning"]["nodes"]["merchant"]
    merchant["rest_url"] = _with_address(merchant["rest_url"], proxies[MERCHANT_PROXY]["listen"])
    changed["starknet"]["rpc_url"] = _with_address(changed["starknet"]["rpc_url"], proxies[DEVNET_PROXY]["listen"])
    return changed


def _with_address(url: str, listen: str) -> str:
    return urlsplit(url)._replace(netloc=listen).geturl()
