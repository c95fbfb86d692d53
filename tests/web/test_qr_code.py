"""The checkout's QR code, for a real invoice from the merchant's lnd.

segno itself says which mode and version `LIGHTNING:` + the upper-case invoice takes (alphanumeric, and a
smaller version than byte mode would need); the version of the code the service actually serves is read from
the SVG's own size (a version-v code is 17 + 4v modules wide). The invoice's memo is read back with the bolt11
library: short, and no order id in it.
"""

from __future__ import annotations

import re

import bolt11
import httpx
import pytest
import segno

from harness.network import Network

pytestmark = pytest.mark.regtest

SCALE, BORDER = 5, 2  # what GET /qr.svg draws with: pixels per module, quiet zone in modules


@pytest.fixture(scope="module")
def order(network: Network) -> dict[str, object]:
    assert network.service is not None
    response = httpx.post(f"{network.service.url}/api/v1/orders", timeout=30,
                          json={"starknet_address": network.users[0]["address"], "vusd_amount": "25.00"})
    assert response.status_code == 201, response.text
    return dict(response.json())


def served_version(svg: str) -> int:
    """The QR version of an SVG drawn by segno at SCALE with a BORDER-module quiet zone, from its width."""
    found = re.search(r'<svg[^>]*\swidth="([0-9]+)"[^>]*\sheight="([0-9]+)"', svg)
    assert found, svg[:300]
    width, height = int(found.group(1)), int(found.group(2))
    assert width == height and width % SCALE == 0, (width, height)
    modules = width // SCALE - 2 * BORDER
    assert (modules - 17) % 4 == 0, modules
    return (modules - 17) // 4


def test_the_invoice_encodes_in_alphanumeric_mode_at_a_smaller_version(order: dict[str, object]) -> None:
    invoice = str(order["bolt11"])
    assert invoice.startswith("lnbcrt") and len(invoice) > 250, invoice  # a real regtest invoice, full length
    alphanumeric = segno.make(f"LIGHTNING:{invoice.upper()}", error="m")
    byte_mode = segno.make(f"lightning:{invoice.upper()}", error="m")  # what a lower-case scheme forces
    assert alphanumeric.mode == "alphanumeric" and alphanumeric.error == "M"
    assert byte_mode.mode == "byte"
    assert alphanumeric.version < byte_mode.version, (alphanumeric.version, byte_mode.version)


def test_the_served_qr_code_has_the_alphanumeric_version(order: dict[str, object]) -> None:
    response = httpx.get(str(order["qr_url"]), timeout=30)
    assert response.status_code == 200 and response.headers["content-type"].startswith("image/svg+xml")
    invoice = str(order["bolt11"])
    expected = segno.make(f"LIGHTNING:{invoice.upper()}", error="m")
    byte_mode = segno.make(f"lightning:{invoice.upper()}", error="m")
    assert served_version(response.text) == expected.version < byte_mode.version


def test_the_memo_is_short_and_carries_no_order_id(order: dict[str, object]) -> None:
    description = bolt11.decode(str(order["bolt11"])).description
    assert description is not None
    assert str(order["order_id"]) not in description and "ord_" not in description, description
    assert "25" in description and "VUSD" in description, description
    assert len(description) <= 24, description
