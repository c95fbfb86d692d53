"""`state.json`: where a running regtest network tells tools, notebooks and outside tests how to reach it."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from harness.devnet import DevnetClient
from harness.errors import UsageError
from harness.faults import FaultClient
from harness.lnd_client import HarnessLndClient
from service.config import Settings, settings_from_regtest_state
from service.starknet.client import StarknetConfig


def regtest_dir() -> Path:
    return Path(os.environ.get("VOLTA_REGTEST_DIR", Path.cwd() / ".regtest"))


def state_path() -> Path:
    return regtest_dir() / "state.json"


def write_state(state: dict[str, Any], path: Path | None = None) -> Path:
    path = path or state_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(state, indent=2))
    temporary.replace(path)  # readers never see half a file
    return path


def read_state(path: Path | None = None) -> dict[str, Any]:
    path = path or state_path()
    if not path.exists():
        raise FileNotFoundError(f"no regtest network is up ({path} missing): start it with `volta-harness up`")
    return json.loads(path.read_text())


def lnd_client(state: dict[str, Any], node: str) -> HarnessLndClient:
    nodes = state["lightning"]["nodes"]
    if node not in nodes:
        raise UsageError(f"no node named {node!r}; known: {', '.join(nodes)}")
    return HarnessLndClient.from_state(nodes[node])


def operator_starknet_config(state: dict[str, Any]) -> StarknetConfig:
    """The service's own way from `state.json` to the vault, signing as the operator."""
    if "starknet" not in state:
        raise KeyError("the running network has no Starknet devnet")
    return StarknetConfig.from_settings(Settings(**settings_from_regtest_state(state)))


def fault_client(state: dict[str, Any]) -> FaultClient:
    """The running network's toxiproxy, as the tests drive it."""
    if "faults" not in state:
        raise KeyError("the running network has no fault proxy: bring it up with `python -m harness up --faults`")
    return FaultClient.from_state(state["faults"])


def devnet_client(state: dict[str, Any]) -> DevnetClient:
    """The running network's devnet, for its block controls."""
    if "starknet" not in state:
        raise KeyError("the running network has no Starknet devnet")
    return DevnetClient.from_state(state["starknet"])
