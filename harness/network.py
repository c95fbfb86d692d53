"""The regtest network: btcd plus lnd nodes, by default three in a line, payer -> router -> merchant (more
payers and routers, in a line or a star: harness/topology.py), and a Starknet devnet with VOLTA's contracts
deployed.

`Network` owns every process it starts and tears all of them down on exit, on an exception and on
Ctrl-C. Processes are registered for teardown before they are started, as in lnd's lntest, so a
failed start is cleaned up too.

Optionally the devnet closes blocks on a timer or on demand (`starknet_block_time`), and a toxiproxy sits
between the service and its two dependencies (`fault_proxy`): the service then reaches the devnet RPC and
the merchant's lnd REST only through the proxies `devnet_rpc` and `merchant_lnd`, while `state.json` keeps
the direct addresses, so tests still judge from outside.

The service runs as one process on SQLite by default; scaled out (harness/scale.py: `api_instances`,
`workers`, `database`) it is that many API instances behind nginx and that many workers, on a PostgreSQL and a
Redis of the network's own, sharing one preimage key file and one history session key.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import tempfile
import time
from dataclasses import replace
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

from starknet_py.net.account.account import Account

from harness.btcd import Btcd
from harness.contracts.deploy import DeployedContracts, deploy_all_sync, make_account
from harness.devnet import MAX_MINT_LANES, USER_ACCOUNTS, Devnet, block_generation
from harness.faults import FaultClient, Proxy, Toxiproxy
from harness.lnd import Lnd
from harness.nginx import Nginx
from harness.postgres import Postgres
from harness.process import ManagedProcess, ProcessError
from harness.redis import Redis
from harness.scale import Database, ServiceScale
from harness.service_process import ServiceProcess, VoltaService, VoltaWorker
from harness.state import operator_starknet_config, write_state
from harness.tools import locate
from harness.topology import Shape, Topology
from harness.util import Timeouts, WaitTimeout, wait_until
from service.lightning.lnd_rest import LndError
from service.starknet.client import StarknetConfig

log = logging.getLogger("harness.network")

# The proxies the service's traffic goes through when the network runs with `fault_proxy=True`.
DEVNET_PROXY = "devnet_rpc"
MERCHANT_PROXY = "merchant_lnd"
# 500 purchases of 100,000 sat each need 0.5 BTC of outbound on both hops, plus reserve and fees.
CHANNEL_CAPACITY_SAT = 100_000_000
# What the first payer sends every other node that opens a channel: the channel, fees, and a wallet to spare.
OPENER_FUNDING_SAT = 5 * CHANNEL_CAPACITY_SAT // 2
COINBASE_MATURITY = 100
# How often a block is mined while waiting for lnd to follow a restarted btcd: long enough for a loaded
# lnd to take one block before the next moves the tip.
CHAIN_NUDGE_INTERVAL_S = 3.0
INITIAL_BTC_USD = Decimal("97000.00")


class Network:
    """btcd and the merchant, payer(s) and router(s) lnd nodes, funded, connected and routable."""

    def __init__(
        self,
        run_dir: Path | None = None,
        keep_run_dir: bool = False,
        starknet: bool = True,
        service: bool = True,
        starknet_block_time: float | None = None,
        fault_proxy: bool = False,
        payers: int = 1,
        routers: int = 1,
        topology: Shape = "line",
        api_instances: int = 1,
        workers: int = 0,
        database: Database = "sqlite",
        mint_lanes: int = 1,
    ) -> None:
        """`starknet_block_time`: None closes a block per transaction, 0 only on demand
        (`devnet.create_block()`), N > 0 every N seconds. `fault_proxy`: route the service through toxiproxy.
        `payers`, `routers`, `topology`: the Lightning nodes and how they are joined (harness/topology.py).
        `api_instances`, `workers`, `database`: the service's processes and their database (harness/scale.py);
        by default one process on SQLite. `mint_lanes`: operator accounts the vault accepts mints from, each a
        lane with its own nonce, leased to one worker at a time."""
        if not 1 <= mint_lanes <= MAX_MINT_LANES:
            raise ValueError(f"mint_lanes must be 1 to {MAX_MINT_LANES}, not {mint_lanes}")
        self.mint_lanes = mint_lanes
        self.topology = Topology(payers, routers, topology)  # an impossible one fails before anything starts
        self.scale = ServiceScale(api_instances, workers, database)  # so does an impossible scale
        self.run_dir = run_dir or Path(tempfile.mkdtemp(prefix="volta-regtest-"))
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.keep_run_dir = keep_run_dir
        self.processes: list[ManagedProcess] = []
        self.btcd: Btcd | None = None
        self.nodes: dict[str, Lnd] = {}
        self.with_starknet = starknet
        self.with_service = service and starknet
        if self.with_service:
            self.scale.programs()  # a missing postgres, redis-server or nginx fails before anything starts
        # The service as one process (API and worker); None when scaled out, see `api_services` and `workers`.
        self.service: VoltaService | None = None
        self.api_services: list[VoltaService] = []  # scaled out: the API instances behind nginx
        self.workers: list[VoltaWorker] = []  # scaled out: the workers
        self.nginx: Nginx | None = None
        self.postgres: Postgres | None = None
        self.redis: Redis | None = None
        self.preimage_key_file: Path | None = None  # the key every service process derives preimages from
        self.devnet: Devnet | None = None
        self.contracts: DeployedContracts | None = None
        self.starknet_accounts: list[dict[str, str]] = []
        self.starknet_block_time = starknet_block_time
        block_generation(starknet_block_time)  # an impossible block time fails before anything starts
        self.with_fault_proxy = fault_proxy
        self.toxiproxy: Toxiproxy | None = None
        self.faults: FaultClient | None = None
        self.fault_proxies: dict[str, Proxy] = {}
        self.timings: dict[str, float] = {}

    # -- context management ---------------------------------------------------------------------------

    def __enter__(self) -> Network:
        try:
            self.start()
        except BaseException:
            self.stop(failed=True)
            raise
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.stop(failed=exc_type is not None)

    # -- bring-up ---------------------------------------------------------------------------------------

    def start(self) -> None:
        started = time.monotonic()
        if self.with_service and self.scale.database == "postgres":
            self._spawn_stores()  # ready by the time Lightning and the devnet are
        self._start_chain()
        self._start_nodes()
        self._fund_openers()
        self._open_channels()
        self.wait_routable()
        self.timings["lightning_up_s"] = time.monotonic() - started
        if self.with_starknet:
            self._start_starknet()
        if self.with_fault_proxy:
            self._start_fault_proxy()
        if self.with_service:
            self._start_service()
        self.timings["bring_up_s"] = time.monotonic() - started

    def _register(self, process: ManagedProcess) -> None:
        self.processes.append(process)

    def _start_chain(self) -> None:
        """btcd, mining to the payer's wallet.

        btcd fixes its mining address at start, and the payer's lnd hands out that address only once it
        runs against a btcd: so btcd starts, the payer starts and gives an address, the payer stops, and
        btcd restarts with it, before any block is mined (btcd 0.26 comes back from a restart at height 0,
        having lost the blocks it had mined). No lnd runs across btcd's restart: one that reconnected lost
        its wallet's rescan now and then (its log: "Received unexpected reply: null" right after "Started
        rescan"), stayed unsynced at the tip for good, and failed the bring-up (in two CI runs).
        """
        btcd_bin = locate("btcd")["btcd"]
        self.btcd = Btcd(btcd_bin, self.run_dir / "btcd")
        self._register(self.btcd)
        self.btcd.start()
        payer = self.nodes["payer"] = self._new_node("payer")
        payer.spawn()
        payer.wait_ready(synced=False)
        mining_address = payer.client().new_address()
        payer.stop()
        self.btcd.restart(mining_address=mining_address)

    def _start_nodes(self) -> None:
        # In the topology's order; the payer is there already (it gave btcd its mining address).
        self.nodes = {name: self.nodes.get(name) or self._new_node(name) for name in self.topology.node_names}
        for node in self.nodes.values():
            node.spawn()  # every node launches before we wait on any: they start side by side
        # Not synced yet: genesis is from 2011 and lnd wants a tip younger than two hours.
        for node in self.nodes.values():
            node.wait_ready(synced=False)

    def _new_node(self, name: str) -> Lnd:
        """An lnd on the chain, registered so that teardown stops it; not started."""
        assert self.btcd is not None
        node = Lnd(locate("lnd")["lnd"], self.run_dir / name, name, self.btcd)
        self._register(node)
        return node

    def _fund_openers(self) -> None:
        """Mine coinbases to the payer (btcd's mining address), which sends every other node that opens a
        channel its funds."""
        payer = self.payer.client()
        recipients = [self.nodes[name] for name in self._openers() if name != self.payer.name]
        self._wait_nodes_follow_chain()
        # One mature 50 BTC coinbase per send: lnd spends only confirmed outputs, and the change of one send
        # is unconfirmed until the next block.
        self.mine(COINBASE_MATURITY + 10 + len(recipients))
        wait_until(lambda: payer.wallet_balance_sat() > 0, timeout=Timeouts.CHAIN_SYNC, what="payer funds")
        for node in recipients:
            payer.send_coins(node.client().new_address(), OPENER_FUNDING_SAT)
        self.mine(1)
        for node in recipients:
            wait_until(partial(lambda client: client.wallet_balance_sat() > 0, node.client()),
                       timeout=Timeouts.CHAIN_SYNC, what=f"[{node.name}] funds from the payer")

    def _openers(self) -> list[str]:
        return list(dict.fromkeys(opener for opener, _ in self.topology.channels()))

    def _wait_nodes_follow_chain(self) -> None:
        """lnd calls itself synced only with a tip younger than two hours, and takes a block only once its
        wallet has synced: mine a block every few seconds until every node reports the tip and is synced.

        Checks run between blocks, not right after one: mining on every check raced a loaded machine,
        where lnd takes longer than a fixed pause to take a block, so the tip moved on every time.
        """
        assert self.btcd is not None and self.btcd.rpc is not None
        rpc = self.btcd.rpc
        last_block_at = 0.0
        lagging: dict[str, str] = {}

        def caught_up() -> bool:
            nonlocal last_block_at
            if time.monotonic() - last_block_at >= CHAIN_NUDGE_INTERVAL_S:
                rpc.generate(1)
                last_block_at = time.monotonic()
            height = rpc.block_count()
            lagging.clear()
            for name, node in self.nodes.items():
                info = node.client().get_info()
                if info["block_height"] != height or not info["synced_to_chain"]:
                    lagging[name] = f"height {info['block_height']} of {height}, synced={info['synced_to_chain']}"
            return not lagging

        try:
            wait_until(caught_up, timeout=2 * Timeouts.CHAIN_SYNC, what="every lnd to follow btcd",
                       transient=(LndError,), interval=0.5)
        except WaitTimeout as exc:
            raise WaitTimeout(f"{exc}; still behind: {lagging or 'lnd did not answer'}") from exc

    def _open_channels(self) -> None:
        channels = [(self.nodes[opener], self.nodes[peer]) for opener, peer in self.topology.channels()]
        for opener, peer in channels:
            opener.client().connect(peer.pubkey, peer.p2p_host)
        for opener, peer in channels:
            self._open_channel_when_peer_ready(opener, peer)
        # Six confirmations make the channels public; gossip then tells each payer of the channels beyond
        # its own.
        self.mine(6)

    def wait_channels_active(self) -> None:
        def active_channels(node: Lnd) -> int:
            return len(node.client().list_channels(active_only=True))

        for name, count in self.topology.channel_counts().items():
            wait_until(
                partial(lambda node, count: active_channels(node) >= count, self.nodes[name], count),
                timeout=Timeouts.CHANNEL_OPEN,
                what=f"[{name}] {count} active channel(s)",
                transient=(LndError,),
            )

    def _open_channel_when_peer_ready(self, opener: Lnd, peer: Lnd) -> None:
        # Right after connecting, lnd may still say the peer is not online or is syncing: retry briefly.
        wait_until(
            lambda: opener.client().open_channel(peer.pubkey, CHANNEL_CAPACITY_SAT),
            timeout=Timeouts.CHANNEL_OPEN,
            what=f"[{opener.name}] channel to {peer.name} accepted",
            transient=(LndError,),
            interval=0.5,
        )

    def wait_routable(self) -> None:
        """Return only when a real payment goes from every payer to the merchant (also after a restart)."""
        self.wait_channels_active()
        for payer in self.payers:
            wait_until(
                partial(self._probe_payment_succeeds, payer),
                timeout=Timeouts.GRAPH_SYNC,
                what=f"a 1,000 sat payment {payer.name} -> merchant ({self.topology.hops()} hops) to succeed",
                transient=(LndError,),
                interval=0.5,
            )

    def _probe_payment_succeeds(self, payer_node: Lnd) -> bool:
        invoice = self.merchant.client().add_invoice(1_000_000, memo=f"harness probe from {payer_node.name}")
        payer = payer_node.client()
        if payer.pay(invoice["payment_request"], timeout_s=10).get("status") == "SUCCEEDED":
            return True
        # A failure right after a restart would make mission control shun the route for an hour.
        payer.reset_mission_control()
        return False

    def _start_starknet(self) -> None:
        started = time.monotonic()
        self.devnet = Devnet(locate("starknet-devnet")["starknet-devnet"], self.run_dir / "devnet",
                             block_time=self.starknet_block_time)
        self._register(self.devnet)
        self.devnet.start()
        self.timings["devnet_start_s"] = time.monotonic() - started
        self.starknet_accounts = self.devnet.predeployed_accounts()
        started = time.monotonic()
        owner = self.owner_account()
        # starknet-py waits for ACCEPTED_ON_L2: in demand mode that needs blocks, in interval mode it
        # would take a block time per transaction. Close blocks quickly while the harness deploys.
        with self.devnet.blocks_closing():
            self.contracts = deploy_all_sync(owner, int(self.operator["address"], 16), INITIAL_BTC_USD,
                                             [int(lane["address"], 16) for lane in self.lane_operators])
        self.timings["declare_deploy_s"] = time.monotonic() - started

    def _start_fault_proxy(self) -> None:
        self.toxiproxy = Toxiproxy(locate("toxiproxy")["toxiproxy-server"], self.run_dir / "toxiproxy")
        self._register(self.toxiproxy)
        self.toxiproxy.start()
        self.faults = self.toxiproxy.client()
        upstreams = {MERCHANT_PROXY: f"127.0.0.1:{self.merchant.rest_port}"}
        if self.devnet is not None:
            upstreams[DEVNET_PROXY] = f"127.0.0.1:{self.devnet.port}"
        for name, upstream in upstreams.items():
            self.fault_proxies[name] = self.faults.create_proxy(name, upstream)

    def _spawn_stores(self) -> None:
        """PostgreSQL (initdb on its first start) and Redis, launched without waiting: `_start_service` waits."""
        started = time.monotonic()
        self.postgres = Postgres(self.run_dir / "postgres")
        self._register(self.postgres)
        self.postgres.spawn()
        self.redis = Redis(self.run_dir / "redis")
        self._register(self.redis)
        self.redis.spawn()
        self.timings["stores_spawn_s"] = time.monotonic() - started

    def _start_service(self) -> None:
        started = time.monotonic()
        state_file = write_state(self.state(), self.run_dir / "state.json")
        if self.faults is not None:
            state_file = write_state(self.service_state(), self.run_dir / "service-state.json")
        if self.postgres is not None and self.redis is not None:
            self.postgres.wait_ready()
            self.redis.wait_ready()
        shared_env = self._shared_service_env()
        if not self.scale.scaled:
            self.service = VoltaService(self.run_dir / "service", state_file, database_url=self._shared_database_url(),
                                        shared_env=shared_env)
            self._register(self.service)
            self.service.start()
        else:
            self._start_scaled_service(state_file, shared_env)
        self.timings["service_start_s"] = time.monotonic() - started

    def _shared_database_url(self) -> str | None:
        """PostgreSQL's URL when the network has one; None lets a single service keep its own SQLite file."""
        return self.postgres.url if self.postgres is not None else None

    def _shared_service_env(self) -> dict[str, str]:
        """Settings every service process gets alike on a shared database: the rate limiter's store (which also
        holds the history sign-in's used challenges), Redis for events between processes, one preimage key, one
        history session key. Empty for a single service on SQLite (its key file sits beside its database)."""
        if self.redis is None:
            return {}
        self.preimage_key_file = self.run_dir / "preimage.key"
        if not self.preimage_key_file.exists():
            descriptor = os.open(self.preimage_key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as key_file:
                key_file.write(secrets.token_hex(32) + "\n")
        return {
            "VOLTA_RATE_LIMIT_STORAGE_URL": self.redis.url,
            "VOLTA_REDIS_URL": self.redis.url,
            "VOLTA_PREIMAGE_KEY_FILE": str(self.preimage_key_file),
            "VOLTA_HISTORY_SESSION_KEY": secrets.token_hex(32),
        }

    def _start_scaled_service(self, state_file: Path, shared_env: dict[str, str]) -> None:
        """The schema first (once, here: instances migrating side by side would race), then every API instance
        and worker launched before any is awaited, then nginx in front of the API instances."""
        from service.storage.database import migrate

        database_url = self._shared_database_url()
        assert database_url is not None, "a scaled-out service runs on PostgreSQL (ServiceScale checks)"
        migrate(database_url)
        inbound_webhook_secret = secrets.token_hex(16)  # a notice may reach any instance
        # nginx appends the client to X-Forwarded-For: one hop back is the client, for limits per IP.
        behind_nginx = {**shared_env, "VOLTA_PROXY_HOPS": "1"}
        for name in self.scale.api_names:
            api = VoltaService(self.run_dir / name, state_file, name, run_worker=False, database_url=database_url,
                               shared_env=behind_nginx, inbound_webhook_secret=inbound_webhook_secret)
            self.api_services.append(api)
        # Each worker leases its share of the mint lanes, so every worker has one to send from.
        lanes_each = -(-self.mint_lanes // max(1, len(self.scale.worker_names)))
        worker_env = {**shared_env, "VOLTA_MINT_LANES_PER_WORKER": str(lanes_each)}
        for name in self.scale.worker_names:
            worker = VoltaWorker(self.run_dir / name, state_file, name, database_url=database_url,
                                 shared_env=worker_env, inbound_webhook_secret=inbound_webhook_secret)
            self.workers.append(worker)
        processes: list[ServiceProcess] = [*self.api_services, *self.workers]
        for process in processes:
            self._register(process)
            process.spawn()
        for process in processes:
            process.wait_ready()
        self.nginx = Nginx(self.run_dir / "nginx", [f"127.0.0.1:{api.port}" for api in self.api_services])
        self._register(self.nginx)
        self.nginx.start()

    @property
    def service_url(self) -> str:
        """Where buyers reach the service: nginx when scaled out, else the one service process."""
        if self.nginx is not None:
            return self.nginx.url
        assert self.service is not None, "the network was started without the service"
        return self.service.url

    @property
    def database_url(self) -> str:
        """The service's database (PostgreSQL when the network has one; never carries a password)."""
        if self.postgres is not None:
            return self.postgres.url
        assert self.service is not None, "the network was started without the service"
        return self.service.database_url

    @property
    def service_processes(self) -> list[ServiceProcess]:
        """Every process of the service: the single one, or the API instances and the workers."""
        return [self.service] if self.service is not None else [*self.api_services, *self.workers]

    @property
    def owner(self) -> dict[str, str]:
        return self.starknet_accounts[0]

    @property
    def operator(self) -> dict[str, str]:
        return self.starknet_accounts[1]

    @property
    def users(self) -> list[dict[str, str]]:
        return self.starknet_accounts[2:2 + USER_ACCOUNTS]

    @property
    def lane_operators(self) -> list[dict[str, str]]:
        """The operators of the mint lanes beyond the first (whose operator is `operator`)."""
        first = 2 + USER_ACCOUNTS
        return self.starknet_accounts[first:first + self.mint_lanes - 1]

    def starknet_config(self, operator: dict[str, str] | None = None) -> StarknetConfig:
        """How the service reaches the devnet's contracts (built as the service builds it, from this network's
        state), signing as the operator or as another account."""
        config = operator_starknet_config(self.state())
        if operator is None:
            return config
        return replace(config, operator_address=int(operator["address"], 16),
                       operator_private_key=int(operator["private_key"], 16))

    def owner_account(self) -> Account:
        assert self.devnet is not None
        return make_account(self.devnet.rpc_url, self.owner["address"], self.owner["private_key"])

    # -- operations ---------------------------------------------------------------------------------------

    @property
    def merchant(self) -> Lnd:
        return self.nodes["merchant"]

    @property
    def payer(self) -> Lnd:
        return self.nodes["payer"]

    @property
    def router(self) -> Lnd:
        return self.nodes["router"]

    @property
    def payers(self) -> list[Lnd]:
        """payer, payer2, …"""
        return [self.nodes[name] for name in self.topology.payer_names]

    @property
    def routers(self) -> list[Lnd]:
        """router, router2, …"""
        return [self.nodes[name] for name in self.topology.router_names]

    def mine(self, blocks: int) -> None:
        """Mine and wait until every running node has seen the new tip."""
        assert self.btcd is not None and self.btcd.rpc is not None
        self.btcd.mine(blocks)
        height = self.btcd.rpc.block_count()
        for node in self.nodes.values():
            if node.is_running() and node.rest is not None:
                node.wait_synced_to_height(height)

    def state(self) -> dict[str, Any]:
        """The `state.json` contract for tools, notebooks and outside tests (see README)."""
        assert self.btcd is not None
        state: dict[str, Any] = {
            "bitcoin": self.btcd.state(),
            "lightning": {"kind": "lnd", "nodes": {name: node.state() for name, node in self.nodes.items()},
                          "topology": self.topology.state()},
            "run_dir": str(self.run_dir),
            "pids": {process.name: process.pid for process in self.processes if process.pid},
        }
        if self.devnet is not None and self.contracts is not None:
            state["starknet"] = self._starknet_state()
        if self.service_processes:
            state["service"] = self._service_state()
        if self.toxiproxy is not None:
            state["faults"] = self.toxiproxy.state(self.fault_proxies)
        return state

    def _service_state(self) -> dict[str, Any]:
        service: dict[str, Any] = {"url": self.service_url, "database_url": self.database_url,
                                   "scale": self.scale.state()}
        if self.preimage_key_file is not None:
            service["preimage_key_file"] = str(self.preimage_key_file)
        if self.redis is not None:
            service["redis_url"] = self.redis.url
        if self.nginx is not None:
            service["nginx"] = self.nginx.state()
            service["api"] = {api.name: {"url": api.url, "pid": api.pid} for api in self.api_services}
            service["workers"] = {worker.name: {"pid": worker.pid} for worker in self.workers}
        return service

    def service_state(self) -> dict[str, Any]:
        """`state.json` as the service sees it: the devnet RPC and the merchant's REST through the proxies.

        Only host and port change; lnd's TLS passes through toxiproxy untouched and its certificate is for
        127.0.0.1, so the service still verifies it.
        """
        state = self.state()
        merchant = state["lightning"]["nodes"]["merchant"]
        merchant["rest_url"] = self.fault_proxies[MERCHANT_PROXY].url("https")
        if "starknet" in state and DEVNET_PROXY in self.fault_proxies:
            state["starknet"]["rpc_url"] = self.fault_proxies[DEVNET_PROXY].url("http", "/rpc")
        return state

    def _starknet_state(self) -> dict[str, Any]:
        assert self.devnet is not None and self.contracts is not None
        return {
            "rpc_url": self.devnet.rpc_url,
            "chain_id": self.devnet.chain_id(),
            "block_time": self.starknet_block_time,
            "contracts": {name: hex(address) for name, address in vars(self.contracts).items()},
            "owner": {"address": self.owner["address"], "private_key_file": str(self._key_file("owner", self.owner))},
            "operator": {
                "address": self.operator["address"],
                "private_key_file": str(self._key_file("operator", self.operator)),
            },
            "mint_lanes": [{"address": lane["address"], "private_key_file": str(self._key_file(f"lane{i}", lane))}
                           for i, lane in enumerate(self.lane_operators, start=2)],
            "users": [{"address": user["address"], "private_key": user["private_key"]} for user in self.users],
        }

    def _key_file(self, role: str, account: dict[str, str]) -> Path:
        path = self.run_dir / "devnet" / f"{role}.key"
        path.touch(mode=0o600)
        path.write_text(account["private_key"])
        return path

    # -- teardown ---------------------------------------------------------------------------------------

    def stop(self, failed: bool = False) -> None:
        """Stop every process, newest first, and check how each ended; keep the run directory when something
        failed. A process that did not stop cleanly is reported after all the others are stopped: raised, or
        only logged when the network is already coming down because of an error (`failed`), which must
        not be hidden behind this one."""
        if self.faults is not None:
            self.faults.close()
        unclean: list[str] = []
        for process in reversed(self.processes):
            try:
                process.stop()
            except ProcessError as exc:  # stopped (killed if need be), but not cleanly
                unclean.append(str(exc))
            except Exception:  # keep stopping the others; one stuck node must not leak the rest
                log.exception("[%s] stop failed; killing", process.name)
                with contextlib.suppress(Exception):
                    process.kill()
        for process in self.processes:
            process.discard()
        if failed or self.keep_run_dir or unclean:
            log.warning("run directory kept for inspection: %s", self.run_dir)
        else:
            shutil.rmtree(self.run_dir, ignore_errors=True)
        if not unclean:
            return
        report = "\n".join(unclean) + f"\n(logs in {self.run_dir})"
        if failed:
            log.error("processes that did not stop cleanly:\n%s", report)
        else:
            raise ProcessError(f"processes that did not stop cleanly:\n{report}")
