"""Proof that a person controls a Starknet account, before they may read its purchase history (issue #13).

The service hands out a challenge: a SNIP-12 (revision 1) typed-data message naming the account, a random
nonce, an expiry and this service's address. The account's wallet signs it; the service hashes the same message
(starknet-py's `TypedData`, an implementation of the spec) and asks the account contract itself, on chain,
whether the signature is its own (`is_valid_signature`, SNIP-6: the account decides, whatever its keys). A good
answer buys a short-lived session token bound to that one address.

No table holds challenges. The challenge token the client hands back is signed with the service's key and
carries the address, nonce, expiry and site, so the service rebuilds exactly the message it issued (nobody can
make it check a message it did not issue). A nonce is single-use: when it buys a session it goes into a replay
set until the challenge would have expired anyway. A set and not a table, because an entry is worthless after
that; it lives in the rate limiter's store (`rate_limit_storage_url`): memory:// in one process, redis:// when
several processes serve, which then share it (and must share `history_session_key`). A restart with a random
per-process key forgets the set, but also every challenge it could protect.
"""

from __future__ import annotations

import math
import re
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadData, URLSafeSerializer
from limits.storage import Storage, storage_from_string
from starknet_py.cairo.felt import decode_shortstring
from starknet_py.constants import FIELD_PRIME
from starknet_py.utils.typed_data import TypedData

from service.config import Settings
from service.domain.orders import normalize_starknet_address
from service.domain.ports import AccountSignatures, SignatureVerdict

DOMAIN_NAME = "VOLTA Lightning"
DOMAIN_VERSION = "1"
SNIP12_REVISION = "1"
PRIMARY_TYPE = "HistoryAccess"
STATEMENT = "Show my VOLTA Lightning purchase history"
MAX_SIGNATURE_FELTS = 64  # a plain account signs with 2, a multisig or guarded account with a few more
MAX_TOKEN_CHARS = 2_000
SITE_PATTERN = re.compile(r"^https?://[A-Za-z0-9.\-\[\]:]{1,200}$")

TYPES: dict[str, list[dict[str, str]]] = {
    "StarknetDomain": [
        {"name": "name", "type": "shortstring"},
        {"name": "version", "type": "shortstring"},
        {"name": "chainId", "type": "shortstring"},
        {"name": "revision", "type": "shortstring"},
    ],
    PRIMARY_TYPE: [
        {"name": "statement", "type": "string"},
        {"name": "account", "type": "ContractAddress"},
        {"name": "site", "type": "string"},
        {"name": "nonce", "type": "felt"},
        {"name": "expires_at", "type": "timestamp"},
    ],
}


