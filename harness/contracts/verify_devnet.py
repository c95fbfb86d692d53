"""Declare, deploy and exercise the compiled contracts on a throwaway starknet-devnet.

Usage:
    python harness/contracts/verify_devnet.py [--devnet-bin PATH]

Starts `starknet-devnet --seed 42 --accounts 3` on a free loopback port, declares the three classes
from compiled/ with starknet-py, deploys them in the production order (VUSD, Vault, set_minter,
PriceOracle), runs one Lightning mint, checks that replaying the payment hash is rejected and reads
the oracle back through Pragma's `get_data_median`. The devnet is always stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from starknet_py.cairo.felt import encode_shortstring
from starknet_py.contract import Contract
from starknet_py.net.account.account import Account
from starknet_py.net.full_node_client import FullNodeClient
from starknet_py.net.models import StarknetChainId
from starknet_py.net.signer.key_pair import KeyPair

HERE = Path(__file__).resolve().parent
COMPILED_DIR = HERE / "compiled"
DEFAULT_DEVNET = Path.home() / ".cache/volta-lightning/tools/starknet-devnet-0.8.1/bin/starknet-devnet"
BTC_USD = encode_shortstring("BTC/USD")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rpc(url: str, method: str, params: Any = None) -> Any:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or {}}).encode()
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["result"]


def start_devnet(binary: Path, port: int) -> subprocess.Popen[bytes]:
    cmd = [str(binary), "--seed", "42", "--accounts", "3", "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/is_alive", timeout=2)
            return proc
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("devnet did not come up within 60 s")


def load(name: str) -> tuple[str, str]:
    sierra = (COMPILED_DIR / f"{name}.sierra.json").read_text()
    casm = (COMPILED_DIR / f"{name}.casm.json").read_text()
    return sierra, casm


async def declare_and_deploy(account: Account, name: str, args: list[Any]) -> Contract:
    sierra, casm = load(name)
    declared = await Contract.declare_v3(
        account, compiled_contract=sierra, compiled_contract_casm=casm, auto_estimate=True
    )
    await declared.wait_for_acceptance()
    expected = json.loads((COMPILED_DIR / "manifest.json").read_text())["contracts"][name]["class_hash"]
    assert hex(declared.class_hash) == expected, (name, hex(declared.class_hash), expected)
    deployed = await declared.deploy_v3(constructor_args=args, auto_estimate=True)
    await deployed.wait_for_acceptance()
    print(f"{name}: class {hex(declared.class_hash)} deployed at {hex(deployed.deployed_contract.address)}")
    return deployed.deployed_contract


async def invoke(contract: Contract, fn: str, *args: Any) -> None:
    result = await contract.functions[fn].invoke_v3(*args, auto_estimate=True)
    await result.wait_for_acceptance()


async def expect_revert(contract: Contract, fn: str, reason: str, *args: Any) -> None:
    try:
        await invoke(contract, fn, *args)
    except Exception as exc:  # starknet-py raises ClientError/TransactionRevertedError variants
        assert reason.encode().hex() in str(exc) or reason in str(exc), exc
        print(f"{fn}: rejected as expected ({reason})")
        return
    raise AssertionError(f"{fn} should have reverted with {reason}")


def bind(contract: Contract, account: Account) -> Contract:
    return Contract(address=contract.address, abi=contract.data.abi, provider=account)


async def exercise(url: str) -> None:
    client = FullNodeClient(node_url=url)
    accounts = [
        Account(
            address=acc["address"],
            client=client,
            key_pair=KeyPair.from_private_key(int(acc["private_key"], 16)),
            chain=StarknetChainId.SEPOLIA,
        )
        for acc in rpc(url, "devnet_getPredeployedAccounts")
    ]
    owner, operator, user = accounts
    vusd = await declare_and_deploy(
        owner, "VUSD", [encode_shortstring("Volta USD"), encode_shortstring("VUSD"), owner.address]
    )
    vault = await declare_and_deploy(owner, "Vault", [owner.address, operator.address, vusd.address])
    oracle = await declare_and_deploy(owner, "PriceOracle", [owner.address])
    await invoke(vusd, "set_minter", vault.address)
    await invoke(oracle, "set_price", BTC_USD, 6_512_345_000_000, 8)

    amount, payment_hash = 25 * 10**18, int.from_bytes(os.urandom(32), "big")
    await expect_revert(
        bind(vault, user), "mint_for_payment", "ONLY_OPERATOR", user.address, amount, payment_hash
    )
    await invoke(bind(vault, operator), "mint_for_payment", user.address, amount, payment_hash)
    (balance,) = await vusd.functions["balance_of"].call(user.address)
    assert balance == amount, balance
    (used,) = await vault.functions["is_payment_used"].call(payment_hash)
    assert used is True, used
    await expect_revert(
        bind(vault, operator), "mint_for_payment", "PAYMENT_ALREADY_USED", user.address, amount, payment_hash
    )
    await expect_revert(vusd, "set_minter", "MINTER_ALREADY_SET", owner.address)
    (response,) = await oracle.functions["get_data_median"].call({"SpotEntry": BTC_USD})
    print(f"VUSD balance {balance}; get_data_median(SpotEntry('BTC/USD')) = {response}")
    assert response["price"] == 6_512_345_000_000 and response["decimals"] == 8, response


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--devnet-bin", type=Path, default=Path(os.environ.get("DEVNET_BIN", DEFAULT_DEVNET)))
    args = parser.parse_args(argv)
    port = free_port()
    proc = start_devnet(args.devnet_bin, port)
    try:
        asyncio.run(exercise(f"http://127.0.0.1:{port}/rpc"))
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    print("devnet verification passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
