"""The paths a normal purchase never reaches, each driven for real and judged from lnd and the vault:
a partial MPP shard, an overpayment, the daily limit at settlement, a stale oracle at payment time, a
payment after expiry, and a payment hash used on the vault before the service mints."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from harness.contracts.deploy import set_price
from harness.judge import Judge
from harness.lnd_client import HarnessLndClient
from harness.network import INITIAL_BTC_USD, Network
from harness.purchase import Buyer
from harness.util import Timeouts, wait_until
from service.domain.pricing import VUSD_DECIMALS
from service.starknet.client import StarknetClient
from tests.atomicity.conftest import SERVICE_ENV, KillRig, fresh_address, refunded_soundly, settled_soundly

pytestmark = pytest.mark.regtest


@pytest.fixture
def service_with(chain_network: Network) -> Iterator[KillRig]:
    rig = KillRig(chain_network)
    yield rig
    rig.restart()


@pytest.fixture(scope="module")
def route_payer(chain_network: Network) -> Iterator[HarnessLndClient]:
    payer = chain_network.payer
    client = HarnessLndClient(payer.rest_url, payer.tls_cert, payer.macaroon)
    yield client
    client.close()


@pytest.fixture(scope="module")
def sends() -> Iterator[ThreadPoolExecutor]:
    pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="send-to-route")
    yield pool
    pool.shutdown(wait=False, cancel_futures=True)


def test_a_partial_mpp_shard_never_reaches_accepted_and_is_released(
    service_with: KillRig, shopper: Buyer, judge: Judge, route_payer: HarnessLndClient, sends: ThreadPoolExecutor,
    chain_network: Network,
) -> None:
    """lnd does not accept less than the invoice: the shard waits for the rest of its set, the invoice stays
    OPEN (the service's own underpaid check stays a second line), and the expiry cancel releases it."""
    service_with.service.restart(SERVICE_ENV | {"VOLTA_QUOTE_LIFETIME_S": "12"})
    purchase = shopper.create_order(fresh_address(), "5.00")
    total = purchase.order["amount_msat"]
    attempt = sends.submit(route_payer.send_shard, purchase.order["bolt11"], total // 2, total)
    merchant = chain_network.merchant.client()
    payment_hash = bytes.fromhex(purchase.order["payment_hash"])
    wait_until(lambda: any(htlc.get("state") == "ACCEPTED" for htlc in merchant.lookup_invoice(payment_hash)
                           .get("htlcs", [])), timeout=Timeouts.PAYMENT, what="the shard to reach the merchant")
    assert merchant.lookup_invoice(payment_hash)["state"] == "OPEN", "a partial payment must not be ACCEPTED"
    final = shopper.follow(purchase)
    assert final["status"] == "expired", final
    assert attempt.result(timeout=Timeouts.PAYMENT)["status"] == "FAILED", "the shard was not released"
    assert judge.verdict(purchase.order).sound


def test_an_overpaid_htlc_is_refunded_whole(
    shopper: Buyer, judge: Judge, route_payer: HarnessLndClient, sends: ThreadPoolExecutor, vault: StarknetClient,
) -> None:
    purchase = shopper.create_order(fresh_address(), "5.00")
    vusd_before = vault.vusd_balance(int(purchase.order["starknet_address"], 16))
    total = purchase.order["amount_msat"] + 1_000_000
    attempt = sends.submit(route_payer.send_shard, purchase.order["bolt11"], total, total)
    purchase.payment = attempt  # lnd's HTLCAttempt: SUCCEEDED or FAILED, like a payment's status
    final = shopper.follow(purchase)
    assert (final["status"], final["refund_reason"]) == ("refunded", "overpaid"), final
    refunded_soundly(judge, purchase, vusd_before)


def test_the_daily_limit_is_checked_again_at_settlement(
    service_with: KillRig, shopper: Buyer, judge: Judge, vault: StarknetClient,
) -> None:
    service_with.service.restart(SERVICE_ENV | {"VOLTA_MAX_VUSD_PER_ADDRESS_PER_DAY": "8"})
    address = fresh_address()
    first, second = shopper.create_order(address, "5.00"), shopper.create_order(address, "5.00")
    vusd_before = vault.vusd_balance(int(first.order["starknet_address"], 16))
    shopper.pay(first)
    assert shopper.follow(first)["status"] == "completed"
    settled_soundly(judge, first, vusd_before)
    shopper.pay(second)
    final = shopper.follow(second)
    assert (final["status"], final["refund_reason"]) == ("refunded", "limit_exceeded"), final
    refunded_soundly(judge, second, vusd_before + 5 * 10**VUSD_DECIMALS)


def test_a_price_gone_stale_by_payment_time_refunds(
    service_with: KillRig, shopper: Buyer, judge: Judge, vault: StarknetClient, chain_network: Network,
) -> None:
    service_with.service.restart(SERVICE_ENV | {"VOLTA_MAX_PRICE_AGE_S": "6"})
    asyncio.run(set_price(chain_network.owner_account(), chain_network.contracts.oracle, INITIAL_BTC_USD))
    purchase = shopper.create_order(fresh_address(), "5.00")
    vusd_before = vault.vusd_balance(int(purchase.order["starknet_address"], 16))
    time.sleep(8)  # the oracle's last update is now older than 6 s
    shopper.pay(purchase)
    final = shopper.follow(purchase)
    assert (final["status"], final["refund_reason"]) == ("refunded", "slippage_exceeded"), final
    assert "stale" in final["history"][-1]["detail"] or "old" in final["history"][-1]["detail"], final["history"]
    refunded_soundly(judge, purchase, vusd_before)


def test_a_payment_after_expiry_is_refused_and_nothing_is_minted(
    service_with: KillRig, shopper: Buyer, judge: Judge, vault: StarknetClient, route_payer: HarnessLndClient,
    sends: ThreadPoolExecutor,
) -> None:
    """A wallet refuses to pay an expired invoice, so the late HTLC is sent along a route by hand."""
    service_with.service.restart(SERVICE_ENV | {"VOLTA_QUOTE_LIFETIME_S": "5"})
    purchase = shopper.create_order(fresh_address(), "5.00")
    vusd_before = vault.vusd_balance(int(purchase.order["starknet_address"], 16))
    assert shopper.follow(purchase)["status"] == "expired"
    amount = purchase.order["amount_msat"]
    purchase.payment = sends.submit(route_payer.send_shard, purchase.order["bolt11"], amount, amount)
    assert purchase.payment.result(timeout=Timeouts.PAYMENT)["status"] == "FAILED"
    refunded_soundly(judge, purchase, vusd_before)


def test_a_hash_used_on_the_vault_before_minting_goes_to_failed_and_the_htlc_waits_for_an_operator(
    shopper: Buyer, vault: StarknetClient, chain_network: Network,
) -> None:
    purchase = shopper.create_order(fresh_address(), "5.00")
    payment_hash = bytes.fromhex(purchase.order["payment_hash"])
    vault.mint_for_payment(int(fresh_address(), 16), 10**VUSD_DECIMALS, payment_hash)  # someone minted that hash first
    assert vault.is_payment_used(payment_hash)
    shopper.pay(purchase)
    final = shopper.follow(purchase)
    assert final["status"] == "failed", final
    merchant = chain_network.merchant.client()
    assert merchant.lookup_invoice(payment_hash)["state"] == "ACCEPTED", "neither claimed nor released"
    metrics = httpx.get(f"{chain_network.service.url}/metrics", timeout=10).text
    assert 'volta_orders{state="failed"}' in metrics and 'volta_orders{state="failed"} 0.0' not in metrics
    merchant.cancel_invoice(payment_hash)  # what the operator would do here: the payer gets the sats back
    assert purchase.payment is not None and purchase.payment.result(Timeouts.PAYMENT)["status"] == "FAILED"
