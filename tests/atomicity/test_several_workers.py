"""Several `python -m service.worker` processes on one PostgreSQL, behind the network's service restarted API-only:
one of them stalls before signing a mint (or is SIGKILLed there), and the others must leave that order alone
while its claim lives, or take it over once it expired. Judged from lnd (the merchant's invoice settled once, the
payer's payment succeeded) and the vault (exactly one LightningMint event for the hash, the buyer's VUSD grown by
the order's amount), and from the workers' own logs: which worker recorded anything for the order."""

from __future__ import annotations

import os
import re
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from harness.judge import Judge
from harness.network import Network
from harness.postgres import Postgres
from harness.process import ManagedProcess
from harness.purchase import Buyer, Purchase
from harness.pytest_plugin import orders_failed
from harness.util import Timeouts, wait_until
from service.domain.preimages import PreimageKeys
from service.starknet.client import LIGHTNING_MINT_SELECTOR, StarknetClient, split_u256
from tests.atomicity.conftest import fresh_address

pytestmark = pytest.mark.regtest

LEASE_S = 10  # short, so a takeover comes quickly; 3 leases fit in the 30 s stall
WORKER_ENV = {"VOLTA_CLAIM_LEASE_S": str(LEASE_S), "VOLTA_CLAIM_RENEW_INTERVAL_S": "2",
              "VOLTA_RECHECK_INTERVAL_S": "1"}
STALL_S = 30
WORKER_ID = re.compile(r"worker running as (\S+);")


class WorkerProcess(ManagedProcess):
    """`python -m service.worker` with the API's settings plus its own; ready once it logs that it runs."""

    def __init__(self, name: str, workdir: Path, env: dict[str, str]) -> None:
        super().__init__(name, workdir)
        self.env = env

    def command(self) -> list[str]:
        return [sys.executable, "-m", "service.worker"]

    def environment(self) -> dict[str, str]:
        return self.env

    def wait_ready(self, *, timeout: float = Timeouts.PROCESS_START) -> None:
        self.wait_answering(lambda: WORKER_ID.search(self.log()) is not None, "'worker running' in its log",
                            timeout=timeout)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    @property
    def worker_id(self) -> str:
        found = WORKER_ID.search(self.log())
        assert found is not None, f"[{self.name}] has not said its worker id"
        return found.group(1)

    def lines_about(self, order_id: str) -> list[str]:
        """Every line this worker logged about the order (its steps log only under its claim on it)."""
        return [line for line in self.log().splitlines() if f"order {order_id}" in line]

    def freeze(self) -> None:
        assert self.pid is not None
        os.kill(self.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.pid is not None
        os.kill(self.pid, signal.SIGCONT)


class Workers:
    """The workers of one test, all SIGKILLed at its end."""

    def __init__(self, run_dir: Path, env: dict[str, str]) -> None:
        self.run_dir, self.env = run_dir, env
        self.started: list[WorkerProcess] = []

    def start(self, count: int, pause_first_at: str | None = None) -> list[WorkerProcess]:
        """`count` workers, spawned together; the first one stops at `pause_first_at` ("minting:30")."""
        for index in range(count):
            env = self.env | ({"VOLTA_FAULT_PAUSE_AFTER": pause_first_at} if index == 0 and pause_first_at else {})
            name = f"worker{len(self.started) + 1}"
            worker = WorkerProcess(name, self.run_dir / name, env)
            self.started.append(worker)  # registered before it starts: a failed start is killed too
            worker.spawn()
        for worker in self.started[-count:]:
            worker.wait_ready()
        return self.started[-count:]

    def kill_all(self) -> None:
        for worker in self.started:
            worker.kill()


@pytest.fixture(scope="module")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Postgres]:
    server = Postgres(tmp_path_factory.mktemp("workers-postgres"))
    try:
        server.start()
        yield server
    finally:
        server.kill()
        server.discard()


