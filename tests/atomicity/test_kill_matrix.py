"""SIGKILL the service at every state and between every state and its side effect, with 2-second blocks,
VOLTA_KILL_REPEATS times each (10 by default). Each kill is proven to have landed where it was aimed (the
service logged its stop at that checkpoint), and each order is judged from lnd and the vault alone."""

from __future__ import annotations

import os
from decimal import Decimal

import pytest

from harness.judge import Judge
from harness.network import INITIAL_BTC_USD, Network
from harness.purchase import Buyer
from harness.util import Timeouts, wait_until
from service.domain.settlement import Checkpoint
from service.starknet.client import StarknetClient
from tests.atomicity.conftest import (
    KillRig,
    completes_soundly,
    fresh_address,
    move_price,
    refunded_soundly,
)

pytestmark = pytest.mark.regtest
REPEATS = int(os.environ.get("VOLTA_KILL_REPEATS", "10"))
# Killed here, the order must still end completed.
COMPLETING_POINTS = [Checkpoint.PAYMENT_HELD, Checkpoint.MINTING, Checkpoint.MINT_SIGNED, Checkpoint.MINT_SENT,
                     Checkpoint.MINT_ACCEPTED, Checkpoint.MINTED, Checkpoint.SETTLED]
MINT_IN_FLIGHT = {Checkpoint.MINT_SIGNED, Checkpoint.MINT_SENT, Checkpoint.MINT_ACCEPTED, Checkpoint.MINTED}
MINT_LANDED = {Checkpoint.MINT_ACCEPTED, Checkpoint.MINTED}
# An order recovered after a kill here passes the same checkpoint again (it mints or settles again), so the
# service restarts plain; elsewhere it restarts already stopping there for the next order.
PASSED_AGAIN_ON_RECOVERY = {Checkpoint.MINT_SIGNED, Checkpoint.SETTLED}


@pytest.mark.parametrize("point", COMPLETING_POINTS, ids=str)
def test_killed_at_checkpoint_the_purchase_still_completes(
    point: Checkpoint, rig: KillRig, shopper: Buyer, judge: Judge, vault: StarknetClient,
) -> None:
    for _ in range(REPEATS):
        rig.arm(point)
        purchase, vusd_before = rig.paused_purchase(shopper, vault, point)
        address = purchase.order["starknet_address"]

        verdict = judge.verdict(purchase.order)
        if point in MINT_IN_FLIGHT:  # the HTLC is held while the mint is undecided, never released
            assert (verdict.invoice_state, verdict.payment_status) == ("ACCEPTED", "IN_FLIGHT"), verdict
        if point in MINT_LANDED:  # VUSD exists while the sats are still only held
            assert verdict.hash_used and vault.vusd_balance(int(address, 16)) > vusd_before, verdict
        rig.kill_and_recover(rearm=None if point in PASSED_AGAIN_ON_RECOVERY else point)

        completes_soundly(shopper, judge, purchase, vusd_before)


def test_killed_after_refunding_before_the_cancel_the_sats_go_back(
    rig: KillRig, shopper: Buyer, judge: Judge, vault: StarknetClient, chain_network: Network,
) -> None:
    try:
        for _ in range(REPEATS):
            rig.arm(Checkpoint.REFUNDED)
            seen = rig.pauses_logged(Checkpoint.REFUNDED)
            move_price(chain_network, INITIAL_BTC_USD)
            purchase = shopper.create_order(fresh_address(), "5.00", max_slippage_bps=10)
            vusd_before = vault.vusd_balance(int(purchase.order["starknet_address"], 16))
            move_price(chain_network, INITIAL_BTC_USD * Decimal("1.01"))  # beyond the 10 bps bound
            shopper.pay(purchase)
            rig.wait_paused(Checkpoint.REFUNDED, seen)
            assert judge.verdict(purchase.order).invoice_state == "ACCEPTED", "refund recorded, HTLC still held"
            rig.kill_and_recover(rearm=Checkpoint.REFUNDED)

            final = shopper.follow(purchase, timeout=Timeouts.PAYMENT * 3)
            assert (final["status"], final["refund_reason"]) == ("refunded", "slippage_exceeded"), final
            refunded_soundly(judge, purchase, vusd_before)
    finally:
        move_price(chain_network, INITIAL_BTC_USD)


def test_killed_while_awaiting_payment_a_payment_held_meanwhile_completes(
    rig: KillRig, shopper: Buyer, judge: Judge, vault: StarknetClient, chain_network: Network,
) -> None:
    merchant = chain_network.merchant.client()
    if rig.armed:
        rig.restart()
    for _ in range(REPEATS):
        purchase = shopper.create_order(fresh_address(), "5.00")
        vusd_before = vault.vusd_balance(int(purchase.order["starknet_address"], 16))
        rig.service.kill()
        shopper.pay(purchase)
        payment_hash = bytes.fromhex(purchase.order["payment_hash"])
        wait_until(lambda payment_hash=payment_hash: merchant.lookup_invoice(payment_hash)["state"] == "ACCEPTED",
                   timeout=Timeouts.PAYMENT, what="lnd to hold the HTLC while the service is down")
        assert not rig.service.is_running()
        rig.restart()

        completes_soundly(shopper, judge, purchase, vusd_before)
