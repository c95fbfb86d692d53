"""Who the rate limits count as one client: an IPv4 address, or an IPv6 address's /64 (a subscriber's
allocation, RFC 6177), so fresh IPv6 addresses from one network do not each get a quota."""

from __future__ import annotations

import pytest

from service.api.limits import client, client_key, limiter


@pytest.mark.parametrize(("one", "other"), [
    ("2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:fffe"),  # the same /64
    ("2001:DB8:1:2::1", "2001:db8:1:2::1"),  # spelled differently
    ("::ffff:192.0.2.7", "192.0.2.7"),  # IPv4 mapped into IPv6
])
def test_one_client(one: str, other: str) -> None:
    assert client_key(one) == client_key(other)


@pytest.mark.parametrize(("one", "other"), [
    ("2001:db8:1:2::1", "2001:db8:1:3::1"),  # neighbouring /64s: two subscribers
    ("192.0.2.7", "192.0.2.8"),
])
def test_two_clients(one: str, other: str) -> None:
    assert client_key(one) != client_key(other)


def test_keys_read_well_and_garbage_passes_through() -> None:
    assert client_key("2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64"
    assert client_key("192.0.2.7") == "192.0.2.7"
    assert client_key("not-an-ip") == "not-an-ip"


def test_every_limit_counts_by_it() -> None:
    assert limiter._key_func is client