class ProofRefused(Exception):
    """A challenge, signature or session that does not prove the address: an HTTP status and the
    {"error", "message", "hint"} the client gets."""

    def __init__(self, status: int, code: str, message: str, hint: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.hint = status, code, message, hint


@dataclass(frozen=True)
class Challenge:
    address: str  # 0x + 64 hex digits
    nonce: str  # a felt, 0x + hex
    expires_at: int  # unix seconds
    site: str  # the service's own URL, so the person sees where they sign in


@dataclass(frozen=True)
class Session:
    token: str
    address: str
    expires_at: int


def domain_chain_id(chain_id_hex: str) -> str:
    """The chain id as SNIP-12's shortstring, as wallets show it ("SN_SEPOLIA"); hex if it is no short text."""
    value = int(chain_id_hex, 16)
    try:
        text = decode_shortstring(value)
    except ValueError:
        return hex(value)
    return text if text and text.isascii() and text.isprintable() else hex(value)


def typed_data(challenge: Challenge, chain_id_hex: str) -> dict[str, Any]:
    """The SNIP-12 revision 1 message the account signs (the wallet shows these fields to the person)."""
    return {
        "types": TYPES,
        "primaryType": PRIMARY_TYPE,
        "domain": {"name": DOMAIN_NAME, "version": DOMAIN_VERSION, "chainId": domain_chain_id(chain_id_hex),
                   "revision": SNIP12_REVISION},
        "message": {"statement": STATEMENT, "account": challenge.address, "site": challenge.site,
                    "nonce": challenge.nonce, "expires_at": challenge.expires_at},
    }


def message_hash(message: dict[str, Any], address: str) -> int:
    return TypedData.from_dict(message).message_hash(int(address, 16))  # type: ignore[arg-type]


def parse_signature(value: object) -> list[int]:
    """A signature as wallets return it: a list of felts, each a 0x-hex or decimal string or an integer."""
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_SIGNATURE_FELTS:
        raise ValueError(f"signature must be a list of 1 to {MAX_SIGNATURE_FELTS} felts")
    return [_felt(item) for item in value]


def _felt(item: object) -> int:
    if isinstance(item, bool):
        raise ValueError("a signature felt cannot be true or false")
    if isinstance(item, int):
        number = item
    elif isinstance(item, str) and re.fullmatch(r"0[xX][0-9a-fA-F]{1,64}|[0-9]{1,78}", item.strip()):
        text = item.strip()
        number = int(text, 16) if text[:2].lower() == "0x" else int(text)
    else:
        raise ValueError("each signature felt must be a 0x-hex or decimal string or an integer")
    if not 0 <= number < FIELD_PRIME:
        raise ValueError("a signature felt must be at least 0 and below the Starknet field prime")
    return number


def site_of(host_url: str) -> str:
    site = host_url.rstrip("/")
    return site if SITE_PATTERN.match(site) else "this VOLTA Lightning service"


class UsedNonces:
    """The replay set: a nonce can be claimed once while its challenge lives (an atomic counter per nonce)."""

    def __init__(self, storage: Storage) -> None:
        self._storage = storage

    @classmethod
    def from_url(cls, storage_url: str) -> UsedNonces:
        storage = storage_from_string(storage_url)
        if not isinstance(storage, Storage):  # an async:// store: this service is synchronous
            raise ValueError(f"rate_limit_storage_url must name a synchronous store, not {storage_url.split(':')[0]}")
        return cls(storage)

    def claim(self, nonce: str, keep_s: float) -> bool:
        return self._storage.incr(f"volta:history-nonce:{nonce}", max(1, math.ceil(keep_s))) == 1


class AddressProof:
    """Issues challenges, turns a signed challenge into a session, and reads sessions back."""

    def __init__(self, key: bytes, chain_id_hex: str, challenge_lifetime_s: int, session_lifetime_s: int,
                 used_nonces: UsedNonces, clock: Callable[[], float] = time.time) -> None:
        self.chain_id_hex = chain_id_hex
        self.challenge_lifetime_s = challenge_lifetime_s
        self.session_lifetime_s = session_lifetime_s
        self._challenges = URLSafeSerializer(key, salt="volta-history-challenge")
        self._sessions = URLSafeSerializer(key, salt="volta-history-session")
        self._used = used_nonces
        self._clock = clock

    @classmethod
    def from_settings(cls, settings: Settings) -> AddressProof:
        # No key configured: a random one for this process only (see Settings.history_session_key).
        key = settings.history_session_key.encode() or secrets.token_bytes(32)
        return cls(key, settings.starknet_chain_id, settings.history_challenge_lifetime_s,
                   settings.history_session_lifetime_s, UsedNonces.from_url(settings.rate_limit_storage_url))

    # -- challenges ----------------------------------------------------------------------------------

    def issue(self, address: str, site: str) -> tuple[Challenge, str]:
        challenge = Challenge(address=normalize_starknet_address(address), nonce=hex(secrets.randbits(128)),
                              expires_at=int(self._clock()) + self.challenge_lifetime_s, site=site)
        token = self._challenges.dumps({"a": challenge.address, "n": challenge.nonce, "e": challenge.expires_at,
                                        "s": challenge.site})
        return challenge, token

    def open_challenge(self, token: str) -> Challenge:
        try:
            fields = _load(self._challenges, token)
            challenge = Challenge(address=str(fields["a"]), nonce=str(fields["n"]), expires_at=int(fields["e"]),
                                  site=str(fields["s"]))
        except (BadData, TypeError, KeyError, ValueError):
            raise ProofRefused(401, "invalid_challenge", "This challenge was not issued by this service (or was "
                               "issued before it restarted).", _ASK_AGAIN) from None
        if self._clock() >= challenge.expires_at:
            raise ProofRefused(401, "challenge_expired", f"This challenge expired; a challenge lives "
                               f"{self.challenge_lifetime_s} s.", _ASK_AGAIN)
        return challenge

    def typed_data(self, challenge: Challenge) -> dict[str, Any]:
        return typed_data(challenge, self.chain_id_hex)

    # -- signed challenge -> session -----------------------------------------------------------------

    def redeem(self, token: str, signature: Sequence[int], accounts: AccountSignatures) -> Session:
        """Check the account's signature over the challenge on chain, use up its nonce, and open a session.
        Raises ProofRefused for a bad, reused or expired challenge or a signature the account rejects."""
        challenge = self.open_challenge(token)
        hashed = message_hash(self.typed_data(challenge), challenge.address)
        verdict = accounts.is_valid_signature(int(challenge.address, 16), hashed, signature)
        if verdict is not SignatureVerdict.VALID:
            raise _refusal(verdict, challenge.address)
        if not self._used.claim(challenge.nonce, challenge.expires_at - self._clock() + 1):
            raise ProofRefused(401, "challenge_used", "This challenge was already used for a session; each "
                               "challenge buys one.", _ASK_AGAIN)
        expires_at = int(self._clock()) + self.session_lifetime_s
        session = self._sessions.dumps({"a": challenge.address, "e": expires_at})
        return Session(token=session, address=challenge.address, expires_at=expires_at)

    # -- sessions ------------------------------------------------------------------------------------

    def session_address(self, token: str) -> str:
        """The address a session token was granted for; ProofRefused if it is not ours or has expired."""
        try:
            fields = _load(self._sessions, token)
            address, expires_at = str(fields["a"]), int(fields["e"])
        except (BadData, TypeError, KeyError, ValueError):
            raise ProofRefused(401, "invalid_session", "This session token was not issued by this service (or "
                               "was issued before it restarted).", SESSION_HINT) from None
        if self._clock() >= expires_at:
            raise ProofRefused(401, "session_expired", f"This history session expired; a session lives "
                               f"{self.session_lifetime_s} s.", SESSION_HINT)
        return address


def _load(serializer: URLSafeSerializer, token: str) -> dict[str, Any]:
    if len(token) > MAX_TOKEN_CHARS:
        raise ValueError("token too long")
    fields = serializer.loads(token)
    if not isinstance(fields, dict):
        raise TypeError("not a token of ours")
    return fields


_ASK_AGAIN = "Ask for a new challenge with POST /api/v1/history/challenge and sign that one."
SESSION_HINT = ("Prove the address first: POST /api/v1/history/challenge {\"starknet_address\": \"0x…\"}, sign the "
                "typed_data with that account, POST /api/v1/history/session {\"challenge\", \"signature\"}, then "
                "send Authorization: Bearer <session>.")


def _refusal(verdict: SignatureVerdict, address: str) -> ProofRefused:
    if verdict is SignatureVerdict.NO_ACCOUNT:
        return ProofRefused(401, "account_not_deployed", f"No account contract is deployed at {address}, so "
                            "nothing there can vouch for a signature.",
                            "Deploy the account first (a wallet does this with its first transaction), or use "
                            "the purchases this browser remembers.")
    if verdict is SignatureVerdict.NOT_AN_ACCOUNT:
        return ProofRefused(401, "not_an_account", f"The contract at {address} is not an account: it has no "
                            "is_valid_signature.", "Prove a Starknet account address, not a token or app contract.")
    return ProofRefused(401, "invalid_signature", f"The account at {address} did not accept this signature for "
                        "the challenge.", "Sign the challenge's typed_data, unchanged, with this account and send "
                        "the signature array the wallet returns; or ask for a new challenge.")
