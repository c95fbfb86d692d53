"""Griefing costs (scenarios/griefing.py): the service's limits are read, not invented; the costs follow
the rules they state."""

from __future__ import annotations

from dataclasses import replace

import pytest

from scenarios import griefing
from service.config import Settings


def test_rate_limits_are_read_from_flask_limiter_text() -> None:
    assert griefing.parse_rate_limit("30/minute;300/hour") == [(30, 60), (300, 3_600)]
    assert griefing.parse_rate_limit("10 per 2 minutes") == [(10, 120)]
    assert griefing.sustained_per_hour("30/minute;300/hour") == 300
    assert griefing.sustained_per_hour("10/minute;100/day") == pytest.approx(100 / 24)
    assert griefing.burst_within("30/minute;300/hour", 300) == 150
    with pytest.raises(ValueError):
        griefing.parse_rate_limit("lots")


def test_limits_are_the_services_defaults() -> None:
    limits = griefing.ServiceLimits.defaults()
    fields = Settings.model_fields
    assert limits.orders_per_ip == fields["rate_limit_orders_per_ip"].default
    assert limits.orders_per_address == fields["rate_limit_orders_per_address"].default
    assert limits.quote_lifetime_s == fields["quote_lifetime_s"].default
    assert limits.max_hold_s == fields["max_hold_s"].default
    assert limits.min_order_vusd == float(fields["min_order_vusd"].default)


def test_every_external_figure_has_a_source() -> None:
    facts = griefing.LightningFacts()
    assert facts.max_accepted_htlcs == 483 and facts.mpp_hold_s == 120
    assert {"max_accepted_htlcs", "mpp_hold_s", "min_htlc_msat", "no_fee_on_failure"} <= set(griefing.SOURCES)


def test_slot_jamming_fills_every_slot_and_pays_no_fee() -> None:
    limits, facts = griefing.ServiceLimits.defaults(), griefing.LightningFacts()
    attacker = griefing.AttackerCosts(merchant_channels=3)
    result = griefing.slot_jamming(limits, facts, attacker, hours=24)
    assert result["htlcs"] == 3 * 483 and result["fees_sat"] == 0
    assert result["locked_sat"] == 3 * 483 * facts.min_htlc_msat / 1_000
    # one order holds its parts until its invoice expires, so orders per hour follow the quote lifetime
    assert result["orders_per_hour"] == pytest.approx(result["orders_at_once"] * 3_600 / limits.quote_lifetime_s)
    assert result["ips"] >= 1 and result["addresses"] >= 1
    shorter = griefing.slot_jamming(replace(limits, quote_lifetime_s=60), facts, attacker, hours=24)
    assert shorter["orders_per_hour"] > result["orders_per_hour"] and shorter["addresses"] > result["addresses"]


def test_liquidity_lock_holds_the_capacity_below_the_largest_order() -> None:
    limits, facts, attacker = griefing.ServiceLimits.defaults(), griefing.LightningFacts(), griefing.AttackerCosts()
    result = griefing.liquidity_lock(limits, facts, attacker, inbound_capacity_sat=100_000_000)
    order_sat = limits.max_order_vusd / attacker.btc_usd * 1e8
    assert result["orders_at_once"] * order_sat >= 100_000_000
    assert (result["orders_at_once"] - 1) * (order_sat - facts.min_htlc_msat / 1_000) < 100_000_000


def test_flooding_cost_grows_with_the_capacity_it_must_fill() -> None:
    limits, facts, attacker = griefing.ServiceLimits.defaults(), griefing.LightningFacts(), griefing.AttackerCosts()
    one, two = (griefing.flooding(limits, facts, attacker, rate, latency_s=10.0) for rate in (1.0, 2.0))
    assert two["fees_sat"] == pytest.approx(2 * one["fees_sat"])
    assert two["ips"] >= one["ips"] and two["addresses"] >= one["addresses"]
