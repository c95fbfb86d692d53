"""Griefing the service: what an attacker pays, in capital x time, fees, channels, IPs and addresses, for an
hour of service denied, under the service's own limits (read from `service.config.Settings`).

Three attacks, each a pure function of explicit parameters:

* **slot jamming** — partial MPP sets (parts that never add up to the invoice) fill the `max_accepted_htlcs`
  slots of every channel into the merchant. lnd fails a partial set back after `mpp_hold_s`; the attacker
  sends it again at once, to the same invoice, until the invoice expires (`quote_lifetime_s`): one order jams
  one channel for a quote lifetime. No payment settles, so no routing fee is paid.
* **liquidity lock** — the same, with parts as large as the invoice allows (just under `max_order_vusd`): the
  merchant's inbound capacity and the same amount on every routing hop are locked, slots left free.
* **flooding** — real, completed purchases of `min_order_vusd`, fast enough to fill the service's capacity
  (the queue model's ceiling): they cost the spread and the routing fees, and are limited per IP and address.

Every external figure is a parameter of `LightningFacts` with the source it was checked against; nothing
here is measured on mainnet.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3_600, "day": 86_400}
HOUR_S = 3_600


def parse_rate_limit(text: str) -> list[tuple[int, int]]:
    """Flask-Limiter text ("30/minute;300/hour") as (count, seconds) pairs."""
    pairs = []
    for part in re.split(r"[;,]", text):
        part = part.strip()
        if not part:
            continue
        match = re.fullmatch(r"(\d+)\s*(?:/|per)\s*(\d+)?\s*(second|minute|hour|day)s?", part)
        if match is None:
            raise ValueError(f"cannot read the rate limit {part!r} in {text!r}")
        count, multiple, unit = int(match[1]), int(match[2] or 1), match[3]
        pairs.append((count, multiple * UNIT_SECONDS[unit]))
    return pairs


def sustained_per_hour(text: str) -> float:
    """The most requests per hour a key can keep up for a day under the limit (the tightest window wins)."""
    return min(count / seconds for count, seconds in parse_rate_limit(text)) * HOUR_S


def burst_within(text: str, seconds: float) -> float:
    """The most requests one key can make inside `seconds` (each window allows its count, then refills)."""
    return min(count * math.ceil(seconds / window) for count, window in parse_rate_limit(text))


@dataclass(frozen=True)
class ServiceLimits:
    """The service's limits that bound an attacker, as configured."""
    orders_per_ip: str
    orders_per_address: str
    quote_lifetime_s: int
    max_hold_s: int
    min_order_vusd: float
    max_order_vusd: float
    max_vusd_per_address_per_day: float
    spread_bps: int

    @classmethod
    def from_settings(cls, settings: Any) -> ServiceLimits:
        return cls(orders_per_ip=settings.rate_limit_orders_per_ip,
                   orders_per_address=settings.rate_limit_orders_per_address,
                   quote_lifetime_s=int(settings.quote_lifetime_s), max_hold_s=int(settings.max_hold_s),
                   min_order_vusd=float(Decimal(settings.min_order_vusd)),
                   max_order_vusd=float(Decimal(settings.max_order_vusd)),
                   max_vusd_per_address_per_day=float(Decimal(settings.max_vusd_per_address_per_day)),
                   spread_bps=int(settings.spread_bps))

    @classmethod
    def defaults(cls) -> ServiceLimits:
        from service.config import Settings

        return cls.from_settings(Settings.model_construct())

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LightningFacts:
    """Protocol and lnd constants, each with where it was checked (see SOURCES)."""
    max_accepted_htlcs: int = 483  # BOLT #2; lnd input/size.go MaxHTLCNumber 966 (483 a side)
    mpp_hold_s: float = 120.0  # lnd invoices/invoiceregistry.go DefaultHtlcHoldDuration
    min_htlc_msat: int = 1_000  # lnd chainreg DefaultBitcoinMinHTLCOutMSat: a router forwards nothing smaller
    base_fee_msat: int = 1_000  # lnd chainreg DefaultBitcoinBaseFeeMSat (paid only when a payment settles)
    fee_rate_ppm: int = 1  # lnd chainreg DefaultBitcoinFeeRate
    fee_on_failure_msat: int = 0  # BOLT #4/#2: fees are the difference kept on fulfilment; failed HTLCs pay none


