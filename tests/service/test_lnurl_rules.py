"""The rules of the Lightning Address / LNURL-pay endpoint that need no network: usernames, metadata, the sats
range, the success message, the settings. The payment itself is tested end to end in test_lnurl.py."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal

import pytest
from lnurl import LnAddress, LnurlPayMetadata, MessageAction

from service.api.lnurl import (
    MAX_MESSAGE_CHARS,
    RANGE_MARGIN,
    LnurlRefusal,
    PayTarget,
    description_hash,
    pay_metadata,
    resolve_username,
    sendable_msat,
    success_message,
)
from service.config import Settings, SettingsError, load_settings
from service.domain.pricing import quote_for_sat

ADDRESS = "0x" + "0" * 61 + "abc"


@pytest.mark.parametrize("username", ["0xabc", "0xABC", "0x0abc", ADDRESS])
def test_a_starknet_address_is_its_own_username(username: str) -> None:
    target = resolve_username(username, {})
    assert target.starknet_address == ADDRESS
    assert target.username == username.lower()
    LnAddress(f"{target.username}@volta.test")  # what a wallet accepts as a Lightning Address (LUD-16)


def test_an_alias_names_the_operators_address() -> None:
    assert resolve_username("alice", {"alice": "0xABC"}) == PayTarget("alice", ADDRESS)


@pytest.mark.parametrize(("username", "reason"), [
    ("bob", "No Lightning Address bob here"),
    ("0xzz", "after 0x only hex digits"),
    ("0x0", "must not be zero"),
    ("0x" + "f" * 64, "below 2**251"),
    ("0x" + "1" * 65, "1 to 64 hex digits"),
    ("a b", "Not a Lightning Address username"),
    ("al!ce", "Not a Lightning Address username"),
])
def test_bad_usernames_are_refused_with_a_reason(username: str, reason: str) -> None:
    with pytest.raises(LnurlRefusal, match=reason.replace("*", r"\*")):
        resolve_username(username, {"alice": ADDRESS})


def test_the_metadata_is_what_lud06_and_lud16_ask_and_its_hash_is_the_invoices() -> None:
    metadata = pay_metadata(PayTarget("0xabc", ADDRESS), "volta.test", spread_bps=50)
    entries = dict(json.loads(metadata))
    assert ADDRESS in entries["text/plain"]
    assert entries["text/identifier"] == "0xabc@volta.test"
    assert "0.50 % spread" in entries["text/long-desc"]
    parsed = LnurlPayMetadata(metadata)  # the lnurl library's own validation
    assert description_hash(metadata) == hashlib.sha256(metadata.encode()).digest()
    assert parsed.h == description_hash(metadata).hex()


@pytest.mark.parametrize("btc_usd", [Decimal("15000"), Decimal("97123.45"), Decimal("250000")])
def test_the_range_is_whole_sats_inside_the_order_limits(btc_usd: Decimal) -> None:
    settings = Settings()
    low_msat, high_msat = sendable_msat(settings, btc_usd, settings.max_vusd_per_address_per_day)
    assert low_msat % 1000 == 0 and high_msat % 1000 == 0
    assert quote_for_sat(low_msat // 1000, btc_usd, settings.spread_bps).vusd_amount >= \
        settings.min_order_vusd * (1 + RANGE_MARGIN)
    assert quote_for_sat(high_msat // 1000, btc_usd, settings.spread_bps).vusd_amount <= \
        settings.max_order_vusd * (1 - RANGE_MARGIN)
    # the largest such amount: one sat more buys more than the bound
    assert quote_for_sat(high_msat // 1000 + 1, btc_usd, settings.spread_bps).vusd_amount > \
        settings.max_order_vusd * (1 - RANGE_MARGIN) - Decimal("0.01")


def test_the_range_shrinks_to_what_is_left_of_the_daily_allowance() -> None:
    settings = Settings()
    _, high_msat = sendable_msat(settings, Decimal("97000"), remaining_today_vusd=Decimal("20"))
    assert quote_for_sat(high_msat // 1000, Decimal("97000"), settings.spread_bps).vusd_amount <= Decimal("19.80")


def test_the_success_message_says_the_vusd_and_fits_lud09() -> None:
    message = success_message("1000.00", ADDRESS, "ord_" + "f" * 32)
    assert len(message) <= MAX_MESSAGE_CHARS
    assert message.startswith("1000.00 VUSD minted to 0xabc on Starknet")
    assert "0x1234…cdef" in success_message("5.00", "0x" + "1234" + "0" * 56 + "cdef", "ord_1")
    MessageAction(message=message)  # the lnurl library's model: at most 144 characters


def test_aliases_and_the_public_url_come_from_the_environment() -> None:
    settings = load_settings(environ={"VOLTA_LNURL_ALIASES": json.dumps({"alice": ADDRESS}),
                                      "VOLTA_LNURL_PUBLIC_URL": "https://pay.example.com/"})
    assert settings.lnurl_aliases == {"alice": ADDRESS}
    assert settings.lnurl_public_url == "https://pay.example.com"


@pytest.mark.parametrize("environ", [
    {"VOLTA_LNURL_ALIASES": json.dumps({"Alice": ADDRESS})},  # upper case: not a LUD-16 username
    {"VOLTA_LNURL_ALIASES": json.dumps({"0xabc": ADDRESS})},  # would shadow an address
    {"VOLTA_LNURL_ALIASES": json.dumps({"alice": "not an address"})},
    {"VOLTA_LNURL_ALIASES": "{not json"},
    {"VOLTA_LNURL_PUBLIC_URL": "https://pay.example.com/lnurl"},  # a path: callbacks are made from the host
])
def test_bad_lnurl_settings_are_refused(environ: dict[str, str]) -> None:
    with pytest.raises(SettingsError, match="lnurl_"):
        load_settings(environ=environ)


def test_the_cln_backend_refuses_a_description_hash_rather_than_issue_a_wrong_invoice() -> None:
    """CLN is untested here (no CLN on this machine): this only checks the refusal, before any RPC."""
    from service.lightning.base import LightningError
    from service.lightning.cln import ClnBackend

    backend = object.__new__(ClnBackend)  # no lightningd to connect to
    with pytest.raises(LightningError, match="use lnd"):
        backend.create_hold_invoice(bytes(32), bytes(32), 1_000_000, "memo", 300, description_hash=bytes(32))
