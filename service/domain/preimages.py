"""Preimages are derived, never stored: HMAC-SHA256 of the order id under a key the operator keeps outside
the database. A leaked database or backup then holds no proof of payment, and only the holder of the key can
settle a held HTLC.

Rotation: put a new key on the first line of the key file and keep the old ones below it. New orders use the
first key; each order records which key made its preimage (a short id, not the key), so older orders still
settle. Remove an old key once no order made with it is unfinished (and the reconciliation window has passed).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field

from service.domain.ports import OrderRecord

KEY_BYTES = 32
_PURPOSE = b"volta-preimage:"


class PreimageKeyMissing(RuntimeError):
    """An order's preimage was made with a key this process does not have."""


def key_id(key: bytes) -> str:
    """A short public name for a key: enough to pick the right one, nothing to learn the key from."""
    return hashlib.sha256(b"volta-preimage-key-id:" + key).hexdigest()[:8]


@dataclass(frozen=True)
class PreimageKeys:
    """The operator's preimage keys, newest first."""

    keys: tuple[bytes, ...]
    _by_id: dict[str, bytes] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.keys:
            raise ValueError("at least one preimage key is needed")
        if any(len(key) < KEY_BYTES for key in self.keys):
            raise ValueError(f"a preimage key must have at least {KEY_BYTES} bytes (64 hex digits)")
        object.__setattr__(self, "_by_id", {key_id(key): key for key in self.keys})

    def __repr__(self) -> str:
        return f"PreimageKeys(ids={list(self._by_id)})"

    @classmethod
    def parse(cls, text: str) -> PreimageKeys:
        """Hex keys, one per line (or separated by commas); blank lines and `#` comments are skipped."""
        lines = (part.split("#", 1)[0].strip() for line in text.splitlines() for part in line.split(","))
        try:
            return cls(tuple(bytes.fromhex(line) for line in lines if line))
        except ValueError:
            raise ValueError("preimage keys must be hex, one per line, at least 64 hex digits each") from None

    @staticmethod
    def generate() -> str:
        """A new key, as the key file's text."""
        return secrets.token_hex(KEY_BYTES) + "\n"

    @property
    def current_id(self) -> str:
        return key_id(self.keys[0])

    def missing(self, ids: Iterable[str]) -> set[str]:
        """Which of these key ids this process does not have."""
        return {kid for kid in ids if kid not in self._by_id}

    def new_preimage(self, order_id: str) -> bytes:
        return _derive(self.keys[0], order_id)

    def preimage_for(self, order: OrderRecord) -> bytes:
        if order.preimage:  # orders made before preimages were derived kept theirs in the database
            return bytes.fromhex(order.preimage)
        key = self._by_id.get(order.preimage_key_id or "")
        if key is None:
            raise PreimageKeyMissing(f"order {order.id} was made with preimage key {order.preimage_key_id}, "
                                     "which is not loaded: put it back in the preimage key file")
        return _derive(key, order.id)


def _derive(key: bytes, order_id: str) -> bytes:
    return hmac.new(key, _PURPOSE + order_id.encode(), hashlib.sha256).digest()