SOURCES = {
    "max_accepted_htlcs": "BOLT #2 (lightning/bolts 02-peer-protocol.md): the receiver MUST fail the channel if "
                          "max_accepted_htlcs is greater than 483; lnd input/size.go MaxHTLCNumber = 966 (both "
                          "sides), 483 a side",
    "mpp_hold_s": "lnd invoices/invoiceregistry.go: DefaultHtlcHoldDuration = 120 s, how long MPP HTLCs are held "
                  "while waiting for the other set members",
    "min_htlc_msat": "lnd chainreg/chainregistry.go: DefaultBitcoinMinHTLCInMSat = 1 msat, "
                     "DefaultBitcoinMinHTLCOutMSat = 1,000 msat, DefaultBitcoinBaseFeeMSat = 1,000 msat, "
                     "DefaultBitcoinFeeRate = 1 ppm",
    "no_fee_on_failure": "Bitcoin Optech, 'Channel jamming attacks' (bitcoinops.org/en/topics/channel-jamming-"
                         "attacks/): an attacker jams 483 slots per channel 'without paying any fees'",
}


@dataclass(frozen=True)
class AttackerCosts:
    """Assumptions about the attacker's side; every one is varied in the notebook."""
    btc_usd: float = 90_000.0  # assumption, for sat <-> USD only
    channel_open_sat: int = 5_000  # assumption: on-chain fees to open and later close one channel
    capital_cost_per_year: float = 0.05  # assumption: what locked bitcoin could earn elsewhere, per year
    merchant_channels: int = 1  # channels into the merchant (the regtest network has one)
    ip_cost_usd_per_day: float = 0.0  # assumption: proxies/VPS addresses are near free
    hops: int = 2  # routing hops between attacker and merchant whose channels are also locked


def slot_jamming(limits: ServiceLimits, facts: LightningFacts, attacker: AttackerCosts,
                 hours: float = 1.0) -> dict[str, float]:
    """Every slot of every channel into the merchant held by partial MPP sets for `hours`."""
    htlcs = facts.max_accepted_htlcs * attacker.merchant_channels
    part_sat = facts.min_htlc_msat / 1_000
    # The attacker picks the order's size: the largest order takes the most parts whose sum stays short of it.
    # The parts are never paid, so the order's size costs nothing (unpaid orders use no daily allowance).
    order_sat = limits.max_order_vusd / attacker.btc_usd * 1e8
    parts_per_order = max(1, math.floor((order_sat - 1) / part_sat))
    orders_at_once = math.ceil(htlcs / parts_per_order)
    # An order's invoice takes partial sets until it expires; lnd fails each set after mpp_hold_s.
    order_life_s = limits.quote_lifetime_s
    orders = orders_at_once * math.ceil(hours * HOUR_S / order_life_s)
    resends = orders_at_once * math.ceil(hours * HOUR_S / facts.mpp_hold_s)
    locked_sat = htlcs * part_sat
    return _costs("slot jamming", limits, attacker, hours, orders, orders_at_once, locked_sat,
                  routed_htlcs=htlcs, resends=resends, fees_sat=0.0, denied_fraction=1.0,
                  attacker_channels=math.ceil(htlcs / facts.max_accepted_htlcs))


def liquidity_lock(limits: ServiceLimits, facts: LightningFacts, attacker: AttackerCosts,
                   inbound_capacity_sat: float, hours: float = 1.0) -> dict[str, float]:
    """The merchant's inbound capacity held by partial sets just under the largest order."""
    order_sat = limits.max_order_vusd / attacker.btc_usd * 1e8
    held_per_order = order_sat - facts.min_htlc_msat / 1_000  # one part short: the set never completes
    orders_at_once = math.ceil(inbound_capacity_sat / held_per_order)
    orders = orders_at_once * math.ceil(hours * HOUR_S / limits.quote_lifetime_s)
    return _costs("liquidity lock", limits, attacker, hours, orders, orders_at_once, inbound_capacity_sat,
                  routed_htlcs=orders_at_once, resends=orders_at_once * math.ceil(hours * HOUR_S / facts.mpp_hold_s),
                  fees_sat=0.0, denied_fraction=1.0, attacker_channels=attacker.merchant_channels)


