"""The CLN backend against a real Core Lightning node with the holdinvoice plugin, where they exist.

Core Lightning and bitcoind are not in any registry this project's machines reach, so this runs only
where `lightningd`, `bitcoind`, pyln-testing and the plugin (HOLDINVOICE_PLUGIN=/path) are installed.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
from concurrent.futures import ThreadPoolExecutor

import pytest

from service.lightning.base import InvoiceState

PLUGIN = os.environ.get("HOLDINVOICE_PLUGIN", "")
pytestmark = pytest.mark.skipif(
    not (shutil.which("lightningd") and shutil.which("bitcoind") and PLUGIN),
    reason="needs lightningd, bitcoind and HOLDINVOICE_PLUGIN (not installable on this machine kind)",
)

if not pytestmark.args[0]:  # only then is pyln-testing importable
    from pyln.testing.fixtures import *  # noqa: F403  (node_factory, bitcoind, …)


def test_hold_invoice_is_held_settled_and_cancelled(node_factory) -> None:  # type: ignore[no-untyped-def]
    from service.lightning.cln import ClnBackend

    payer, merchant = node_factory.line_graph(2, opts=[{}, {"important-plugin": PLUGIN,
                                                            "holdinvoice-cancel-before-invoice-expiry": 60}])
    backend = ClnBackend(merchant.rpc.socket_path)
    for settle in (True, False):
        preimage = secrets.token_bytes(32)
        payment_hash = hashlib.sha256(preimage).digest()
        invoice = backend.create_hold_invoice(preimage, payment_hash, 10_000_000, "volta test", 600)
        with ThreadPoolExecutor(1) as pool:
            paying = pool.submit(payer.rpc.pay, invoice.bolt11)
            statuses = backend.watch_invoice(payment_hash)
            assert next(s for s in statuses if s.state is InvoiceState.ACCEPTED).amount_paid_msat >= 10_000_000
            if settle:
                backend.settle_hold_invoice(preimage)
                assert paying.result(timeout=60)["status"] == "complete"
            else:
                backend.cancel_hold_invoice(payment_hash)
                with pytest.raises(Exception, match=r"WIRE_INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS|failed"):
                    paying.result(timeout=60)
