"""How webhooks are signed. Every delivery carries two signatures over the same raw body:

- Standard Webhooks (https://www.standardwebhooks.com/, spec 1.0): `webhook-id`, `webhook-timestamp` and
  `webhook-signature: v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<raw body>")>`, where the key is the
  base64 after `whsec_` in the secret. Receivers verify with the `standardwebhooks` library in any language.
- `Volta-Signature: t=<unix time>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`, as Stripe signs, for
  receivers written before; its key is the whole secret string as UTF-8. Copy `verify_signature` (standard
  library only) or import it from here. Inbound payment notices are checked with this scheme.

`python -m service.webhooks.signing` prints a new secret in the Standard Webhooks form.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import time

SIGNATURE_HEADER = "Volta-Signature"
DELIVERY_HEADER = "Volta-Delivery"
STANDARD_ID_HEADER = "webhook-id"
STANDARD_TIMESTAMP_HEADER = "webhook-timestamp"
STANDARD_SIGNATURE_HEADER = "webhook-signature"
STANDARD_SECRET_PREFIX = "whsec_"
STANDARD_KEY_BYTES = (24, 64)  # the spec: random, at least 24 bytes (and at most 64 here)
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


def standard_key(secret: str) -> bytes | None:
    """The HMAC key of a secret in the Standard Webhooks form (`whsec_` + base64 of 24 to 64 bytes), or None
    when the secret has another form."""
    if not secret.startswith(STANDARD_SECRET_PREFIX):
        return None
    try:
        key = base64.b64decode(secret[len(STANDARD_SECRET_PREFIX):], validate=True)
    except (binascii.Error, ValueError):
        return None
    low, high = STANDARD_KEY_BYTES
    return key if low <= len(key) <= high else None


def signing_key(secret: str) -> bytes:
    """The key of the webhook-signature header: the decoded bytes of a `whsec_` secret; for a secret of any
    other form, its UTF-8 bytes (its receivers then pass `whsec_` + base64 of those bytes to the library)."""
    key = standard_key(secret)
    return key if key is not None else secret.encode()


def sign_standard(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value: `v1,` + base64 HMAC-SHA256 of `<id>.<timestamp>.<raw body>`."""
    if "." in message_id:
        raise ValueError("a webhook id must not contain '.', which delimits the signed content")
    digest = hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def new_secret() -> str:
    """A fresh secret in the Standard Webhooks form: `whsec_` + base64 of 32 random bytes."""
    return STANDARD_SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


if __name__ == "__main__":
    print(new_secret())
