"""A thin typed client for lnd's REST API (grpc-gateway): the node and invoice calls the service makes.
The harness extends it with wallet, channel and payment calls (harness/lnd_client.py).

Units are in every name (`_sat`, `_msat`); hashes and preimages are bytes here and converted at the edge:
lnd's REST takes bytes as base64 in bodies and as hex or base64url in paths, depending on the route.
"""

from __future__ import annotations

import base64
import json
import ssl
from collections.abc import AsyncIterator, Generator
from pathlib import Path
from typing import Any, Self

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
        self.tls_cert = str(tls_cert)
        self._headers = {"Grpc-Metadata-macaroon": Path(macaroon).read_bytes().hex()}
        self._http = httpx.Client(
            base_url=rest_url,
            verify=ssl.create_default_context(cafile=self.tls_cert),
            headers=self._headers,
            timeout=timeout,
            limits=limits or httpx.Limits(),
        )
        self._async_http: httpx.AsyncClient | None = None  # the invoice streams' own, made on their loop

    @classmethod
    def from_state(cls, node: dict[str, Any]) -> Self:
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
                if line.strip():
                    yield _stream_message(route, line)

    async def _stream_async(self, route: str, timeout: float | None) -> AsyncIterator[dict]:
        """As `_stream`, on an event loop: one loop follows thousands of streams, a connection each, no thread."""
        if self._async_http is None:  # an AsyncClient belongs to the loop it was made on: the caller's
            self._async_http = httpx.AsyncClient(
                base_url=self.rest_url, verify=ssl.create_default_context(cafile=self.tls_cert),
                headers=self._headers, limits=httpx.Limits(max_connections=None, max_keepalive_connections=20))
        async with self._async_http.stream("GET", route, timeout=httpx.Timeout(30, read=timeout)) as response:
            if response.status_code != 200:
                raise LndError(route, response.status_code, _error_message((await response.aread()).decode()))
            async for line in response.aiter_lines():
                if line.strip():
                    yield _stream_message(route, line)

    async def aclose(self) -> None:
        """Close the streams' connections (on the loop that made them)."""
        if self._async_http is not None:
            await self._async_http.aclose()
            self._async_http = None

    # -- node and invoices -----------------------------------------------------------------------------

    def get_info(self) -> dict[str, Any]:
        return self._request("GET", "/v1/getinfo")

    def add_hold_invoice(
        self, payment_hash: bytes, value_msat: int, memo: str = "", expiry_s: int = 600, cltv_expiry: int = 144,
        description_hash: bytes | None = None,
    ) -> str:
        """A hold invoice: lnd accepts the HTLC but only we can settle it, with the preimage.

        With `description_hash` (32 bytes) the invoice carries that hash (BOLT 11 `h`) instead of the memo
        (`d`); lnd keeps the memo on the invoice for its own listings."""
        body = {
            "hash": b64(payment_hash),
            "value_msat": str(value_msat),
            "memo": memo,
            "expiry": str(expiry_s),
            "cltv_expiry": str(cltv_expiry),
        }
        if description_hash is not None:
            if len(description_hash) != 32:
                raise ValueError(f"a description hash is 32 bytes (sha256), not {len(description_hash)}")
            body["description_hash"] = b64(description_hash)
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

    def subscribe_invoice_async(
        self, payment_hash: bytes, timeout: float | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """`subscribe_invoice` on an event loop. Per invoice on purpose: lnd's all-invoices subscription
        (/v1/invoices/subscribe) reports only added and settled invoices, never a hold invoice's ACCEPTED
        (lnd issues #3120, #7735), which is the one change the worker must not miss."""
        return self._stream_async(f"/v2/invoices/subscribe/{b64url(payment_hash)}", timeout)


def _stream_message(route: str, line: str) -> dict[str, Any]:
    message = json.loads(line)
    if "error" in message:
        raise LndError(route, 200, _error_message(json.dumps(message)))
    return message.get("result", message)


def _error_message(text: str) -> str:
    try:
        body = json.loads(text)
    except ValueError:
        return text.strip()[:500]
    error = body.get("error", body)
    if isinstance(error, dict):
        return str(error.get("message") or error)
    return str(body.get("message") or error)
