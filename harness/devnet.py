"""starknet-devnet (the Rust one): a local Starknet with fixed seed and accounts, dumped to disk so a
restart keeps its state."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from harness.process import ManagedProcess
from harness.util import Timeouts, free_port

DEVNET_SEED = 42
DEVNET_ACCOUNTS = 6  # owner, operator, then users


class Devnet(ManagedProcess):
    def __init__(self, binary: Path, workdir: Path, name: str = "devnet", dump_on: str = "block") -> None:
        super().__init__(name, workdir)
        self.binary = binary
        self.port = free_port()
        self.dump_on = dump_on

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
            "--dump-on", self.dump_on,
            "--dump-path", str(self.dump_path),  # also loaded from at start, when it exists
        ]

    def start(self) -> None:
        super().start()
        self.wait_answering(lambda: httpx.get(f"{self.url}/is_alive", timeout=2).status_code == 200,
                            f"{self.url}/is_alive", transient=(httpx.TransportError,))

    def restart(self) -> None:
        self.stop()
        self.start()

    def rpc(self, method: str, params: Any = None) -> Any:
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params or {}}
        reply = httpx.post(self.rpc_url, json=body, timeout=Timeouts.RPC).json()
        if "error" in reply:
            raise RuntimeError(f"[{self.name}] {method}: {reply['error']}")
        return reply["result"]

    def predeployed_accounts(self) -> list[dict[str, str]]:
        return self.rpc("devnet_getPredeployedAccounts")

    def chain_id(self) -> str:
        return self.rpc("starknet_chainId")
