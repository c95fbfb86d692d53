"""Slow and broken dependencies, through the fault proxy, with 2-second blocks. The service gets a short mint
budget (8 s) so that 10 s of RPC latency is longer than the budget. Every fault is shown to have fired
(traffic through the proxy while it was on, and the service's own reaction in its log), and every order
is judged from lnd and the vault."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal

import pytest

from harness.faults import FaultClient
from harness.judge import Judge
from harness.network import DEVNET_PROXY, INITIAL_BTC_USD, MERCHANT_PROXY, Network
from harness.purchase import Buyer
from harness.pytest_plugin import outside_judge
from harness.util import Timeouts, wait_until
from service.domain.pricing import VUSD_DECIMALS
from service.domain.settlement import Checkpoint
from service.starknet.client import StarknetClient
from tests.atomicity.conftest import (
    SERVICE_ENV,
    KillRig,
    completes_soundly,
    fresh_address,
    move_price,
    refunded_soundly,
    settled_soundly,
)

pytestmark = pytest.mark.regtest
SLOW_SERVICE_ENV = SERVICE_ENV | {
    "VOLTA_MINT_TIMEOUT_S": "4", "VOLTA_MINT_ANSWER_MARGIN_S": "4", "VOLTA_MAX_HOLD_S": "20",
    "VOLTA_RECONCILE_INTERVAL_S": "2",
}
LATENCY_MS = 10_000  # longer than the 8 s mint budget
BLOCKS_TO_WAIT_S = 6  # three blocks: anything still travelling has landed by then


class SlowRig(KillRig):
    """The service with a short mint budget, stopping 3 s at a checkpoint: long enough to put a fault in place."""

    env = SLOW_SERVICE_ENV
    pause_s = 3


@pytest.fixture
def slow(chain_network: Network) -> Iterator[SlowRig]:
    rig = SlowRig(chain_network)
    yield rig
    KillRig(chain_network).restart()


def test_rpc_slower_than_the_mint_budget_before_signing_sends_nothing_and_refunds(
    slow: SlowRig, shopper: Buyer, judge: Judge, vault: StarknetClient, faults: FaultClient,
) -> None:
    """Issue 10, way 1: the batcher still held the mint when the order was refunded; it must never go out."""
    slow.restart(pause_at=Checkpoint.MINTING)
    purchase, vusd_before = slow.paused_purchase(shopper, vault, Checkpoint.MINTING)
    traffic_before = faults.traffic(DEVNET_PROXY)
    with faults.fault(DEVNET_PROXY, "latency", {"latency": LATENCY_MS}):
        final = shopper.follow(purchase, timeout=Timeouts.PAYMENT * 3)
    assert (faults.traffic(DEVNET_PROXY) - traffic_before).total > 0, "no RPC went through the slow proxy"
    assert (final["status"], final["refund_reason"]) == ("refunded", "mint_failed"), final
    time.sleep(BLOCKS_TO_WAIT_S)  # a mint that went out anyway would have landed by now
    refunded_soundly(judge, purchase, vusd_before)


@pytest.mark.parametrize("point, stream", [(Checkpoint.MINT_SIGNED, "upstream"), (Checkpoint.MINT_SENT, "downstream")],
                         ids=["sent-mint-arrives-late", "receipt-slow"])
def test_a_mint_that_lands_after_the_service_gave_up_is_settled(
    point: Checkpoint, stream: str, slow: SlowRig, shopper: Buyer, judge: Judge, vault: StarknetClient,
    faults: FaultClient,
) -> None:
    """Issue 10, way 3: a mint the service stopped waiting for still lands; the HTLC must still be held."""
    slow.restart(pause_at=point)
    uncertain = slow.logged("mint uncertain")
    purchase, vusd_before = slow.paused_purchase(shopper, vault, point)
    with faults.fault(DEVNET_PROXY, "latency", {"latency": LATENCY_MS}, stream=stream):  # type: ignore[arg-type]
        slow.wait_logged("mint uncertain", uncertain)  # the service gave up waiting: the fault bit
        assert judge.verdict(purchase.order).invoice_state == "ACCEPTED", "the HTLC must stay held"
    completes_soundly(shopper, judge, purchase, vusd_before)


def test_lnd_unreachable_during_settle_keeps_the_htlc_until_it_is_back(
    slow: SlowRig, shopper: Buyer, judge: Judge, vault: StarknetClient, faults: FaultClient,
) -> None:
    slow.restart(pause_at=Checkpoint.MINTED)
    failures = slow.logged("lnd could not settle")
    purchase, vusd_before = slow.paused_purchase(shopper, vault, Checkpoint.MINTED)
    with faults.outage(MERCHANT_PROXY):
        slow.wait_logged("lnd could not settle", failures)
        verdict = judge.verdict(purchase.order)
        assert (verdict.invoice_state, verdict.payment_status, verdict.hash_used) == ("ACCEPTED", "IN_FLIGHT", True)
    completes_soundly(shopper, judge, purchase, vusd_before)


def test_lnd_unreachable_during_cancel_the_sweep_cancels_once_it_is_back(
    slow: SlowRig, shopper: Buyer, judge: Judge, vault: StarknetClient, faults: FaultClient, chain_network: Network,
) -> None:
    slow.restart(pause_at=Checkpoint.REFUNDED)
    failures = slow.logged("lnd could not cancel")
    move_price(chain_network, INITIAL_BTC_USD)
    try:
        seen = slow.pauses_logged(Checkpoint.REFUNDED)
        purchase = shopper.create_order(fresh_address(), "5.00", max_slippage_bps=10)
        vusd_before = vault.vusd_balance(int(purchase.order["starknet_address"], 16))
        move_price(chain_network, INITIAL_BTC_USD * Decimal("1.01"))
        shopper.pay(purchase)
        slow.wait_paused(Checkpoint.REFUNDED, seen)
        with faults.outage(MERCHANT_PROXY):
            slow.wait_logged("lnd could not cancel", failures)
            assert judge.verdict(purchase.order).invoice_state == "ACCEPTED"
        wait_until(lambda: judge.verdict(purchase.order).invoice_state == "CANCELED", timeout=Timeouts.PAYMENT,
                   what="the cancel sweep to release the HTLC")
        refunded_soundly(judge, purchase, vusd_before)
    finally:
        move_price(chain_network, INITIAL_BTC_USD)


def test_a_block_lost_after_the_service_settled_is_repaired_by_the_reconciliation(
    slow: SlowRig, shopper: Buyer, judge: Judge, vault: StarknetClient, chain_network: Network,
) -> None:
    slow.restart()
    repaired = slow.logged("its mint was rolled back; minted again")
    purchase = shopper.buy(fresh_address(), "5.00")
    address = int(purchase.order["starknet_address"], 16)
    assert purchase.order["status"] == "completed"
    assert chain_network.devnet is not None
    receipt = chain_network.devnet.rpc("starknet_getTransactionReceipt",
                                       {"transaction_hash": purchase.order["mint_tx_hash"]})
    before_mint = vault.vusd_balance(address) - 5 * 10**VUSD_DECIMALS
    chain_network.devnet.abort_blocks(int(receipt["block_number"]))
    assert not vault.is_payment_used(bytes.fromhex(purchase.order["payment_hash"])), "the block was not lost"
    assert vault.vusd_balance(address) == before_mint

    slow.wait_logged("its mint was rolled back; minted again", repaired)
    wait_until(lambda: vault.is_payment_used(bytes.fromhex(purchase.order["payment_hash"])),
               timeout=Timeouts.PAYMENT, what="the repair mint to be accepted")
    settled_soundly(judge, purchase, before_mint)


def test_the_reconcile_command_mints_a_lost_block_again(
    shopper: Buyer, judge: Judge, vault: StarknetClient, chain_network: Network,
) -> None:
    """`python -m service.reconcile`, run by an operator beside the live service (whose own pass is minutes
    away): no worker in its process, yet it mints again, from a lane it leases, so never beside the worker on the
    same account. While the worker still holds the lane the command says so and changes nothing; run again, it
    repairs. Judged from the vault and lnd."""
    KillRig(chain_network).restart()
    purchase = shopper.buy(fresh_address(), "5.00")
    address = int(purchase.order["starknet_address"], 16)
    assert purchase.order["status"] == "completed" and chain_network.devnet is not None
    receipt = chain_network.devnet.rpc("starknet_getTransactionReceipt",
                                       {"transaction_hash": purchase.order["mint_tx_hash"]})
    before_mint = vault.vusd_balance(address) - 5 * 10**VUSD_DECIMALS
    chain_network.devnet.abort_blocks(int(receipt["block_number"]))
    assert not vault.is_payment_used(bytes.fromhex(purchase.order["payment_hash"])), "the block was not lost"

    finding = wait_until(lambda: _reconciled(chain_network, purchase.order_id), timeout=Timeouts.PAYMENT,
                         what="the reconcile command to mint the lost block's purchase again")
    assert finding["kind"] == "mint_rolled_back" and finding["detail"].startswith("minted again"), finding
    wait_until(lambda: vault.is_payment_used(bytes.fromhex(purchase.order["payment_hash"])),
               timeout=Timeouts.PAYMENT, what="the repair mint to be accepted")
    settled_soundly(judge, purchase, before_mint)


def _reconciled(network: Network, order_id: str) -> dict[str, object] | None:
    """The command's finding for the order once it repaired it; None while every lane is leased (exit 1, the
    finding says it was not minted again), so the caller runs it again."""
    assert network.service is not None
    done = subprocess.run([sys.executable, "-m", "service.reconcile", "--hours", "1"], capture_output=True,
                          text=True, env=network.service.environment(), timeout=Timeouts.PAYMENT)
    assert done.returncode in (0, 1), f"the command crashed ({done.returncode}):\n{done.stderr[-3000:]}"
    findings = {finding["order_id"]: finding for finding in json.loads(done.stdout)["findings"]}
    finding = findings.get(order_id)
    assert finding is not None, f"no finding for {order_id}: {done.stdout}"
    if not finding["repaired"]:
        assert finding["detail"].startswith("not minted again yet"), finding
        time.sleep(2)
        return None
    return finding


@pytest.mark.parametrize("restart", ["merchant", "devnet"])
def test_a_dependency_restarted_mid_order_still_ends_sound(
    restart: str, slow: SlowRig, shopper: Buyer, judge: Judge, vault: StarknetClient, chain_network: Network,
) -> None:
    point = Checkpoint.MINTING if restart == "merchant" else Checkpoint.MINT_SENT
    slow.restart(pause_at=point)
    purchase, vusd_before = slow.paused_purchase(shopper, vault, point)
    process = chain_network.merchant if restart == "merchant" else chain_network.devnet
    assert process is not None
    old_pid = process.pid
    process.restart()
    assert process.pid != old_pid, f"{restart} was not restarted"
    if restart == "merchant":
        chain_network.merchant.wait_ready()
        judge = outside_judge(chain_network, vault)
    final = shopper.follow(purchase, timeout=Timeouts.PAYMENT * 4)
    if final["status"] == "completed":
        settled_soundly(judge, purchase, vusd_before)
    else:
        assert final["status"] == "refunded", final
        refunded_soundly(judge, purchase, vusd_before)
