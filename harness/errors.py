"""What the command line tells a person when a command is wrong or a part of the network is down: one line,
which part, and what to do, instead of a traceback."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx

START_HINT = "start the network with `volta-harness up`"


class UsageError(Exception):
    """The command itself is wrong (an unknown node name, a missing value): exit code 2, as argparse's own."""


def endpoints(state: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(name, URL) of every process `state.json` says how to reach."""
    if "bitcoin" in state:
        yield "btcd", state["bitcoin"]["rpc_url"]
    for name, node in state.get("lightning", {}).get("nodes", {}).items():
        yield f"lnd {name}", node["rest_url"]
    if "starknet" in state:
        yield "starknet-devnet", state["starknet"]["rpc_url"]
    if "faults" in state and "api_url" in state["faults"]:
        yield "toxiproxy", state["faults"]["api_url"]
    if "service" in state:
        yield "the service", state["service"]["url"]


def unreachable_address(exc: BaseException) -> str | None:
    """host:port a connection failed to reach, where the exception says it (httpx, aiohttp via starknet-py)."""
    if isinstance(exc, httpx.TransportError):
        try:
            url = exc.request.url
        except RuntimeError:  # raised without a request
            return None
        return f"{url.host}:{url.port}"
    host, port = getattr(exc, "host", None), getattr(exc, "port", None)  # aiohttp.ClientConnectorError
    return f"{host}:{port}" if host and port else None


def down_message(exc: BaseException, state: dict[str, Any] | None, network_running: bool) -> str:
    """One line: which process is not answering, at which URL, and how to get it back."""
    address = unreachable_address(exc)
    name, url = "a process of the network", address or "an unknown address"
    for candidate, candidate_url in endpoints(state or {}):
        parts = urlsplit(candidate_url)
        if address == f"{parts.hostname}:{parts.port}":
            name, url = candidate, candidate_url
            break
    if network_running:
        run_dir = (state or {}).get("run_dir", "the run directory")
        hint = (f"its supervisor is still up, so the process stopped on its own: its log is in {run_dir}; "
                f"restart with `volta-harness down` and `volta-harness up`")
    else:
        hint = f"the network is not running ({type(exc).__name__}): {START_HINT}"
    return f"{name} at {url} is not answering: {hint}"
