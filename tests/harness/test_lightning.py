"""The regtest Lightning network itself: real btcd, real lnd, real channels and HTLCs."""

from __future__ import annotations

import hashlib
import secrets
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from harness.lnd import quiet_local_msat
from harness.lnd_client import HarnessLndClient
from harness.network import Network
from harness.process import ProcessError
from harness.util import Timeouts, wait_until

pytestmark = pytest.mark.regtest


def local_msat(client: HarnessLndClient) -> int:
    return client.channel_balance()["local_msat"]


def wait_local_msat(client: HarnessLndClient, expected_msat: int, who: str) -> None:
    """Balances settle a moment after the payer hears of success (commitment updates), so wait."""
    wait_until(lambda: local_msat(client) == expected_msat, timeout=Timeouts.INVOICE_STATE,
               what=f"{who}'s spendable balance to be {expected_msat} msat")


def invoice_state(client: HarnessLndClient, payment_hash: bytes) -> str:
    return client.lookup_invoice(payment_hash)["state"]


def pay_in_background(payer: HarnessLndClient, bolt11: str) -> tuple[Future[dict[str, Any]], list[dict]]:
    """Start paying; the HTLC stays in flight until the hold invoice is settled or cancelled."""
    updates: list[dict] = []

    def pay() -> dict[str, Any]:
        for update in payer.send_payment(bolt11, timeout_s=int(Timeouts.PAYMENT)):
            updates.append(update)
            if update.get("status") in ("SUCCEEDED", "FAILED"):
                return update
        return updates[-1]

    return ThreadPoolExecutor(max_workers=1).submit(pay), updates


def test_no_lnd_lost_btcd_during_bring_up(network: Network) -> None:
    """btcd restarts once at bring-up (to mine to the payer). An lnd that reconnected across it could lose its
    wallet's rescan and never call itself synced (a CI failure): none runs across that restart."""
    logs = {name: node.log_path.read_text(errors="replace") for name, node in network.nodes.items()}

    # Each log says how it connected (so the lines looked for are lnd's own words), and none lost btcd since.
    assert [name for name, log in logs.items() if "Established connection to RPC server" not in log] == []
    assert [name for name, log in logs.items()
            if "Reestablished connection to RPC server" in log or "Websocket receive error" in log] == []


def test_multi_hop_payment_moves_both_balances(network: Network, merchant, payer) -> None:
    amount_msat = 50_000_000
    merchant_before, payer_before = quiet_local_msat(merchant), quiet_local_msat(payer)
    invoice = merchant.add_invoice(amount_msat, memo="multi-hop")

    result = payer.pay(invoice["payment_request"])

    assert result["status"] == "SUCCEEDED", result.get("failure_reason")
    assert len(result["htlcs"][-1]["route"]["hops"]) == 2, "payer -> router -> merchant is two hops"
    fee_msat = int(result["fee_msat"])
    assert fee_msat > 0, "the router charges a routing fee"
    assert invoice_state(merchant, bytes.fromhex(invoice["payment_hash"])) == "SETTLED"
    wait_local_msat(merchant, merchant_before + amount_msat, "merchant")
    wait_local_msat(payer, payer_before - amount_msat - fee_msat, "payer")


def test_hold_invoice_is_held_then_settled(merchant, payer) -> None:
    preimage = secrets.token_bytes(32)
    payment_hash = hashlib.sha256(preimage).digest()
    bolt11 = merchant.add_hold_invoice(payment_hash, 20_000_000, memo="hold then settle")

    payment, updates = pay_in_background(payer, bolt11)
    wait_until(lambda: invoice_state(merchant, payment_hash) == "ACCEPTED",
               timeout=Timeouts.INVOICE_STATE, what="HTLC accepted on the merchant")

    assert not payment.done(), "the payer's payment must stay in flight while the HTLC is held"
    assert updates and updates[-1]["status"] == "IN_FLIGHT"
    merchant.settle_invoice(preimage)
    result = payment.result(timeout=Timeouts.PAYMENT)
    assert result["status"] == "SUCCEEDED"
    assert result["payment_preimage"] == preimage.hex()
    assert invoice_state(merchant, payment_hash) == "SETTLED"


def test_cancelled_hold_invoice_returns_the_payers_sats(merchant, payer) -> None:
    payment_hash = hashlib.sha256(secrets.token_bytes(32)).digest()
    bolt11 = merchant.add_hold_invoice(payment_hash, 30_000_000, memo="hold then cancel")
    payer_before = quiet_local_msat(payer)

    payment, _ = pay_in_background(payer, bolt11)
    wait_until(lambda: invoice_state(merchant, payment_hash) == "ACCEPTED",
               timeout=Timeouts.INVOICE_STATE, what="HTLC accepted on the merchant")
    assert local_msat(payer) < payer_before, "while held, the HTLC's amount is locked"
    merchant.cancel_invoice(payment_hash)

    result = payment.result(timeout=Timeouts.PAYMENT)
    assert result["status"] == "FAILED"
    assert invoice_state(merchant, payment_hash) == "CANCELED"
    wait_local_msat(payer, payer_before, "payer")


def test_merchant_restart_keeps_its_invoices(network: Network) -> None:
    invoice = network.merchant.client().add_invoice(1_000_000, memo="survives restart")

    network.merchant.restart()

    looked_up = network.merchant.client().lookup_invoice(bytes.fromhex(invoice["payment_hash"]))
    assert looked_up["payment_request"] == invoice["payment_request"]
    assert looked_up["state"] == "OPEN"
    network.wait_routable()


def test_killed_node_is_detected_not_hung_on(network: Network) -> None:
    node = network.merchant
    client = node.client()
    node.kill()

    with pytest.raises(ProcessError, match="exited"):
        node.ensure_alive()
    with pytest.raises(httpx.TransportError):
        httpx.get(client.rest_url + "/v1/getinfo", verify=False, timeout=5)

    node.start()  # returns once the node answers and is synced, as every process's start does

    assert node.client().get_info()["synced_to_chain"]
    network.wait_routable()


def test_mission_control_can_be_reset(payer) -> None:  # type: ignore[no-untyped-def]
    """The bring-up resets it after a failed probe; lnd answers 404 to a wrong route, so a reset that
    silently failed would leave pathfinding steered away from the route for an hour."""
    payer.reset_mission_control()
