"""lnd: one Lightning node process, driven over REST."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any

import httpx

from harness.btcd import Btcd
from harness.lnd_client import HarnessLndClient
from harness.process import ManagedProcess
from harness.util import Timeouts, free_port, wait_until
from service.lightning.lnd_rest import LndError

# The flags lnd's own integration tests use to make regtest fast and quiet.
FAST_REGTEST_FLAGS = [
    "--noseedbackup",
    "--nobootstrap",
    "--trickledelay=50",
    "--bitcoin.defaultchanconfs=1",
    "--db.batch-commit-interval=10ms",
    "--protocol.wumbo-channels",  # channels above 0.167 BTC, room for hundreds of purchases
    "--maxpendingchannels=10",
    "--accept-keysend",
    "--debuglevel=info",
    "--gossip.max-channel-update-burst=100",
    "--gossip.channel-update-interval=1s",
]


class Lnd(ManagedProcess):
    """An lnd node backed by the harness's btcd, with REST on 127.0.0.1."""

    CLEAN_STOP_EXIT_CODES = frozenset({0})  # lnd shuts down on SIGTERM and exits 0 (measured, v0.21.2-beta)

    def __init__(self, binary: Path, workdir: Path, name: str, btcd: Btcd) -> None:
        super().__init__(name, workdir)
        self.binary = binary
        self.btcd = btcd
        self.p2p_port = free_port()
        self.grpc_port = free_port()
        self.rest_port = free_port()
        self.rest: HarnessLndClient | None = None
        self.pubkey = ""

    @property
    def tls_cert(self) -> Path:
        return self.workdir / "tls.cert"

    @property
    def macaroon(self) -> Path:
        return self.workdir / "data" / "chain" / "bitcoin" / "regtest" / "admin.macaroon"

    @property
    def rest_url(self) -> str:
        return f"https://127.0.0.1:{self.rest_port}"

    @property
    def p2p_host(self) -> str:
        return f"127.0.0.1:{self.p2p_port}"

    def command(self) -> list[str]:
        return [
            str(self.binary),
            f"--lnddir={self.workdir}",
            f"--alias={self.name}",
            f"--listen={self.p2p_host}",
            f"--rpclisten=127.0.0.1:{self.grpc_port}",
            f"--restlisten=127.0.0.1:{self.rest_port}",
            "--tlsextraip=127.0.0.1",
            "--bitcoin.regtest",
            "--bitcoin.node=btcd",
            f"--btcd.rpchost={self.btcd.rpc_host}",
            f"--btcd.rpcuser={self.btcd.rpc_user}",
            f"--btcd.rpcpass={self.btcd.rpc_password}",
            f"--btcd.rpccert={self.btcd.rpc_cert}",
            *FAST_REGTEST_FLAGS,
        ]

    def wait_ready(self, *, synced: bool = True, timeout: float = Timeouts.PROCESS_START) -> None:
        """Wait until REST answers and, unless `synced=False`, lnd calls itself synced to the chain.

        `start` waits for both. Bring-up spawns every node and waits with `synced=False`: on a fresh regtest
        chain (genesis from 2011) lnd is not synced until a recent block is mined, which needs its address.
        """
        self.wait_answering(lambda: self._answers(synced), f"REST up{' and synced to chain' if synced else ''}",
                            transient=(httpx.TransportError, LndError, OSError), timeout=timeout)

    def _answers(self, synced: bool) -> bool:
        if not (self.tls_cert.exists() and self.macaroon.exists()):
            return False
        if self.rest is None:
            self.rest = HarnessLndClient(self.rest_url, self.tls_cert, self.macaroon)
        info = self.rest.get_info()  # "still starting up" is an LndError, hence transient
        self.pubkey = info["identity_pubkey"]
        return bool(info.get("synced_to_chain")) or not synced

    def stop(self, timeout: float = Timeouts.PROCESS_STOP, expected_exit_codes: Collection[int] | None = None) -> None:
        self._close_rest()
        super().stop(timeout, expected_exit_codes)

    def kill(self) -> None:
        self._close_rest()
        super().kill()

    def _close_rest(self) -> None:
        if self.rest is not None:
            self.rest.close()
            self.rest = None

    def client(self) -> HarnessLndClient:
        if self.rest is None:
            raise RuntimeError(f"[{self.name}] not running; start() it first")
        return self.rest

    def wait_synced_to_height(self, height: int, timeout: float = Timeouts.CHAIN_SYNC) -> None:
        wait_until(
            lambda: self.client().get_info().get("block_height", 0) >= height
            and self.client().get_info().get("synced_to_chain"),
            timeout=timeout,
            what=f"[{self.name}] synced to block {height}",
            transient=(httpx.TransportError, LndError),
        )

    def state(self) -> dict[str, Any]:
        return {
            "rest_url": self.rest_url,
            "tls_cert": str(self.tls_cert),
            "macaroon": str(self.macaroon),
            "pubkey": self.pubkey,
            "p2p_host": self.p2p_host,
        }


def quiet_local_msat(client: HarnessLndClient, timeout: float = Timeouts.PAYMENT) -> int:
    """The spendable channel balance once no HTLC is in flight, so every earlier payment is accounted for
    (lnd updates balances a moment after the payer hears of success). A node that does not answer for a
    moment (just restarted) is asked again until `timeout`."""
    wait_until(lambda: not any(channel.get("pending_htlcs") for channel in client.list_channels()),
               timeout=timeout, what="no HTLC in flight", transient=(LndError, httpx.HTTPError))
    return client.channel_balance()["local_msat"]
