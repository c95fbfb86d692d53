"""Payments a normal wallet does not make, for the tests of the paths a buyer should never reach: one MPP
shard of an invoice (less than its amount), or more than the invoice asks. Built on lnd's QueryRoutes and
SendToRouteV2, with the final hop's MPP record set by hand."""

from __future__ import annotations

from typing import Any

from service.lightning.lnd_rest import LndRestClient, b64, unb64


class RoutePayer(LndRestClient):
    """The payer's lnd, paying along a route it was told to use."""

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
