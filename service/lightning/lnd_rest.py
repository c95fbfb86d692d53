"""A thin typed client for lnd's REST API (grpc-gateway), shared by the service and the harness.

Units are in every name (`_sat`, `_msat`); hashes and preimages are bytes here and converted at the edge:
lnd's REST takes bytes as base64 in bodies and as hex or base64url in paths, depending on the route.
"""

from __future__ import annotations

import base64
import json
import ssl
from collections.abc import Generator
from pathlib import Path
from typing import Any

import httpx


class LndError(RuntimeError):
    """lnd answered with an error; `message` is lnd's own text."""

    def __init__(self, route: str, status_code: int, message: str) -> None:
        super().__init__(f"lnd {route}: HTTP {status_code}: {message}")
        self.route = route
        self.status_code = status_code
        self.message = message


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode()


def unb64(text: str) -> bytes:
    return base64.b64decode(text)


class LndRestClient:
    """One lnd node over REST, authenticated by macaroon, TLS pinned to the node's own certificate."""

    def __init__(
        self,
        rest_url: str,
        tls_cert: Path | str,
        macaroon: Path | str,
        timeout: float = 30,
        limits: httpx.Limits | None = None,
    ) -> None:
        self.rest_url = rest_url
        macaroon_hex = Path(macaroon).read_bytes().hex()
        self._http = httpx.Client(
            base_url=rest_url,
            verify=ssl.create_default_context(cafile=str(tls_cert)),
            headers={"Grpc-Metadata-macaroon": macaroon_hex},
            timeout=timeout,
            limits=limits or httpx.Limits(),
        )

    @classmethod
    def from_state(cls, node: dict[str, Any]) -> LndRestClient:
        return cls(node["rest_url"], node["tls_cert"], node["macaroon"])

    def close(self) -> None:
        self._http.close()

    # -- plumbing -------------------------------------------------------------------------------------

    def _request(self, method: str, route: str, **kwargs: Any) -> dict[str, Any]:
        response = self._http.request(method, route, **kwargs)
        if response.status_code != 200:
            raise LndError(route, response.status_code, _error_message(response.text))
        return response.json()

    def _stream(self, method: str, route: str, timeout: float | None, **kwargs: Any) -> Generator[dict, None, None]:
        """grpc-gateway streams newline-delimited {"result": …} or {"error": …} objects."""
        with self._http.stream(method, route, timeout=httpx.Timeout(30, read=timeout), **kwargs) as response:
            if response.status_code != 200:
                raise LndError(route, response.status_code, _error_message(response.read().decode()))
            for line in response.iter_lines():
                if not line.strip():
                    continue
                message = json.loads(line)
                if "error" in message:
                    raise LndError(route, 200, _error_message(json.dumps(message)))
                yield message.get("result", message)

    # -- node and wallet -----------------------------------------------------------------------------

    def get_info(self) -> dict[str, Any]:
        return self._request("GET", "/v1/getinfo")

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

    # -- peers and channels --------------------------------------------------------------------------

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

    def add_invoice(self, value_msat: int, memo: str = "", expiry_s: int = 3600) -> dict[str, Any]:
        """A plain invoice; returns payment_request and payment_hash (hex)."""
        body = {"value_msat": str(value_msat), "memo": memo, "expiry": str(expiry_s)}
        result = self._request("POST", "/v1/invoices", json=body)
        return {"payment_request": result["payment_request"], "payment_hash": unb64(result["r_hash"]).hex()}

    def add_hold_invoice(
        self, payment_hash: bytes, value_msat: int, memo: str = "", expiry_s: int = 600, cltv_expiry: int = 144
    ) -> str:
        """A hold invoice: lnd accepts the HTLC but only we can settle it, with the preimage."""
        body = {
            "hash": b64(payment_hash),
            "value_msat": str(value_msat),
            "memo": memo,
            "expiry": str(expiry_s),
            "cltv_expiry": str(cltv_expiry),
        }
        return self._request("POST", "/v2/invoices/hodl", json=body)["payment_request"]

    def settle_invoice(self, preimage: bytes) -> None:
        self._request("POST", "/v2/invoices/settle", json={"preimage": b64(preimage)})

    def cancel_invoice(self, payment_hash: bytes) -> None:
        self._request("POST", "/v2/invoices/cancel", json={"payment_hash": b64(payment_hash)})

    def lookup_invoice(self, payment_hash: bytes) -> dict[str, Any]:
        return self._request("GET", f"/v1/invoice/{payment_hash.hex()}")

    def subscribe_invoice(
        self, payment_hash: bytes, timeout: float | None = None
    ) -> Generator[dict[str, Any], None, None]:
        """Every state change of one invoice (OPEN, ACCEPTED, SETTLED, CANCELED), starting with the current one."""
        return self._stream("GET", f"/v2/invoices/subscribe/{b64url(payment_hash)}", timeout)

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

    def track_payment(self, payment_hash: bytes, timeout: float = 10) -> dict[str, Any]:
        """The payment's current state (IN_FLIGHT, SUCCEEDED, FAILED), as the paying node sees it."""
        updates = self._stream("GET", f"/v2/router/track/{b64url(payment_hash)}", timeout)
        try:
            return next(updates)
        finally:
            updates.close()

    def reset_mission_control(self) -> None:
        """Forget past payment failures, which otherwise steer pathfinding away from a route for hours."""
        self._request("POST", "/v2/router/resetmissioncontrol", json={})

    def pay(self, payment_request: str, timeout_s: int = 60, fee_limit_sat: int = 1000) -> dict[str, Any]:
        """Pay and block until the payment is final; returns lnd's last Payment message."""
        last: dict[str, Any] = {}
        updates = self.send_payment(payment_request, timeout_s, fee_limit_sat)
        try:
            for update in updates:
                last = update
                if update.get("status") in ("SUCCEEDED", "FAILED"):
                    break
        finally:
            updates.close()
        return last


def _error_message(text: str) -> str:
    try:
        body = json.loads(text)
    except ValueError:
        return text.strip()[:500]
    error = body.get("error", body)
    if isinstance(error, dict):
        return str(error.get("message") or error)
    return str(body.get("message") or error)
