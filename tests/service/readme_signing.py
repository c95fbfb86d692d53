"""Webhook signatures as the README words them, computed here with hmac and hashlib, never with
service.webhooks.signing: `Volta-Signature: t=<unix time>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time


def readme_signature(secret: str, body: bytes, timestamp: int | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def signed_by_readme(secret: str, header: str, body: bytes, tolerance_s: int = 300) -> bool:
    """What a receiver checks: the header's t is recent and one of its v1 values is the HMAC of "<t>.<body>"."""
    fields = [part.split("=", 1) for part in header.split(",")]
    timestamps = [value for key, value in fields if key == "t"]
    if len(timestamps) != 1 or not timestamps[0].isdigit() or len(timestamps[0]) > 12:
        return False
    if abs(time.time() - int(timestamps[0])) > tolerance_s:
        return False
    expected = readme_signature(secret, body, int(timestamps[0])).split("v1=", 1)[1]
    return any(hmac.compare_digest(expected, value) for key, value in fields if key == "v1")


def notice_headers(secret: str, body: bytes, timestamp: int | None = None,
                   delivery_id: str | None = None) -> dict[str, str]:
    """Headers of a payment notice from a hosted node, signed as the README says."""
    return {"Content-Type": "application/json", "Volta-Signature": readme_signature(secret, body, timestamp),
            "Volta-Delivery": delivery_id or f"dlv_test_{secrets.token_hex(8)}"}
