"""starknet-devnet (the Rust one): a local Starknet with fixed seed and accounts, dumped to disk so a
restart keeps its state.

Blocks close per transaction (devnet's default), every N seconds (as Starknet does, within about 2-9.5 s),
or only on `devnet_createBlock` (tests that must decide when a block closes). With the state archive on,
`devnet_abortBlocks` rolls blocks back, as a lost block would on a real network.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from harness.process import ManagedProcess
from harness.util import Timeouts, free_port

DEVNET_SEED = 42
USER_ACCOUNTS = 4
MAX_MINT_LANES = 8
# owner, operator, users, then the operators of mint lanes beyond the first
DEVNET_ACCOUNTS = 2 + USER_ACCOUNTS + MAX_MINT_LANES - 1
# How often `blocks_closing()` closes a block while the harness waits on its own transactions.
PUMP_INTERVAL_S = 0.2


class DevnetError(RuntimeError):
    pass


def block_generation(block_time: float | None) -> str:
    """The `--block-generation-on` value: None per transaction, 0 on demand, else whole seconds."""
    if block_time is None:
        return "transaction"
    if block_time == 0:
        return "demand"
    if block_time < 0 or block_time != int(block_time):
        raise ValueError(f"starknet-devnet closes blocks every whole number of seconds (>= 1), not {block_time}")
    return str(int(block_time))


class DevnetApi:
    """devnet's JSON-RPC, Starknet's and its own `devnet_*` methods; needs `name`, `rpc_url`, `block_generation`."""

    name: str
    block_generation: str

    @property
    def rpc_url(self) -> str:
        raise NotImplementedError

    def rpc(self, method: str, params: Any = None) -> Any:
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params or {}}
        reply = httpx.post(self.rpc_url, json=body, timeout=Timeouts.RPC).json()
        if "error" in reply:
            raise DevnetError(f"[{self.name}] {method}: {reply['error']}")
        return reply["result"]

    def predeployed_accounts(self) -> list[dict[str, str]]:
        return self.rpc("devnet_getPredeployedAccounts")

    def chain_id(self) -> str:
        return self.rpc("starknet_chainId")

    # -- blocks -----------------------------------------------------------------------------------------

    @property
    def per_transaction(self) -> bool:
        return self.block_generation == "transaction"

    def block_number(self) -> int:
        """The latest closed block's number (pre-confirmed transactions are not in it yet)."""
        return int(self.rpc("starknet_blockNumber"))

    def block_hash(self, number: int) -> str:
        return self.rpc("starknet_getBlockWithTxHashes", {"block_id": {"block_number": number}})["block_hash"]

    def create_block(self) -> str:
        """Close the pre-confirmed block now (an empty one if nothing is pending); its hash."""
        return self.rpc("devnet_createBlock")["block_hash"]

    def abort_blocks(self, starting_block: int | str) -> list[str]:
        """Roll back every block from `starting_block` (a number or a hash) to the latest; their hashes.

        The state returns to the block before it; the aborted transactions are gone, and the next block
        takes the first aborted number. Needs devnet's state archive (`state_archive=True`).
        """
        key = "block_number" if isinstance(starting_block, int) else "block_hash"
        block_id = {key: starting_block}
        # devnet dumps this call with the transactions, so a restart replays the rollback too (checked in
        # every block mode: the replayed blocks keep their numbers and hashes).
        return self.rpc("devnet_abortBlocks", {"starting_block_id": block_id})["aborted"]

    def abort_last_blocks(self, count: int) -> list[str]:
        """Roll back the latest `count` blocks."""
        return self.abort_blocks(self.block_number() - count + 1)

    @contextlib.contextmanager
    def blocks_closing(self, interval_s: float = PUMP_INTERVAL_S) -> Iterator[None]:
        """Close a block every `interval_s` for the length of a `with` block, so the harness's own
        transactions (contract deployment, a test's setup) are accepted quickly in interval and demand
        modes. Nothing happens in per-transaction mode, where every transaction already closes one."""
        if self.per_transaction:
            yield
            return
        done = threading.Event()

        def pump() -> None:
            while not done.wait(interval_s):
                with contextlib.suppress(httpx.TransportError, DevnetError):  # a restart in between
                    self.create_block()

        thread = threading.Thread(target=pump, name=f"{self.name}-blocks", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join(timeout=Timeouts.RPC)


class Devnet(DevnetApi, ManagedProcess):
    """The devnet process, started and stopped by the harness."""

    # devnet installs no SIGTERM handler and dies by the signal (measured, 0.8.1); its dump is written as
    # it goes (`--dump-on block`), so nothing is lost that way.
    CLEAN_STOP_EXIT_CODES = frozenset({-signal.SIGTERM})

    def __init__(
        self,
        binary: Path,
        workdir: Path,
        name: str = "devnet",
        dump_on: str = "block",
        block_time: float | None = None,
        state_archive: bool = True,
    ) -> None:
        super().__init__(name, workdir)
        self.binary = binary
        self.port = free_port()
        self.dump_on = dump_on
        self.block_generation = block_generation(block_time)  # fails here, before any process starts
        self.block_time = block_time
        self.state_archive = state_archive

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def rpc_url(self) -> str:
        return f"{self.url}/rpc"

    @property
    def dump_path(self) -> Path:
        return self.workdir / "state.dump"

    def command(self) -> list[str]:
        return [
            str(self.binary),
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--seed", str(DEVNET_SEED),
            "--accounts", str(DEVNET_ACCOUNTS),
            # Interval blocks are devnet_createBlock calls devnet sends itself, so they are dumped and a
            # restart replays them: block numbers survive a restart in every mode.
            "--dump-on", self.dump_on,
            "--dump-path", str(self.dump_path),  # also loaded from at start, when it exists
            "--block-generation-on", self.block_generation,
            # Keeps every block's state, which devnet_abortBlocks needs to roll back to: about 190 kB of
            # memory per block here, against 53 kB without (1,000 blocks measured).
            "--state-archive-capacity", "full" if self.state_archive else "none",
        ]

    def wait_ready(self, *, timeout: float = Timeouts.PROCESS_START) -> None:
        self.wait_answering(lambda: httpx.get(f"{self.url}/is_alive", timeout=2).status_code == 200,
                            f"{self.url}/is_alive", transient=(httpx.TransportError,), timeout=timeout)


class DevnetClient(DevnetApi):
    """A devnet the harness started elsewhere, from `state.json` (the CLI)."""

    def __init__(self, rpc_url: str, block_time: float | None = None, name: str = "devnet") -> None:
        self.name = name
        self._rpc_url = rpc_url
        self.block_generation = block_generation(block_time)

    @property
    def rpc_url(self) -> str:
        return self._rpc_url

    @classmethod
    def from_state(cls, starknet: dict[str, Any]) -> DevnetClient:
        return cls(starknet["rpc_url"], starknet.get("block_time"))
