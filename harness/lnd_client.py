"""The harness's lnd client: the service's invoice client plus the wallet, channel and payment calls that only
a test network needs (fund a node, open channels, pay, probe), as lntest's HarnessRPC wraps lnd's RPCs.

It also makes the payments a normal wallet does not make, for the tests of paths a buyer should never reach:
one MPP shard of an invoice (less than its amount), or an HTLC for a hash nobody knows. Those are built on
lnd's QueryRoutes and SendToRouteV2, with the final hop's MPP record set by hand.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Generator
from typing import Any

from service.lightning.lnd_rest import LndError, LndRestClient, b64, b64url, unb64

FINAL_PAYMENT_STATUSES = ("SUCCEEDED", "FAILED")


class HarnessLndClient(LndRestClient):
    """One lnd node of the test network, driven as its owner."""

    # -- wallet -----------------------------------------------------------------------------------------

    def new_address(self) -> str:
        return self._request("GET", "/v1/newaddress", params={"type": "WITNESS_PUBKEY_HASH"})["address"]

    def wallet_balance_sat(self) -> int:
        return int(self._request("GET", "/v1/balance/blockchain").get("confirmed_balance", 0))

    def channel_balance(self) -> dict[str, int]:
        """Spendable local and receivable remote balance over all channels, in msat."""
        body = self._request("GET", "/v1/balance/channels")
        return {
            "local_msat": int(body.get("local_balance", {}).get("msat", 0)),
            "remote_msat": int(body.get("remote_balance", {}).get("msat", 0)),
        }

    def send_coins(self, address: str, amount_sat: int) -> str:
        body = {"addr": address, "amount": str(amount_sat), "sat_per_vbyte": "2"}
        return self._request("POST", "/v1/transactions", json=body)["txid"]

    # -- peers and channels -----------------------------------------------------------------------------

    def connect(self, pubkey: str, host: str) -> None:
        body = {"addr": {"pubkey": pubkey, "host": host}, "perm": False, "timeout": "30"}
        try:
            self._request("POST", "/v1/peers", json=body)
        except LndError as exc:
            if "already connected" not in exc.message:
                raise

    def open_channel(self, pubkey: str, local_funding_sat: int, push_sat: int = 0) -> str:
        """Open a public channel and return its funding txid (hex, display order)."""
        body = {
            "node_pubkey": b64(bytes.fromhex(pubkey)),
            "local_funding_amount": str(local_funding_sat),
            "push_sat": str(push_sat),
            "sat_per_vbyte": "2",
        }
        result = self._request("POST", "/v1/channels", json=body)
        return unb64(result["funding_txid_bytes"])[::-1].hex()

    def list_channels(self, active_only: bool = False) -> list[dict[str, Any]]:
        params = {"active_only": "true"} if active_only else {}
        return self._request("GET", "/v1/channels", params=params).get("channels", [])

    # -- invoices and payments --------------------------------------------------------------------------

    def add_invoice(self, value_msat: int, memo: str = "", expiry_s: int = 3600) -> dict[str, Any]:
        """A plain invoice; returns payment_request and payment_hash (hex)."""
        body = {"value_msat": str(value_msat), "memo": memo, "expiry": str(expiry_s)}
        result = self._request("POST", "/v1/invoices", json=body)
        return {"payment_request": result["payment_request"], "payment_hash": unb64(result["r_hash"]).hex()}

    def invoices_since(self, add_index: int) -> list[dict[str, Any]]:
        """Every invoice this node created after the one numbered `add_index` (0: all), oldest first."""
        params = {"index_offset": str(add_index), "num_max_invoices": "10000"}
        return self._request("GET", "/v1/invoices", params=params).get("invoices", [])

    def last_invoice_index(self) -> int:
        """The add_index of the newest invoice: where `invoices_since` starts counting from now on."""
        params = {"reversed": "true", "num_max_invoices": "1"}
        return int(self._request("GET", "/v1/invoices", params=params).get("last_index_offset", 0))

    def send_payment(
        self, payment_request: str, timeout_s: int = 60, fee_limit_sat: int = 1000
    ) -> Generator[dict[str, Any], None, None]:
        """Pay over router v2; yields the payment's updates (IN_FLIGHT … SUCCEEDED or FAILED)."""
        body = {
            "payment_request": payment_request,
            "timeout_seconds": timeout_s,
            "fee_limit_sat": str(fee_limit_sat),
            "no_inflight_updates": False,
        }
        return self._stream("POST", "/v2/router/send", timeout_s + 30, json=body)

    def pay(self, payment_request: str, timeout_s: int = 60, fee_limit_sat: int = 1000) -> dict[str, Any]:
        """Pay and block until the payment is final; returns lnd's last Payment message."""
        return _final(self.send_payment(payment_request, timeout_s, fee_limit_sat))

    def probe(self, dest_pubkey: str, amount_sat: int) -> dict[str, Any]:
        """Send an HTLC for a hash nobody knows: it travels the whole route and fails at the destination."""
        body = {
            "dest": b64(bytes.fromhex(dest_pubkey)),
            "amt": str(amount_sat),
            "payment_hash": b64(hashlib.sha256(secrets.token_bytes(32)).digest()),
            "final_cltv_delta": 40,
            "timeout_seconds": 20,
            "fee_limit_sat": "100",
            "no_inflight_updates": True,
        }
        return _final(self._stream("POST", "/v2/router/send", 60, json=body))

    def track_payment(self, payment_hash: bytes, timeout: float = 10) -> dict[str, Any]:
        """The payment's current state (IN_FLIGHT, SUCCEEDED, FAILED), as the paying node sees it."""
        updates = self._stream("GET", f"/v2/router/track/{b64url(payment_hash)}", timeout)
        try:
            return next(updates)
        finally:
            updates.close()

    def reset_mission_control(self) -> None:
        """Forget past payment failures, which otherwise steer pathfinding away from a route for hours."""
        self._request("POST", "/v2/router/mc/reset", json={})

    # -- payments along a chosen route ------------------------------------------------------------------

    def decode(self, bolt11: str) -> dict[str, Any]:
        return self._request("GET", f"/v1/payreq/{bolt11}")

    def route_to(self, pubkey: str, amount_msat: int, final_cltv_delta: int) -> dict[str, Any]:
        params = {"amt_msat": str(amount_msat), "final_cltv_delta": str(final_cltv_delta)}
        routes = self._request("GET", f"/v1/graph/routes/{pubkey}/0", params=params)["routes"]
        return routes[0]

    def send_shard(self, bolt11: str, amount_msat: int, total_msat: int | None = None) -> dict[str, Any]:
        """Send `amount_msat` of the invoice as one HTLC whose MPP record says the whole payment is
        `total_msat` (the invoice's amount by default). Blocks until the HTLC is settled or failed; returns
        lnd's HTLCAttempt (status SUCCEEDED or FAILED)."""
        invoice = self.decode(bolt11)
        route = self.route_to(invoice["destination"], amount_msat, int(invoice["cltv_expiry"]) + 3)
        route["hops"][-1]["mpp_record"] = {
            "payment_addr": b64(unb64(invoice["payment_addr"])),
            "total_amt_msat": str(total_msat if total_msat is not None else int(invoice["num_msat"])),
        }
        body = {"payment_hash": b64(bytes.fromhex(invoice["payment_hash"])), "route": route}
        return self._request("POST", "/v2/router/route/send", json=body, timeout=None)


def _final(updates: Generator[dict[str, Any], None, None]) -> dict[str, Any]:
    """Follow a payment's updates until it succeeds or fails; the last update seen."""
    last: dict[str, Any] = {}
    try:
        for update in updates:
            last = update
            if update.get("status") in FINAL_PAYMENT_STATUSES:
                break
    finally:
        updates.close()
    return last
