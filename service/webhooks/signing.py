"""`Volta-Signature: t=<unix time>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`, as Stripe signs.

Receivers: copy `verify_signature` (standard library only) or import it from here.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time

SIGNATURE_HEADER = "Volta-Signature"
DELIVERY_HEADER = "Volta-Delivery"
DEFAULT_TOLERANCE_S = 300
MAX_HEADER_CHARS = 1024  # a timestamp and a dozen signatures
_UNIX_TIME = re.compile(r"[0-9]{1,12}")  # ASCII digits only (int() takes others), and never too big for a float
_HEX_DIGEST = re.compile(r"[0-9a-fA-F]{64}")


class SignatureError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _digest(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    return f"t={timestamp},v1={_digest(secret, timestamp, body)}"


def verify_signature(secret: str, header: str, body: bytes, tolerance_s: int = DEFAULT_TOLERANCE_S,
                     now: float | None = None) -> int:
    """Check the header against the raw body; return its timestamp or raise SignatureError.

    Whatever the header holds (any length, any characters, a timestamp of 400 digits), the answer is a
    SignatureError, never another exception."""
    if len(header) > MAX_HEADER_CHARS:
        raise SignatureError("signature_malformed", f"{SIGNATURE_HEADER} is longer than {MAX_HEADER_CHARS} characters")
    pairs = [part.strip().split("=", 1) for part in header.split(",") if "=" in part]
    timestamps = [value for key, value in pairs if key == "t"]
    # Several v1 values while a secret is being rotated; anything but 64 hex digits cannot be ours.
    candidates = [value.lower().encode() for key, value in pairs if key == "v1" and _HEX_DIGEST.fullmatch(value)]
    if len(timestamps) != 1 or not _UNIX_TIME.fullmatch(timestamps[0]) or not candidates:
        raise SignatureError("signature_malformed",
                             f"{SIGNATURE_HEADER} must look like t=<unix time>,v1=<64 hex digits>")
    timestamp = int(timestamps[0])
    now = time.time() if now is None else now
    if abs(now - timestamp) > tolerance_s:
        raise SignatureError("signature_expired", f"signed {now - timestamp:.0f}s ago; the tolerance is {tolerance_s}s")
    expected = _digest(secret, timestamp, body).encode()
    if not any(hmac.compare_digest(expected, candidate) for candidate in candidates):
        raise SignatureError("signature_invalid", "the signature does not match the body")
    return timestamp
