"""What a scenario runs against: the session's in-process `Network`, or a network described by `state.json`.

Both give the same handles (service URL, lnd clients, the vault, the oracle) and the same fault actions.
A `state.json` network belongs to another process (`python -m harness up`), so this process cannot restart
its nodes or devnet; it runs its own service instance on that network when a scenario needs service
settings or kills the service (the supervisor's service keeps its own database and orders).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import shutil
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from starknet_py.net.account.account import Account
from starknet_py.net.client_errors import ClientError
from starknet_py.net.full_node_client import FullNodeClient

from harness.contracts.deploy import invoke, make_account, set_price
from harness.network import Network
from harness.service_process import VoltaService
from harness.state import operator_starknet_config, read_state, state_path
from harness.util import Timeouts, wait_until
from service.lightning.lnd_rest import LndError, LndRestClient
from service.starknet.client import StarknetClient, StarknetConfig

T = TypeVar("T")


class UnsupportedFault(RuntimeError):
    """This target cannot inject that fault (e.g. restarting a node of a network another process owns)."""


class Target(ABC):
    """The network a scenario drives, and the faults it can inject into it."""

    contracts: dict[str, int]
    rpc_url: str
    users: list[str]

    @property
    @abstractmethod
    def service_url(self) -> str: ...

    @abstractmethod
    def lnd(self, name: str) -> LndRestClient:
        """A live client for `payer`, `router` or `merchant` (a new one after that node restarted)."""

    @abstractmethod
    def owner_account(self) -> Account: ...

    @abstractmethod
    def operator_config(self) -> StarknetConfig: ...

    @abstractmethod
    def restart_service(self, env: dict[str, str]) -> None:
        """Stop the service (SIGTERM) and start it with these VOLTA_* settings."""

    @abstractmethod
    def kill_service(self) -> None: ...

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
                if "nonce" not in str(exc).lower() or attempt == attempts - 1:
                    raise
                time.sleep(0.5 * (attempt + 1))

    def starknet(self) -> StarknetClient:
        """Reads (balances, price, is_payment_used); the caller closes it."""
        return StarknetClient(self.operator_config())

    def events(self, from_block: int, keys: list[list[int]]) -> list[Any]:
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
        result = probe(payer, merchant_pubkey, 1_000)
        if result.get("failure_reason") == "FAILURE_REASON_INCORRECT_PAYMENT_DETAILS":
            return True
        payer.reset_mission_control()  # a failure during the restart must not steer routing away for an hour
        return False


def run_async(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from sync code, also where an event loop already runs (a notebook's
    kernel), by giving it a fresh loop on a short-lived thread."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="async") as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


def probe(payer: LndRestClient, dest_pubkey: str, amount_sat: int) -> dict[str, Any]:
    """Send an HTLC for an unknown hash. LndRestClient has no keysend/probe call, hence its plumbing."""
    body = {
        "dest": base64.b64encode(bytes.fromhex(dest_pubkey)).decode(),
        "amt": str(amount_sat),
        "payment_hash": base64.b64encode(hashlib.sha256(secrets.token_bytes(32)).digest()).decode(),
        "final_cltv_delta": 40,
        "timeout_seconds": 20,
        "fee_limit_sat": "100",
        "no_inflight_updates": True,
    }
    last: dict[str, Any] = {}
    for update in payer._stream("POST", "/v2/router/send", 60, json=body):
        last = update
        if update.get("status") in ("SUCCEEDED", "FAILED"):
            break
    return last


async def _vault_events(rpc_url: str, vault: int, from_block: int, keys: list[list[int]]) -> list[Any]:
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

    @property
    def service_url(self) -> str:
        assert self.network.service is not None
        return self.network.service.url

    def lnd(self, name: str) -> LndRestClient:
        return self.network.nodes[name].client()

    def owner_account(self) -> Account:
        return self.network.owner_account()

    def operator_config(self) -> StarknetConfig:
        return self.network.starknet_config()

    def restart_service(self, env: dict[str, str]) -> None:
        assert self.network.service is not None
        self.network.service.restart(dict(env))

    def kill_service(self) -> None:
        assert self.network.service is not None
        self.network.service.kill()

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
        self._clients: dict[str, LndRestClient] = {}
        self._own_service: VoltaService | None = None

    @property
    def service_url(self) -> str:
        if self._own_service is not None:
            return self._own_service.url
        if "service" not in self.state:
            raise UnsupportedFault(f"{self.state_file} has no running service")
        return self.state["service"]["url"]

    def lnd(self, name: str) -> LndRestClient:
        if name not in self._clients:
            self._clients[name] = LndRestClient.from_state(self.state["lightning"]["nodes"][name])
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
            self._own_service = VoltaService(workdir, self.state_file, name="scenario-service")
            self._own_service.extra_env = dict(env)
            self._own_service.start()
            return
        self._own_service.restart(dict(env))

    def kill_service(self) -> None:
        if self._own_service is None:
            raise UnsupportedFault("the supervisor's service is not ours to kill; restart_service first")
        self._own_service.kill()

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