def flooding(limits: ServiceLimits, facts: LightningFacts, attacker: AttackerCosts, capacity_per_s: float,
             latency_s: float, hours: float = 1.0) -> dict[str, float]:
    """Completed purchases of the smallest order at the service's capacity (`capacity_per_s`, and `latency_s`
    each, from the queue model): honest buyers queue behind them. The attacker keeps the VUSD; it loses the
    spread and the routing fees."""
    orders = capacity_per_s * hours * HOUR_S
    order_sat = limits.min_order_vusd / attacker.btc_usd * 1e8
    fee_sat = attacker.hops * (facts.base_fee_msat / 1_000 + order_sat * facts.fee_rate_ppm / 1e6)
    spread_sat = order_sat * limits.spread_bps / 1e4
    in_flight = capacity_per_s * latency_s  # Little's law: purchases (and their HTLCs) in flight at once
    return _costs("flooding", limits, attacker, hours, orders, in_flight, in_flight * order_sat,
                  routed_htlcs=orders, resends=0, fees_sat=orders * (fee_sat + spread_sat),
                  denied_fraction=1.0,  # at capacity an honest buyer's wait grows without bound
                  attacker_channels=max(1, math.ceil(in_flight / facts.max_accepted_htlcs)))


def _costs(attack: str, limits: ServiceLimits, attacker: AttackerCosts, hours: float, orders: float,
           orders_at_once: float, locked_sat: float, routed_htlcs: float, resends: float, fees_sat: float,
           denied_fraction: float, attacker_channels: int) -> dict[str, Any]:
    per_ip_hour = sustained_per_hour(limits.orders_per_ip)
    per_address_hour = sustained_per_hour(limits.orders_per_address)
    orders_per_hour = orders / hours
    ips = math.ceil(orders_per_hour / per_ip_hour)
    addresses = math.ceil(orders_per_hour / per_address_hour)
    locked_sat_hours = locked_sat * hours * (1 + attacker.hops)  # the attacker's and every hop's channel
    capital_cost_sat = locked_sat * hours / (365 * 24) * attacker.capital_cost_per_year
    channels_sat = attacker_channels * attacker.channel_open_sat
    total_sat = fees_sat + capital_cost_sat + channels_sat
    usd = total_sat / 1e8 * attacker.btc_usd + ips * attacker.ip_cost_usd_per_day * max(1.0, hours / 24)
    return {"attack": attack, "hours": hours, "orders": orders, "orders_at_once": orders_at_once,
            "orders_per_hour": orders_per_hour, "ips": ips, "addresses": addresses,
            "htlcs": routed_htlcs, "resends": resends, "locked_sat": locked_sat,
            "locked_sat_hours_all_hops": locked_sat_hours, "fees_sat": fees_sat,
            "capital_cost_sat": capital_cost_sat, "attacker_channels": attacker_channels,
            "channel_opens_sat": channels_sat, "total_sat": total_sat, "total_usd": usd,
            "usd_per_hour_denied": usd / hours if denied_fraction == denied_fraction else float("nan"),
            "denied_fraction": denied_fraction}


def rate_limit_bounds(limits: ServiceLimits) -> dict[str, float]:
    """What one IP and one address can do, per hour and per quote lifetime."""
    return {"orders_per_ip_per_hour": sustained_per_hour(limits.orders_per_ip),
            "orders_per_address_per_hour": sustained_per_hour(limits.orders_per_address),
            "orders_per_ip_per_quote_lifetime": burst_within(limits.orders_per_ip, limits.quote_lifetime_s),
            "orders_per_address_per_quote_lifetime": burst_within(limits.orders_per_address,
                                                                  limits.quote_lifetime_s),
            "orders_one_ip_keeps_open": sustained_per_hour(limits.orders_per_ip) * limits.quote_lifetime_s / HOUR_S,
            "order_hours_per_address_per_day": sustained_per_hour(limits.orders_per_address) * 24
            * limits.quote_lifetime_s / HOUR_S}
