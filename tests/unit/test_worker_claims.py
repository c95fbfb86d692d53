"""Two workers on one SQLite file, each with its own engine, claims and fakes of lnd and the vault (whose world,
the hash used on the vault, they share): the second never acts on an order the first holds, takes over one
whose claim expired, and a worker whose claim was lost records and does nothing more, logged at ERROR."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from service.config import Settings
from service.container import order_rules
from service.domain.ports import MintFate, MintReceipt, MintStatus, OrderClaim, SignedMint
from service.domain.reconciliation import FindingKind, Reconciliation
from service.domain.settlement import Settlement
from service.domain.states import OrderStatus
from service.lightning.base import InvoiceState
from service.storage.database import make_engine, make_session_factory, migrate
from service.storage.models import OrderRow
from service.storage.orders import OrderRepository
from service.worker import Worker
from tests.clock import Clock
from tests.unit.test_settlement import AMOUNT_MSAT, KEYS, NOW, PAYMENT_HASH, PREIMAGE, FakeNode, FakeVault

LEASE_S = 15
STALL_TIMEOUT_S = 30


class Vault(FakeVault):
    """The fake vault, with a hook once a mint has landed (before the caller hears of it)."""

    def __init__(self, used: set[bytes]) -> None:
        super().__init__()
        self.used = used  # one chain for every worker
        self.after_landing: Callable[[], None] = lambda: None

    def mint_for_payment(self, recipient: int, amount_base_units: int, payment_hash: bytes,
                         on_signed: Callable[[SignedMint], None] | None = None) -> MintReceipt:
        receipt = super().mint_for_payment(recipient, amount_base_units, payment_hash, on_signed)
        self.after_landing()
        return receipt


@dataclass
class WorkerProcess:
    """What one worker process has: its own engine and repository (so its own worker id), its own clients."""

    repository: OrderRepository
    node: FakeNode
    vault: Vault
    settlement: Settlement

    @property
    def worker_id(self) -> str:
        return self.repository.claims.worker_id

    def one_pass(self) -> None:
        """One re-check pass of a fresh Worker, waited for to the end: its pool, and the invoice watchers it
        starts for open orders (lnd's stream says the HTLC is held: the fast path, on the watcher's thread)."""
        worker = Worker(self.settlement, self.repository, self.node, self.settlement.clock, threads=2,
                        recheck_interval_s=3600)
        worker.recheck_all()
        worker._pool.shutdown(wait=True)
        deadline = time.monotonic() + STALL_TIMEOUT_S
        while worker._watched and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not worker._watched, "an invoice watcher is still running"

    def start_pass(self) -> threading.Thread:
        thread = threading.Thread(target=self.one_pass, daemon=True)
        thread.start()
        return thread

    def acted(self) -> bool:
        """Whether this worker did anything to the outside world or recorded anything."""
        events = self.repository.get(ORDER_ID).events
        return bool(self.node.calls or self.vault.signed or self.vault.voided
                    or any(event.worker_id == self.worker_id for event in events))


ORDER_ID = f"ord_{uuid.uuid4().hex}"  # each test has its own database file


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def workers(tmp_path: Path, clock: Clock) -> tuple[WorkerProcess, WorkerProcess]:
    url = f"sqlite:///{tmp_path / 'volta.sqlite'}"
    migrate(url)
    used: set[bytes] = set()

    def process() -> WorkerProcess:
        repository = OrderRepository(make_session_factory(make_engine(url)), clock, claim_lease_s=LEASE_S,
                                     claim_renew_interval_s=LEASE_S / 3)
        node, vault = FakeNode(), Vault(used)
        return WorkerProcess(repository, node, vault,
                             Settlement(order_rules(Settings()), repository, node, vault, vault, clock, KEYS))

    a, b = process(), process()
    a.repository.add(OrderRow(
        id=ORDER_ID, starknet_address="0x" + "1" * 64, vusd_amount="25.00",
        amount_msat=AMOUNT_MSAT, btc_usd_rate="97000", spread_bps=50, max_slippage_bps=100,
        payment_hash=PAYMENT_HASH.hex(), preimage=PREIMAGE.hex(), bolt11="lnbcrt…", status="awaiting_payment",
        created_at=NOW, updated_at=NOW, expires_at=NOW + timedelta(minutes=10)))
    return a, b


def stall(vault: Vault) -> tuple[threading.Event, threading.Event]:
    """Make `vault` stop right before sending its next mint: (reached, go on)."""
    reached, go_on = threading.Event(), threading.Event()

    def wait_there() -> None:
        reached.set()
        assert go_on.wait(STALL_TIMEOUT_S)

    vault.before_sending = wait_there
    return reached, go_on


def statuses(worker: WorkerProcess) -> list[tuple[str, str | None]]:
    return [(event.status, event.worker_id) for event in worker.repository.get(ORDER_ID).events]


def test_a_second_worker_never_acts_on_an_order_the_first_holds(
    workers: tuple[WorkerProcess, WorkerProcess],
) -> None:
    a, b = workers
    reached, go_on = stall(a.vault)
    running = a.start_pass()  # lnd holds the HTLC: a claims the order, mints, and stalls before sending
    assert reached.wait(STALL_TIMEOUT_S)
    assert a.repository.get(ORDER_ID).status == "minting"

    for _ in range(3):  # b's passes find the order `minting` (it would mint it again) but a holds it
        b.one_pass()
    assert not b.acted()

    go_on.set()
    running.join(STALL_TIMEOUT_S)
    assert statuses(a) == [("awaiting_payment", None), ("payment_held", a.worker_id), ("minting", a.worker_id),
                           ("minted", a.worker_id), ("completed", a.worker_id)]
    assert (len(a.vault.sent), a.node.calls, b.node.calls, b.vault.signed) == (1, ["settle"], [], [])
    assert a.repository.claims.take(ORDER_ID) is not None, "released at the end of the step"


def test_a_claim_left_by_a_crashed_worker_is_taken_over_once_it_expires(
    workers: tuple[WorkerProcess, WorkerProcess], clock: Clock,
) -> None:
    a, b = workers
    a.vault.uncertain = True  # a's mint goes out but a hears nothing: the order stays `minting`
    a.one_pass()
    assert a.repository.get(ORDER_ID).mint_tx_hash == "0xfeed0"
    crashed = a.repository.claims.take(ORDER_ID)  # a takes it again and dies holding it (no heartbeat)
    assert crashed is not None

    b.vault.fate = MintStatus(MintFate.LANDED, "ACCEPTED_ON_L2")  # the chain: a's mint landed
    b.vault.used.add(PAYMENT_HASH)
    b.one_pass()
    assert not b.acted(), "a's claim is still live"

    clock.advance(LEASE_S)
    b.one_pass()
    assert statuses(b)[-2:] == [("minted", b.worker_id), ("completed", b.worker_id)]
    assert (b.node.calls, b.vault.signed, a.node.calls, len(a.vault.sent)) == (["settle"], [], [], 1)


def test_a_claim_lost_before_the_mint_is_recorded_sends_nothing_and_logs_an_error(
    workers: tuple[WorkerProcess, WorkerProcess], clock: Clock, caplog: pytest.LogCaptureFixture,
) -> None:
    a, b = workers
    reached, go_on = stall(a.vault)
    with caplog.at_level(logging.INFO):
        running = a.start_pass()
        assert reached.wait(STALL_TIMEOUT_S)
        clock.advance(LEASE_S)  # a's heartbeat did not get through (a frozen process, a slow database)
        b_claim = b.repository.claims.take(ORDER_ID)
        assert b_claim is not None
        go_on.set()  # a wakes up and records its signed mint: refused
        running.join(STALL_TIMEOUT_S)

    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and ORDER_ID in errors[0].getMessage(), errors
    assert "record mint 0xfeed0" in errors[0].getMessage()
    assert (a.vault.sent, a.node.calls, a.repository.get(ORDER_ID).mint_tx_hash) == ([], [], None)

    b.repository.claims.release(b_claim)
    b.one_pass()
    assert statuses(b)[-2:] == [("minted", b.worker_id), ("completed", b.worker_id)]
    assert (len(b.vault.sent), b.node.calls) == (1, ["settle"])


def test_a_claim_lost_while_the_mint_lands_stops_the_settle_and_the_new_holder_settles_once(
    workers: tuple[WorkerProcess, WorkerProcess], clock: Clock, caplog: pytest.LogCaptureFixture,
) -> None:
    a, b = workers
    taken: list[OrderClaim] = []

    def lose_the_claim() -> None:
        clock.advance(LEASE_S)
        claim = b.repository.claims.take(ORDER_ID)
        assert claim is not None
        taken.append(claim)

    a.vault.after_landing = lose_the_claim
    with caplog.at_level(logging.INFO):
        a.one_pass()
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and ORDER_ID in errors[0] and "record minted" in errors[0], errors
    assert (len(a.vault.sent), a.node.calls, a.repository.get(ORDER_ID).status) == (1, [], "minting")

    b.repository.claims.release(taken[0])
    b.vault.fate = MintStatus(MintFate.LANDED, "ACCEPTED_ON_L2")
    b.one_pass()
    assert statuses(b)[-2:] == [("minted", b.worker_id), ("completed", b.worker_id)]
    assert (b.node.calls, b.vault.signed) == (["settle"], []), "one mint, one settle"


def test_the_reconciliation_repairs_only_under_its_own_claim(workers: tuple[WorkerProcess, WorkerProcess]) -> None:
    a, b = workers
    a.node.paid_msat = 2 * AMOUNT_MSAT  # overpaid: refunded, and the cancel never reached lnd
    a.one_pass()
    assert a.repository.get(ORDER_ID).status == OrderStatus.REFUNDED.value
    b.node.state = InvoiceState.ACCEPTED
    reconciliation = Reconciliation(b.repository, b.node, b.vault, KEYS)

    held = a.repository.claims.take(ORDER_ID)
    assert held is not None
    assert reconciliation.run(since=NOW - timedelta(days=1)) == [] and b.node.calls == []

    a.repository.claims.release(held)
    assert [f.kind for f in reconciliation.run(since=NOW - timedelta(days=1))] == [FindingKind.HTLC_STILL_HELD]
    assert b.node.calls == ["cancel"]
