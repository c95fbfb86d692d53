"""/metrics reports what really happened: a completed purchase and a refund show up by state and reason."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from harness.contracts.deploy import set_price
from harness.network import Network
from harness.purchase import Buyer

pytestmark = pytest.mark.regtest


def scrape(network: Network) -> dict[tuple[str, tuple], float]:
    text = httpx.get(f"{network.service.url}/metrics").text
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def test_metrics_count_completed_and_refunded_orders(network: Network, buyer: Buyer) -> None:
    before = scrape(network)
    address = network.users[0]["address"]
    assert buyer.buy(address, "2.00").order["status"] == "completed"
    purchase = buyer.create_order(address, "2.00", max_slippage_bps=10)
    owner, oracle = network.owner_account(), network.contracts.oracle
    asyncio.run(set_price(owner, oracle, Decimal("99000")))
    try:
        buyer.pay(purchase)
        assert buyer.follow(purchase)["refund_reason"] == "slippage_exceeded"
    finally:
        asyncio.run(set_price(owner, oracle, Decimal("97000")))

    after = scrape(network)
    completed = ("volta_orders", (("state", "completed"),))
    refunded = ("volta_refunds", (("reason", "slippage_exceeded"),))
    assert after[completed] == before.get(completed, 0) + 1
    assert after[refunded] == before.get(refunded, 0) + 1
    assert after[("volta_purchase_seconds_count", ())] >= 1
    assert after[("volta_mint_seconds_count", ())] >= 1
    assert after[("volta_held_htlcs", ())] == 0
