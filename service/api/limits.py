"""Rate limits per client (Flask-Limiter). The limit per Starknet address counts created orders, so it lives with
them (service.domain.orders.PlaceOrder), not here.

A client is its IPv4 address, or the /64 network of its IPv6 address: an ISP hands one subscriber a /64 (or
more; RFC 6177), so counting each IPv6 address apart would give one person 2^64 quotas (notebook 8 found the
quote-shopping limit sidestepped that way)."""

from __future__ import annotations

import ipaddress

from flask import Flask
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from service.api import container
from service.config import Settings

IPV6_SUBSCRIBER_PREFIX = 64


def client_key(address: str) -> str:
    """`address` as the limits count it: IPv4 as is, IPv6 as its /64, anything unparsable as given."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, IPV6_SUBSCRIBER_PREFIX), strict=False))
    return str(ip)


def client() -> str:
    """The requesting client (behind VOLTA_PROXY_HOPS proxies, the address they forwarded), as the limits count it."""
    return client_key(get_remote_address())


limiter = Limiter(key_func=client)


def reads_per_ip() -> str:
    """The limit of every read anyone may make (rate, health, balance, an order, its QR code and events, a
    history page): each route counts apart, so a checkout page polling its order every few seconds stays far
    below it while a flood from one client is refused."""
    return container().settings.rate_limit_reads_per_ip


def init_app(app: Flask, settings: Settings) -> None:
    app.config["RATELIMIT_STORAGE_URI"] = settings.rate_limit_storage_url
    app.config["RATELIMIT_HEADERS_ENABLED"] = True
    limiter.init_app(app)
