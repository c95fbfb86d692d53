"""The preimage is not in the database: it is HMAC-SHA256(key, "volta-preimage:" + order id) under a key kept
in a file beside it (service/domain/preimages.py says so). Judged from the payer's lnd, which learns the
preimage when the payment settles, and from the database file's bytes."""

from __future__ import annotations

import hashlib
import hmac
import sqlite3
from pathlib import Path

import pytest

from harness.network import Network
from harness.purchase import Buyer

pytestmark = pytest.mark.regtest


def test_the_payers_preimage_is_derived_from_the_operators_key_and_never_stored(network: Network,
                                                                                buyer: Buyer) -> None:
    assert network.service is not None
    purchase = buyer.buy(network.users[0]["address"], "5.00")
    assert purchase.order["status"] == "completed", purchase.order
    payment = purchase.payment.result(timeout=60) if purchase.payment else {}
    assert payment.get("status") == "SUCCEEDED", payment
    revealed = str(payment["payment_preimage"])

    database = Path(network.service.database_url.removeprefix("sqlite:///"))
    key = bytes.fromhex(database.with_name(database.name + ".preimage-key").read_text().split()[0])
    expected = hmac.new(key, b"volta-preimage:" + purchase.order_id.encode(), hashlib.sha256).hexdigest()
    assert revealed == expected
    assert hashlib.sha256(bytes.fromhex(revealed)).hexdigest() == purchase.order["payment_hash"]

    with sqlite3.connect(database) as connection:
        stored = connection.execute("SELECT preimage, preimage_key_id FROM orders WHERE id = ?",
                                    (purchase.order_id,)).fetchone()
        connection.execute("PRAGMA wal_checkpoint(FULL)")
    assert stored[0] is None and stored[1]
    files = [database, *database.parent.glob(database.name + "-*")]  # the database and its WAL
    assert not any(revealed.encode() in path.read_bytes() for path in files)
