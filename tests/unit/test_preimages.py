"""Derived preimages: the rule as service/domain/preimages.py states it, rotation, and a service that will
not start without the key of an unfinished order."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from service.config import Settings
from service.container import load_preimage_keys
from service.domain.preimages import PreimageKeyMissing, PreimageKeys, key_id
from service.storage.database import make_engine, make_session_factory, migrate
from service.storage.orders import OrderRepository

OLD, NEW = "11" * 32, "22" * 32
NOW = datetime(2026, 11, 28, tzinfo=UTC)


def order(order_id: str, key: str | None, preimage: str | None = None) -> SimpleNamespace:
    return SimpleNamespace(id=order_id, preimage=preimage, preimage_key_id=key_id(bytes.fromhex(key)) if key else None)


def test_a_preimage_is_the_hmac_of_the_order_id_under_the_current_key() -> None:
    keys = PreimageKeys.parse(f"{NEW}\n{OLD}\n")
    expected = hmac.new(bytes.fromhex(NEW), b"volta-preimage:ord_1", hashlib.sha256).digest()
    assert keys.new_preimage("ord_1") == expected
    assert keys.current_id == key_id(bytes.fromhex(NEW))
    assert NEW not in repr(keys) and NEW not in keys.current_id


def test_after_rotation_older_orders_still_settle_with_their_own_key() -> None:
    before = PreimageKeys.parse(OLD)
    after = PreimageKeys.parse(f"# rotated 2026-11-28\n{NEW}\n{OLD}")
    made_before = order("ord_old", OLD)
    assert after.preimage_for(made_before) == before.new_preimage("ord_old")  # type: ignore[arg-type]
    assert after.preimage_for(order("ord_legacy", None, "ab" * 32)) == bytes.fromhex("ab" * 32)  # type: ignore[arg-type]
    with pytest.raises(PreimageKeyMissing):
        PreimageKeys.parse(NEW).preimage_for(made_before)  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["", "zz" * 32, "11" * 16])
def test_bad_key_text_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        PreimageKeys.parse(text)


def test_the_service_refuses_to_start_without_the_key_of_an_unfinished_order(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'volta.sqlite'}"
    migrate(url)
    repository = OrderRepository(make_session_factory(make_engine(url)), lambda: NOW)
    repository.create(
        id="ord_held", starknet_address="0x" + "0" * 63 + "1", vusd_amount="5.00", amount_msat=5_000_000,
        btc_usd_rate="97000", spread_bps=50, max_slippage_bps=100, payment_hash="cd" * 32, preimage=None,
        preimage_key_id=key_id(bytes.fromhex(OLD)), bolt11="lnbcrt…", status="awaiting_payment",
        created_at=NOW, updated_at=NOW, expires_at=NOW + timedelta(minutes=5))
    with pytest.raises(RuntimeError, match=key_id(bytes.fromhex(OLD))):
        load_preimage_keys(Settings(database_url=url, preimage_keys=NEW), repository)
    assert load_preimage_keys(Settings(database_url=url, preimage_keys=f"{NEW},{OLD}"), repository)


def test_a_sqlite_database_gets_a_private_key_file_beside_it_once(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'volta.sqlite'}")
    first, second = settings.preimage_key_text(), settings.preimage_key_text()
    key_file = tmp_path / "volta.sqlite.preimage-key"
    assert first == second == key_file.read_text()
    assert key_file.stat().st_mode & 0o077 == 0
    with pytest.raises(ValueError, match="VOLTA_PREIMAGE_KEY_FILE"):
        Settings(database_url="postgresql://127.0.0.1/volta").preimage_key_text()
