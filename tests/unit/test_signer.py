"""The mint lanes' signer (starknet-rs through starknet-crypto-py) must sign exactly as starknet-py's own signer does:
same bits for the same transaction, valid under the Stark curve's verification. The devnet accepting the lanes'
mints (tests/e2e, tests/atomicity) checks the same against the chain."""

from __future__ import annotations

from starknet_py.hash.utils import verify_message_signature
from starknet_py.net.client_models import Call, ResourceBounds, ResourceBoundsMapping
from starknet_py.net.full_node_client import FullNodeClient
from starknet_py.net.models import StarknetChainId
from starknet_py.net.models.transaction import InvokeV3
from starknet_py.net.signer.key_pair import KeyPair
from starknet_py.net.signer.stark_curve_signer import StarkCurveSigner

from service.starknet.signer import RustStarkSigner, signing_account

# A devnet's predeployed account key (seed 0), and a mint-like call's calldata.
PRIVATE_KEY = 0x71D7BB07B9A64F6F78AC4C816AFF4DA9
ADDRESS = 0x64B48806902A367C8598F4F95C305E8C1A1ACBA5F082D294A43793113115691
BOUNDS = ResourceBoundsMapping(l1_gas=ResourceBounds(max_amount=10_000, max_price_per_unit=10**11),
                               l2_gas=ResourceBounds(max_amount=10**7, max_price_per_unit=10**10),
                               l1_data_gas=ResourceBounds(max_amount=10_000, max_price_per_unit=10**11))


def invoke(nonce: int) -> InvokeV3:
    call = Call(to_addr=0x1234, selector=0x5678, calldata=[0xABC, 10**18, 0, 0xDEF])
    return InvokeV3(version=3, signature=[], nonce=nonce, resource_bounds=BOUNDS, tip=0, sender_address=ADDRESS,
                    calldata=[1, call.to_addr, call.selector, len(call.calldata), *call.calldata])


def test_the_rust_signer_signs_the_same_bits_as_starknet_py() -> None:
    key_pair = KeyPair.from_private_key(PRIVATE_KEY)  # starknet-py's own derivation of the public key
    theirs = StarkCurveSigner(ADDRESS, key_pair, StarknetChainId.SEPOLIA)
    ours = RustStarkSigner(ADDRESS, key_pair, StarknetChainId.SEPOLIA)
    for nonce in range(5):
        transaction = invoke(nonce)
        signature = ours.sign_transaction(transaction)
        assert signature == theirs.sign_transaction(transaction)
        assert verify_message_signature(transaction.calculate_hash(StarknetChainId.SEPOLIA), signature,
                                        key_pair.public_key)


def test_a_signing_account_has_starknet_pys_public_key_and_the_rust_signer() -> None:
    account = signing_account(ADDRESS, PRIVATE_KEY, FullNodeClient(node_url="http://127.0.0.1:1"),
                              StarknetChainId.SEPOLIA)
    assert isinstance(account.signer, RustStarkSigner)
    assert account.signer.public_key == KeyPair.from_private_key(PRIVATE_KEY).public_key
