"""btcd on regtest: the chain every Lightning node in the harness watches."""

from __future__ import annotations

import secrets
import ssl
from collections.abc import Collection
from pathlib import Path
from typing import Any

import bech32
import httpx

from harness.process import ManagedProcess, ProcessError
from harness.util import Timeouts, free_port

# Blocks mined here go to nobody: only used to get a fresh tip before the real miner address is known.
BURN_ADDRESS = bech32.encode("bcrt", 0, bytes(20))


class BtcdRpcError(RuntimeError):
    pass


class BtcdAuthError(BtcdRpcError):
    """btcd refused our user and password: no retry can fix that."""


class BtcdRpc:
    """JSON-RPC over TLS to btcd (and, with the same calls, to bitcoind)."""

    def __init__(self, url: str, user: str, password: str, cert: Path | str | None) -> None:
        self.url = url
        self.user = user
        verify = ssl.create_default_context(cafile=str(cert)) if cert else False
        self._http = httpx.Client(auth=(user, password), verify=verify, timeout=30)

    @classmethod
    def from_state(cls, bitcoin: dict[str, Any]) -> BtcdRpc:
        return cls(bitcoin["rpc_url"], bitcoin["rpc_user"], bitcoin["rpc_password"], bitcoin.get("rpc_cert"))

    def call(self, method: str, *params: Any) -> Any:
        body = {"jsonrpc": "1.0", "id": method, "method": method, "params": list(params)}
        response = self._http.post(self.url, json=body)
        if response.status_code in (401, 403):
            raise BtcdAuthError(f"{method}: btcd at {self.url} refused the password of RPC user {self.user!r} "
                                f"(HTTP {response.status_code})")
        payload = response.json()
        if payload.get("error"):
            raise BtcdRpcError(f"{method}: {payload['error']}")
        return payload["result"]

    def block_count(self) -> int:
        return int(self.call("getblockcount"))

    def generate(self, blocks: int) -> list[str]:
        return list(self.call("generate", blocks))

    def close(self) -> None:
        self._http.close()


class Btcd(ManagedProcess):
    """A btcd regtest node with TLS RPC, mining to one fixed address (btcd fixes it at start)."""

    CLEAN_STOP_EXIT_CODES = frozenset({0})  # btcd shuts down on SIGTERM and exits 0 (measured, v0.26.0)

    def __init__(self, binary: Path, workdir: Path, name: str = "btcd") -> None:
        super().__init__(name, workdir)
        self.binary = binary
        self.rpc_port = free_port()
        self.p2p_port = free_port()
        self.rpc_user = "volta"
        self.rpc_password = secrets.token_hex(16)
        self.mining_address = BURN_ADDRESS
        self.rpc: BtcdRpc | None = None

    @property
    def rpc_cert(self) -> Path:
        return self.workdir / "rpc.cert"

    @property
    def rpc_host(self) -> str:
        return f"127.0.0.1:{self.rpc_port}"

    def command(self) -> list[str]:
        return [
            str(self.binary),
            "--regtest",
            f"--datadir={self.workdir / 'data'}",
            f"--logdir={self.workdir / 'logs'}",
            f"--rpccert={self.rpc_cert}",
            f"--rpckey={self.workdir / 'rpc.key'}",
            f"--rpcuser={self.rpc_user}",
            f"--rpcpass={self.rpc_password}",
            f"--rpclisten={self.rpc_host}",
            f"--listen=127.0.0.1:{self.p2p_port}",
            f"--miningaddr={self.mining_address}",
            "--txindex",
            "--rpcmaxwebsockets=200",  # every lnd holds websockets open; the default 25 runs out
            "--rpcmaxclients=200",
            "--debuglevel=info",
        ]

    def wait_ready(self, *, timeout: float = Timeouts.PROCESS_START) -> None:
        """Wait until the RPC answers. Not listening yet is retried; a refused password fails at once."""
        self.wait_answering(self._rpc_ready, f"RPC on {self.rpc_host}",
                            transient=(httpx.TransportError, BtcdRpcError, OSError), timeout=timeout)

    def _rpc_ready(self) -> bool:
        if not self.rpc_cert.exists():
            return False
        if self.rpc is None:
            self.rpc = BtcdRpc(f"https://{self.rpc_host}", self.rpc_user, self.rpc_password, self.rpc_cert)
        try:
            self.rpc.block_count()
        except BtcdAuthError as exc:
            # A ProcessError is not in the transient list, so the wait ends here, not at its timeout.
            raise ProcessError(f"[{self.name}] {exc}: the password is wrong, and waiting will not change it; "
                               f"the client must use the --rpcuser/--rpcpass btcd was started with") from exc
        return True

    def restart(self, mining_address: str | None = None) -> None:
        """Stop and start on the same data and ports; the only way to change btcd's mining address."""
        self.stop()
        if mining_address:
            self.mining_address = mining_address
        self.start()

    def stop(self, timeout: float = Timeouts.PROCESS_STOP, expected_exit_codes: Collection[int] | None = None) -> None:
        if self.rpc is not None:
            self.rpc.close()
            self.rpc = None
        super().stop(timeout, expected_exit_codes)

    def mine(self, blocks: int) -> list[str]:
        assert self.rpc is not None, f"[{self.name}] not started"
        return self.rpc.generate(blocks)

    def state(self) -> dict[str, Any]:
        return {
            "kind": "btcd",
            "rpc_url": f"https://{self.rpc_host}",
            "rpc_user": self.rpc_user,
            "rpc_password": self.rpc_password,
            "rpc_cert": str(self.rpc_cert),
        }