@pytest.fixture(scope="module")
def api_only(network: Network, postgres: Postgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    """The network's service as an API alone on PostgreSQL, with a preimage key file every worker shares; put back
    to its usual self (API and worker on SQLite) afterwards."""
    assert network.service is not None
    key_file = tmp_path_factory.mktemp("preimage") / "preimage-key"
    key_file.write_text(PreimageKeys.generate() + "\n")
    key_file.chmod(0o600)
    network.service.restart({"VOLTA_RUN_WORKER": "false", "VOLTA_DATABASE_URL": postgres.url,
                             "VOLTA_PREIMAGE_KEY_FILE": str(key_file)})
    try:
        yield network
    finally:
        network.service.restart()
        assert not orders_failed(postgres.url), "orders ended in `failed`: an operator would have to look"


@pytest.fixture
def workers(api_only: Network, tmp_path: Path) -> Iterator[Workers]:
    assert api_only.service is not None
    env = {key: value for key, value in api_only.service.environment().items() if key != "VOLTA_RUN_WORKER"}
    group = Workers(tmp_path, env | WORKER_ENV)
    try:
        yield group
    finally:
        group.kill_all()


@pytest.fixture(scope="module")
def chain_network(api_only: Network) -> Network:
    """The network the folder's `vault`, `judge` and `shopper` (tests/atomicity/conftest.py) are of: here the
    API-only one, in place of the folder's realistic network."""
    return api_only


def recorded_by(database_url: str, order_id: str) -> list[tuple[str, str | None]]:
    """The order's history as the database has it: each state and the worker that recorded it."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT status, worker_id FROM order_events WHERE order_id = :id "
                                           "ORDER BY id"), {"id": order_id})
            return [(status, worker_id) for status, worker_id in rows]
    finally:
        engine.dispose()


def mint_events(network: Network, payment_hash_hex: str) -> int:
    """LightningMint events the vault emitted for this payment hash, read from the devnet."""
    assert network.devnet is not None and network.contracts is not None
    low, high = split_u256(int(payment_hash_hex, 16))
    events: list[Any] = []
    token: str | None = None
    while True:
        page = network.devnet.rpc("starknet_getEvents", {"filter": {
            "from_block": {"block_number": 0}, "to_block": "latest", "address": hex(network.contracts.vault),
            "keys": [[hex(LIGHTNING_MINT_SELECTOR)], [hex(low)], [hex(high)]], "chunk_size": 1000,
            **({"continuation_token": token} if token else {})}})
        events.extend(page["events"])
        token = page.get("continuation_token")
        if not token:
            return len(events)


def sold_exactly_once(network: Network, judge: Judge, vault: StarknetClient, purchase: Purchase,
                      vusd_before: int) -> None:
    """What lnd and the vault say about a completed purchase: one mint, the HTLC settled once, the payer paid."""
    order = purchase.order
    verdict = judge.at_rest(order)
    assert (verdict.invoice_state, verdict.hash_used) == ("SETTLED", True), verdict
    assert purchase.payment is not None and purchase.payment.result(Timeouts.PAYMENT)["status"] == "SUCCEEDED"
    assert mint_events(network, order["payment_hash"]) == 1
    invoice = network.merchant.client().lookup_invoice(bytes.fromhex(order["payment_hash"]))
    assert [htlc["state"] for htlc in invoice.get("htlcs", [])] == ["SETTLED"], invoice.get("htlcs")
    assert judge.vusd_mismatches([order], {order["starknet_address"]: vusd_before}) == []


def order_with_vusd_before(buyer: Buyer, vault: StarknetClient) -> tuple[Purchase, int]:
    purchase = buyer.create_order(fresh_address(), "5.00")
    return purchase, vault.vusd_balance(int(purchase.order["starknet_address"], 16))


def pause_line(seconds: int | str) -> str:
    return f"fault injection: pausing {seconds}s at minting"


@pytest.mark.parametrize("count", [2, 3], ids=lambda count: f"{count}-workers")
def test_a_mint_stalled_in_one_worker_is_left_to_it_by_the_others(
    count: int, api_only: Network, postgres: Postgres, workers: Workers, shopper: Buyer, judge: Judge,
    vault: StarknetClient,
) -> None:
    stalling, *others = workers.start(count, pause_first_at=f"minting:{STALL_S}")
    for other in others:  # the stalling worker alone sees the payment arrive, so it is the one holding the order
        other.freeze()
    purchase, vusd_before = order_with_vusd_before(shopper, vault)
    shopper.pay(purchase)
    wait_until(lambda: pause_line(STALL_S) in stalling.log(), timeout=Timeouts.PAYMENT,
               what=f"[{stalling.name}] to stall before signing the mint")
    stalled_at = time.monotonic()
    for other in others:
        other.thaw()  # for the rest of the stall the others run their passes over an order left `minting`

    meanwhile, meanwhile_vusd_before = order_with_vusd_before(shopper, vault)  # any worker may take this one
    shopper.pay(meanwhile)
    final = shopper.follow(purchase, timeout=Timeouts.PAYMENT * 2)
    assert final["status"] == "completed", final
    assert time.monotonic() - stalled_at > STALL_S - 5, "the order completed before the stall ended"
    sold_exactly_once(api_only, judge, vault, purchase, vusd_before)

    order_id = purchase.order_id
    assert stalling.lines_about(order_id), f"[{stalling.name}] logged nothing about {order_id}"
    for other in others:
        assert other.lines_about(order_id) == [], f"[{other.name}] touched {order_id}"
    assert {worker for _, worker in recorded_by(postgres.url, order_id)[1:]} == {stalling.worker_id}

    assert shopper.follow(meanwhile, timeout=Timeouts.PAYMENT * 2)["status"] == "completed"
    sold_exactly_once(api_only, judge, vault, meanwhile, meanwhile_vusd_before)
    # Any worker may take it, and several may step in: while the one mint lane is leased elsewhere (by the stalled
    # worker, or for up to a lease by a stopped worker of the previous test) a worker defers, signs nothing and lets
    # the order go. One worker signed its mint, and it was sold once (above).
    signed = [worker.name for worker in workers.started
              if any(": mint 0x" in line and " recorded by worker " in line
                     for line in worker.lines_about(meanwhile.order_id))]
    assert len(signed) == 1, f"{meanwhile.order_id}'s mint was signed by {signed}"


def test_a_worker_killed_holding_an_order_is_taken_over_at_once_by_another_on_its_host(
    api_only: Network, postgres: Postgres, workers: Workers, shopper: Buyer, judge: Judge, vault: StarknetClient,
) -> None:
    victim, *others = workers.start(3, pause_first_at="minting:600")  # stops there until killed
    for other in others:
        other.freeze()
    purchase, vusd_before = order_with_vusd_before(shopper, vault)
    shopper.pay(purchase)
    wait_until(lambda: pause_line(600) in victim.log(), timeout=Timeouts.PAYMENT,
               what=f"[{victim.name}] to stop before signing the mint")
    for other in others:
        other.thaw()
    time.sleep(2)  # the claim is renewed as long as the victim lives
    assert all(other.lines_about(purchase.order_id) == [] for other in others)

    victim.kill()
    killed_at = time.monotonic()
    taker = wait_until(lambda: next((other for other in others if other.lines_about(purchase.order_id)), None),
                       timeout=LEASE_S + Timeouts.PAYMENT, what="another worker to take the order over")
    taken_over_s = time.monotonic() - killed_at
    assert taker is not None
    final = shopper.follow(purchase, timeout=Timeouts.PAYMENT * 2)
    completed_s = time.monotonic() - killed_at
    print(f"\ntakeover after SIGKILL: {taken_over_s:.1f}s (lease {LEASE_S}s), completed {completed_s:.1f}s "
          f"after the kill")
    assert final["status"] == "completed", final
    assert taken_over_s <= LEASE_S + 10, f"took {taken_over_s:.1f}s to take over with a {LEASE_S}s lease"
    sold_exactly_once(api_only, judge, vault, purchase, vusd_before)

    assert [other.name for other in others if other.lines_about(purchase.order_id)] == [taker.name]
    # Not after the lease: the taker saw the victim's process was gone (on another host it would wait the lease).
    assert (f"claim on order {purchase.order_id} taken over from worker {victim.worker_id}, whose process is gone"
            in taker.log()), taker.lines_about(purchase.order_id)
    history = recorded_by(postgres.url, purchase.order_id)
    assert history[1:] == [("payment_held", victim.worker_id), ("minting", victim.worker_id),
                           ("minted", taker.worker_id), ("completed", taker.worker_id)], history
