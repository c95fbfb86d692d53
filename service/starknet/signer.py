"""Stark-curve signing with starknet-rs's code (the `starknet-crypto-py` package) instead of starknet-py's default.

starknet-py signs through crypto-cpp-py, which took 315 ms per signature on this machine; every batch of mints is
signed twice (once for the fee estimate, which simulates the calls, and once to send), so signing was half of a
worker's CPU under load (py-spy, `harness bench purchase --workers 1 --db postgres`). starknet-rs signs the same
message in under a millisecond. The signatures are the same bits: both derive k by RFC 6979 from the message, the
key and starknet-py's seed, so this changes nothing but the time it takes (tests/unit/test_signer.py).
"""

from __future__ import annotations

from starknet_crypto_py import get_public_key, sign
from starknet_py.net.account.account import Account
from starknet_py.net.client import Client
from starknet_py.net.models import AccountTransaction
from starknet_py.net.models.chains import ChainId, parse_chain
from starknet_py.net.signer.key_pair import KeyPair
from starknet_py.net.signer.stark_curve_signer import StarkCurveSigner
from starknet_py.utils.typed_data import TypedData

# starknet-py's `message_signature` passes this seed to RFC 6979's k derivation; the same seed gives the same k.
STARKNET_PY_K_SEED = 32


class RustStarkSigner(StarkCurveSigner):
    """starknet-py's signer, signing with starknet-rs."""

    def sign_transaction(self, transaction: AccountTransaction) -> list[int]:
        return list(sign(self.private_key, transaction.calculate_hash(self.chain_id), STARKNET_PY_K_SEED))

    def sign_message(self, typed_data: TypedData, account_address: int) -> list[int]:
        return list(sign(self.private_key, typed_data.message_hash(account_address), STARKNET_PY_K_SEED))


def signing_account(address: int, private_key: int, client: Client, chain_id: ChainId | int) -> Account:
    """An account that signs with `RustStarkSigner`: the service's mint lanes and the harness's accounts alike."""
    chain = parse_chain(chain_id)
    key_pair = KeyPair(private_key=private_key, public_key=get_public_key(private_key))
    return Account(address=address, client=client, chain=chain,
                   signer=RustStarkSigner(account_address=address, key_pair=key_pair, chain_id=chain))
