"""Fixtures for the atomicity tests: a network whose devnet closes a block every 2 s and whose service
reaches the devnet and the merchant's lnd through toxiproxy, a buyer, the outside judge, and a rig that
stops the service at a checkpoint and SIGKILLs it there."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from harness.contracts.deploy import set_price
from harness.judge import Judge
from harness.network import Network
from harness.purchase import Buyer, Purchase
from harness.pytest_plugin import outside_judge, starknet_client
from harness.util import Timeouts, wait_until
from service.starknet.client import StarknetClient

pytestmark = pytest.mark.regtest

# The service under test: quick to give up on a mint the devnet never saw (blocks come every 2 s).
# A restarted service takes back what its killed incarnation held once those claims expire: a short lease keeps
# each kill near the 12 s it took before claims (it changes when, never whether, an order is taken over).
SERVICE_ENV = {"VOLTA_VOID_UNSEEN_MINT_AFTER_S": "6", "VOLTA_RECHECK_INTERVAL_S": "1",
               "VOLTA_CLAIM_LEASE_S": "5", "VOLTA_CLAIM_RENEW_INTERVAL_S": "1"}
PAUSE_S = 600  # longer than any test waits: the pause ends only with the SIGKILL


class KillRig:
    """Stops the service at a settlement checkpoint, proves it got there, SIGKILLs it, starts it again."""

    env: dict[str, str] = SERVICE_ENV
    pause_s = PAUSE_S

    def __init__(self, network: Network) -> None:
        assert network.service is not None
        self.network = network
        self.service = network.service
        self.armed: str | None = None

    def restart(self, pause_at: str | None = None) -> None:
        env = dict(self.env)
        if pause_at:
            env["VOLTA_FAULT_PAUSE_AFTER"] = f"{pause_at}:{self.pause_s}"
        self.service.restart(env)
        self.armed = pause_at

    def arm(self, pause_at: str) -> None:
        """Make sure the running service stops at `pause_at` (restarting it only if it does not yet)."""
        if self.armed != pause_at or not self.service.is_running():
            self.restart(pause_at)

    def logged(self, text: str) -> int:
        return self.service.log_path.read_text(errors="replace").count(text)

    def wait_logged(self, text: str, seen_before: int, timeout: float = Timeouts.PAYMENT) -> None:
        wait_until(lambda: self.logged(text) > seen_before, timeout=timeout, what=f"the service to log {text!r}")

    def pauses_logged(self, point: str) -> int:
        return self.logged(self._pause_line(point))

    def wait_paused(self, point: str, seen_before: int) -> None:
        """The fault fired: the service's own log says it stopped at `point`, or the test fails here."""
        self.wait_logged(self._pause_line(point), seen_before)

    def paused_purchase(self, shopper: Buyer, vault: StarknetClient, point: str,
                        **order: object) -> tuple[Purchase, int]:
        """Order and pay with the service armed at `point`; returns once it stopped there, with the buyer's
        VUSD balance from before."""
        seen = self.pauses_logged(point)
        purchase = shopper.create_order(fresh_address(), "5.00", **order)
        vusd_before = vault.vusd_balance(int(purchase.order["starknet_address"], 16))
        shopper.pay(purchase)
        self.wait_paused(point, seen)
        return purchase, vusd_before

    def _pause_line(self, point: str) -> str:
        return f"fault injection: pausing {self.pause_s}s at {point}"

    def kill_and_recover(self, rearm: str | None = None) -> None:
        """SIGKILL, then start again: plain, or already stopping at `rearm` for the next order when the
        order being recovered cannot pass that checkpoint again."""
        pid = self.service.pid
        self.service.kill()
        assert not self.service.is_running(), f"service pid {pid} survived SIGKILL"
        self.restart(rearm)


@pytest.fixture(scope="module")
def chain_network(realistic_network: Network) -> Network:
    KillRig(realistic_network).restart()
    return realistic_network


@pytest.fixture(scope="module")
def vault(chain_network: Network) -> Iterator[StarknetClient]:
    with starknet_client(chain_network) as client:
        yield client


@pytest.fixture
def judge(chain_network: Network, vault: StarknetClient) -> Judge:
    """Per test: a node restarted by an earlier test has a new REST client."""
    return outside_judge(chain_network, vault)


@pytest.fixture
def shopper(chain_network: Network) -> Iterator[Buyer]:
    assert chain_network.service is not None
    client = Buyer(chain_network.service.url, chain_network.payer.client())
    yield client
    client.close()


@pytest.fixture(scope="module")
def rig(chain_network: Network) -> Iterator[KillRig]:
    kill_rig = KillRig(chain_network)
    yield kill_rig
    kill_rig.restart()


def fresh_address() -> str:
    return hex(secrets.randbits(248) | 1)


def move_price(network: Network, price: Decimal) -> None:
    asyncio.run(set_price(network.owner_account(), network.contracts.oracle, price))


def settled_soundly(judge: Judge, purchase: Purchase, vusd_before: int) -> dict[str, Any]:
    """Everything a completed purchase must be, read from lnd and the vault."""
    verdict = judge.at_rest(purchase.order)
    assert (verdict.invoice_state, verdict.hash_used) == ("SETTLED", True), verdict
    assert purchase.payment is not None and purchase.payment.result(Timeouts.PAYMENT)["status"] == "SUCCEEDED"
    assert judge.vusd_mismatches([purchase.order], {purchase.order["starknet_address"]: vusd_before}) == []
    return purchase.order


def completes_soundly(shopper: Buyer, judge: Judge, purchase: Purchase, vusd_before: int) -> None:
    """The buyer sees the purchase complete, and lnd and the vault say it did: settled, minted once."""
    final = shopper.follow(purchase, timeout=Timeouts.PAYMENT * 3)
    assert final["status"] == "completed", final
    settled_soundly(judge, purchase, vusd_before)


def refunded_soundly(judge: Judge, purchase: Purchase, vusd_before: int) -> None:
    verdict = judge.at_rest(purchase.order)
    assert (verdict.invoice_state, verdict.hash_used) == ("CANCELED", False), verdict
    assert purchase.payment is not None and purchase.payment.result(Timeouts.PAYMENT)["status"] == "FAILED"
    assert judge.vusd_mismatches([purchase.order], {purchase.order["starknet_address"]: vusd_before}) == []
