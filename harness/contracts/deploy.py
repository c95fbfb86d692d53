"""Declare and deploy VOLTA's stand-in contracts from harness/contracts/compiled on a devnet."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from starknet_py.cairo.felt import encode_shortstring
from starknet_py.contract import Contract
from starknet_py.hash.selector import get_selector_from_name
from starknet_py.net.account.account import Account
from starknet_py.net.client_models import Call
from starknet_py.net.full_node_client import FullNodeClient
from starknet_py.net.models import StarknetChainId
from starknet_py.net.udc_deployer.deployer import Deployer

from service.starknet.client import BTC_USD_PAIR
from service.starknet.signer import signing_account

COMPILED_DIR = Path(__file__).parent / "compiled"
ORACLE_DECIMALS = 8


@dataclass(frozen=True)
class DeployedContracts:
    vusd: int
    vault: int
    oracle: int


def make_account(rpc_url: str, address: str | int, private_key: str | int) -> Account:
    return signing_account(int(address, 16) if isinstance(address, str) else address,
                           int(private_key, 16) if isinstance(private_key, str) else private_key,
                           FullNodeClient(node_url=rpc_url), StarknetChainId.SEPOLIA)


async def _declare(account: Account, name: str) -> int:
    sierra = (COMPILED_DIR / f"{name}.sierra.json").read_text()
    casm = (COMPILED_DIR / f"{name}.casm.json").read_text()
    declared = await Contract.declare_v3(account, compiled_contract=sierra, compiled_contract_casm=casm,
                                         auto_estimate=True)
    await declared.wait_for_acceptance(check_interval=0.1)
    return declared.class_hash


async def _deploy(account: Account, class_hash: int, constructor_calldata: list[int]) -> int:
    deploy_call, address = Deployer().create_contract_deployment_raw(
        class_hash=class_hash, raw_calldata=constructor_calldata
    )
    sent = await account.execute_v3(deploy_call, auto_estimate=True)
    await account.client.wait_for_tx(sent.transaction_hash, check_interval=0.1)
    return address


async def invoke(account: Account, to_addr: int, function: str, calldata: list[int]) -> int:
    call = Call(to_addr=to_addr, selector=get_selector_from_name(function), calldata=calldata)
    sent = await account.execute_v3(call, auto_estimate=True)
    await account.client.wait_for_tx(sent.transaction_hash, check_interval=0.1)
    return sent.transaction_hash


async def deploy_all(owner: Account, operator_address: int, btc_usd: Decimal,
                     more_operators: Sequence[int] = ()) -> DeployedContracts:
    """VUSD, then the Vault that mints it (its first operator, then `more_operators`: one per mint lane), then
    the oracle with an initial BTC/USD price."""
    vusd_class, vault_class, oracle_class = [
        await _declare(owner, name) for name in ("VUSD", "Vault", "PriceOracle")
    ]
    name, symbol = encode_shortstring("Volta USD"), encode_shortstring("VUSD")
    vusd = await _deploy(owner, vusd_class, [name, symbol, owner.address])
    vault = await _deploy(owner, vault_class, [owner.address, operator_address, vusd])
    await invoke(owner, vusd, "set_minter", [vault])
    for operator in more_operators:
        await invoke(owner, vault, "add_operator", [operator])
    oracle = await _deploy(owner, oracle_class, [owner.address])
    await set_price(owner, oracle, btc_usd)
    return DeployedContracts(vusd=vusd, vault=vault, oracle=oracle)


async def set_price(owner: Account, oracle: int, btc_usd: Decimal) -> int:
    raw = int(btc_usd.scaleb(ORACLE_DECIMALS))
    return await invoke(owner, oracle, "set_price", [BTC_USD_PAIR, raw, ORACLE_DECIMALS])


def deploy_all_sync(owner: Account, operator_address: int, btc_usd: Decimal,
                    more_operators: Sequence[int] = ()) -> DeployedContracts:
    return asyncio.run(deploy_all(owner, operator_address, btc_usd, more_operators))
