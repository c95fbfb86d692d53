"""One way from settings (VOLTA_* or the harness's state.json) to the Starknet client's config."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.state import operator_starknet_config, settings_from_regtest_state
from service.config import Settings
from service.starknet.client import StarknetClient, StarknetConfig


def regtest_state(key_file: Path) -> dict[str, object]:
    merchant = {"rest_url": "https://127.0.0.1:8080", "tls_cert": "tls.cert", "macaroon": "admin.macaroon"}
    return {
        "lightning": {"nodes": {"merchant": merchant}},
        "starknet": {
            "rpc_url": "http://127.0.0.1:5050/rpc",
            "chain_id": "0x534e5f5345504f4c4941",
            "contracts": {"vault": "0x1", "vusd": "0x2", "oracle": "0x3"},
            "operator": {"address": "0xa", "private_key_file": str(key_file)},
        },
    }


def test_state_json_gives_the_services_own_config(tmp_path: Path) -> None:
    key_file = tmp_path / "operator.key"
    key_file.write_text("0xbeef\n")
    config = operator_starknet_config(regtest_state(key_file))
    assert config == StarknetConfig(
        rpc_url="http://127.0.0.1:5050/rpc", vault_address=1, vusd_address=2, oracle_address=3, operator_address=10,
        operator_private_key=0xBEEF, chain_id=0x534E5F5345504F4C4941, mint_timeout_s=Settings().mint_timeout_s,
        answer_margin_s=Settings().mint_answer_margin_s)


def test_no_starknet_configured_says_what_to_set() -> None:
    with pytest.raises(ValueError, match="VOLTA_STARKNET_RPC_URL"):
        StarknetConfig.from_settings(Settings())


def test_mint_lanes_come_from_state_json_and_are_distinct_accounts(tmp_path: Path) -> None:
    key_file, lane_key = tmp_path / "operator.key", tmp_path / "lane2.key"
    key_file.write_text("0xbeef\n")
    lane_key.write_text("0xcafe\n")
    state = regtest_state(key_file)
    state["starknet"]["mint_lanes"] = [{"address": "0xb", "private_key_file": str(lane_key)}]  # type: ignore[index]
    config = operator_starknet_config(state)
    assert [(hex(key.address), key.private_key) for key in config.operators] == [("0xa", 0xbeef), ("0xb", 0xcafe)]

    lane = {"address": "0xB", "private_key_file": str(lane_key)}
    with pytest.raises(ValueError, match="distinct accounts"):
        Settings.model_validate({"operator_address": "0xa", "mint_lane_accounts": [lane, {**lane, "address": "0x0b"}]})
    with pytest.raises(ValueError, match="distinct accounts"):
        Settings.model_validate({"operator_address": "0xb", "mint_lane_accounts": [lane]})
    from_json = Settings.model_validate({"mint_lane_accounts": '[{"address": "0xb", "private_key_file": "k"}]'})
    assert from_json.mint_lane_accounts[0].address == "0xb"  # VOLTA_MINT_LANE_ACCOUNTS is JSON


def test_an_api_instance_reads_no_minting_key(tmp_path: Path) -> None:
    """A process that serves the public (VOLTA_RUN_WORKER=false) never opens the operator's or the lanes' key
    files: here they do not exist, and the config is still built, with no account to sign from."""
    state = regtest_state(tmp_path / "absent-operator.key")
    state["starknet"]["mint_lanes"] = [{"address": "0xb", "private_key_file": str(tmp_path / "absent-lane.key")}]  # type: ignore[index]
    settings = Settings(**settings_from_regtest_state(state))
    config = StarknetConfig.from_settings(settings, signs_mints=False)
    assert config.operators == ()
    assert "private_key" not in repr(config)
    with pytest.raises(FileNotFoundError):
        StarknetConfig.from_settings(settings)  # a worker does read them


def test_a_keyless_client_refuses_to_mint_or_void_before_any_request(tmp_path: Path) -> None:
    state = regtest_state(tmp_path / "absent-operator.key")
    config = StarknetConfig.from_settings(Settings(**settings_from_regtest_state(state)), signs_mints=False)
    client = StarknetClient(config)  # the node's URL is never reached: both refusals come first
    try:
        with pytest.raises(RuntimeError, match="signs no mints"):
            client.mint_for_payment(1, 1, b"\x01" * 32)
        with pytest.raises(RuntimeError, match="signs no mints"):
            client.void_nonce(0)
    finally:
        client.close()
