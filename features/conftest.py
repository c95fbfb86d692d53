"""Step definitions for the purchase features, against the real regtest network and the real service."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
from pytest_bdd import given, parsers, then, when

from harness.contracts.deploy import invoke, set_price
from harness.lnd import quiet_local_msat
from harness.network import Network
from harness.purchase import Buyer, Purchase
from harness.util import Timeouts, wait_until
from service.domain.pricing import vusd_from_base_units
from service.domain.states import OrderStatus
from service.starknet.client import StarknetClient

pytestmark = pytest.mark.regtest


@dataclass
class Story:
    address: str = ""
    vusd_before: int = 0
    payer_before_msat: int = 0
    purchase: Purchase | None = None
    second_payment: dict[str, Any] = field(default_factory=dict)


@pytest.fixture
def story() -> Story:
    return Story()


@pytest.fixture
def service_env(network: Network) -> Iterator[dict[str, str]]:
    """Extra environment for the service in this scenario; the service is restarted plain afterwards."""
    env: dict[str, str] = {}
    yield env
    if env and network.service is not None:
        network.service.restart()


@pytest.fixture
def paused_vault(network: Network) -> Iterator[list[bool]]:
    paused: list[bool] = []
    yield paused
    if paused:
        asyncio.run(invoke(network.owner_account(), network.contracts.vault, "unpause", []))


# -- given ----------------------------------------------------------------------------------------------


@given(parsers.parse("the BTC/USD price is {price}"))
@when(parsers.parse("the BTC/USD price moves to {price}"))
def btc_usd_price(network: Network, price: str) -> None:
    asyncio.run(set_price(network.owner_account(), network.contracts.oracle, Decimal(price)))


@given("a buyer with a Starknet address")
def buyer_address(story: Story, starknet: StarknetClient, network: Network) -> None:
    story.address = hex(secrets.randbits(248) | 1)  # a fresh address: balance 0, daily limit untouched
    story.vusd_before = starknet.vusd_balance(int(story.address, 16))
    story.payer_before_msat = quiet_local_msat(network.payer.client())


@given(parsers.parse("quotes live for {seconds:d} seconds"))
def short_quotes(network: Network, service_env: dict[str, str], seconds: int) -> None:
    service_env["VOLTA_QUOTE_LIFETIME_S"] = str(seconds)
    network.service.restart(dict(service_env))


@given("the vault is paused")
def vault_paused(network: Network, paused_vault: list[bool]) -> None:
    asyncio.run(invoke(network.owner_account(), network.contracts.vault, "pause", []))
    paused_vault.append(True)


@given(parsers.parse("the service will stall right after entering {state}"))
def service_stalls(network: Network, service_env: dict[str, str], state: str) -> None:
    service_env["VOLTA_FAULT_PAUSE_AFTER"] = f"{state}:120"
    network.service.restart(dict(service_env))


# -- when -----------------------------------------------------------------------------------------------


@when(parsers.re(r"the buyer orders (?P<amount>[\d.]+) VUSD( with a slippage bound of (?P<bps>\d+) bps)?"))
def order(story: Story, buyer: Buyer, amount: str, bps: str | None) -> None:
    extra = {"max_slippage_bps": int(bps)} if bps else {}
    story.purchase = buyer.create_order(story.address, amount, **extra)


@when("the payer pays the invoice")
def payer_pays(story: Story, buyer: Buyer) -> None:
    buyer.pay(story.purchase)


@when("nobody pays")
def nobody_pays() -> None:
    pass


@when(parsers.parse("the order reaches {state}"))
def order_reaches(story: Story, buyer: Buyer, state: str) -> None:
    wait_until(lambda: buyer.get(story.purchase.order_id)["status"] == state, timeout=Timeouts.PAYMENT,
               what=f"order to reach {state}")


@when("the vault has the payment hash as used")
def vault_has_hash(story: Story, starknet: StarknetClient) -> None:
    payment_hash = bytes.fromhex(story.purchase.order["payment_hash"])
    wait_until(lambda: starknet.is_payment_used(payment_hash), timeout=Timeouts.PAYMENT,
               what="the mint to land on the vault")


@then("the order's history shows the mint was found on the vault")
def mint_found(story: Story, buyer: Buyer) -> None:
    history = buyer.get(story.purchase.order_id)["history"]
    minted_details = [event["detail"] for event in history if event["status"] == OrderStatus.MINTED]
    assert minted_details == ["mint found on the vault"]


@when("the service is killed with SIGKILL and started again")
def kill_and_restart(network: Network, service_env: dict[str, str]) -> None:
    network.service.kill()
    service_env.clear()  # the restarted service runs without the stall
    network.service.restart()


@when("the router pays the same invoice again")
def router_pays_again(story: Story, network: Network) -> None:
    story.second_payment = network.router.client().pay(story.purchase.order["bolt11"], timeout_s=30)


# -- then -----------------------------------------------------------------------------------------------


@then(parsers.re(r"the order ends (?P<status>\w+)( with reason (?P<reason>\w+))?"))
def order_ends(story: Story, buyer: Buyer, status: str, reason: str | None) -> None:
    final = buyer.follow(story.purchase)
    assert final["status"] == status, final
    if reason:
        assert final["refund_reason"] == reason, final


@then(parsers.parse("the buyer's VUSD balance grew by {amount}"))
def balance_grew(story: Story, starknet: StarknetClient, amount: str) -> None:
    grown = starknet.vusd_balance(int(story.address, 16)) - story.vusd_before
    assert vusd_from_base_units(grown) == Decimal(amount)


@then("the buyer's VUSD balance did not change")
def balance_unchanged(story: Story, starknet: StarknetClient) -> None:
    assert starknet.vusd_balance(int(story.address, 16)) == story.vusd_before


@then("the payer's payment succeeded")
def payment_succeeded(story: Story) -> None:
    result = story.purchase.payment.result(timeout=Timeouts.PAYMENT)
    assert result["status"] == "SUCCEEDED", result.get("failure_reason")


@then("the payer's payment failed")
def payment_failed(story: Story) -> None:
    assert story.purchase.payment.result(timeout=Timeouts.PAYMENT)["status"] == "FAILED"


@then("the payer's spendable balance is back where it was")
def payer_refunded(story: Story, network: Network) -> None:
    assert quiet_local_msat(network.payer.client()) == story.payer_before_msat


@then(parsers.parse("the order's history is {statuses}"))
def history_is(story: Story, buyer: Buyer, statuses: str) -> None:
    history = [event["status"] for event in buyer.get(story.purchase.order_id)["history"]]
    assert history == [status.strip() for status in statuses.split(",")]


@then("that second payment fails")
def second_payment_fails(story: Story) -> None:
    assert story.second_payment["status"] == "FAILED", story.second_payment


@then("the vault knows the payment hash as used")
def hash_used(story: Story, starknet: StarknetClient) -> None:
    assert starknet.is_payment_used(bytes.fromhex(story.purchase.order["payment_hash"]))
