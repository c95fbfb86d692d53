"""The judge of a purchase, from outside the service: what lnd and the vault say, never the service.

For every order at rest: (merchant invoice SETTLED, payer's payment SUCCEEDED, hash used on the vault) or
(invoice CANCELED or never paid, payment not succeeded, hash unused). And each address's VUSD grew by
exactly the quoted VUSD of its orders whose invoice lnd settled.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from harness.lnd_client import HarnessLndClient
from harness.util import Timeouts, WaitTimeout, wait_until
from service.domain.pricing import vusd_base_units
from service.lightning.lnd_rest import LndError
from service.starknet.client import StarknetClient


@dataclass(frozen=True)
class Verdict:
    """One order as lnd and the vault see it."""

    order_id: str
    invoice_state: str  # the merchant's: OPEN, ACCEPTED, SETTLED, CANCELED
    payment_status: str | None  # the payer's: IN_FLIGHT, SUCCEEDED, FAILED; None if it never paid
    hash_used: bool

    @property
    def sound(self) -> bool:
        if self.invoice_state == "SETTLED":  # the payer's own node must say it paid: a settle nobody paid is no sale
            return self.hash_used and self.payment_status == "SUCCEEDED"
        if self.invoice_state in ("CANCELED", "OPEN"):
            return not self.hash_used and self.payment_status != "SUCCEEDED"
        return False  # ACCEPTED: an HTLC still held is not at rest

    def __str__(self) -> str:
        return (f"{self.order_id}: invoice {self.invoice_state}, payment {self.payment_status}, "
                f"hash {'used' if self.hash_used else 'unused'}")


class Judge:
    def __init__(self, merchant: HarnessLndClient, payers: list[HarnessLndClient], vault: StarknetClient) -> None:
        self.merchant, self.payers, self.vault = merchant, payers, vault

    def verdict(self, order: dict[str, Any]) -> Verdict:
        payment_hash = bytes.fromhex(order["payment_hash"])
        return Verdict(
            order["order_id"],
            self.merchant.lookup_invoice(payment_hash)["state"],
            self.payment_status(payment_hash),
            self.vault.is_payment_used(payment_hash),
        )

    def payment_status(self, payment_hash: bytes) -> str | None:
        """What the node that paid says (the first payer that knows the payment); None if none paid."""
        for payer in self.payers:
            try:
                return str(payer.track_payment(payment_hash).get("status"))
            except LndError as exc:  # lnd: "payment isn't initiated" (or a 404) for a hash it never paid
                message = exc.message.lower()
                if not any(words in message for words in ("not found", "isn't initiated", "not initiated")) \
                        and exc.status_code != 404:
                    raise
        return None

    def at_rest(self, order: dict[str, Any], timeout: float = Timeouts.PAYMENT) -> Verdict:
        """The verdict once the HTLC is no longer held (settled or cancelled) and the payer knows its outcome:
        a final status in the service's database may come a moment before lnd has acted on it."""
        def settled_down() -> Verdict | None:
            verdict = self.verdict(order)
            return None if verdict.invoice_state == "ACCEPTED" or verdict.payment_status == "IN_FLIGHT" else verdict

        try:
            verdict = wait_until(settled_down, timeout=timeout, what=f"order {order['order_id']} to be at rest",
                                 interval=0.5)
        except WaitTimeout:
            return self.verdict(order)  # still held: the caller's assertion shows it
        assert verdict is not None
        return verdict

    def unsound(self, orders: list[dict[str, Any]]) -> list[str]:
        """Every order whose HTLC and mint disagree (empty when the promise held)."""
        return [str(verdict) for verdict in map(self.at_rest, orders) if not verdict.sound]

    def vusd_mismatches(self, orders: list[dict[str, Any]], balances_before: dict[str, int]) -> list[str]:
        """Each address's VUSD growth against the quoted VUSD of its orders that lnd settled."""
        expected: Counter[str] = Counter()
        for order in orders:
            if self.merchant.lookup_invoice(bytes.fromhex(order["payment_hash"]))["state"] == "SETTLED":
                expected[order["starknet_address"]] += vusd_base_units(Decimal(order["vusd_amount"]))
        wrong = []
        for address, before in balances_before.items():
            grown = self.vault.vusd_balance(int(address, 16)) - before
            if grown != expected[address]:
                wrong.append(f"{address}: VUSD grew {grown}, settled orders say {expected[address]}")
        return wrong
