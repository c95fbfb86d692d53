"""Topologies beyond payer -> router -> merchant: stable names, the channels each shape opens, and real
payments from every payer through a line of routers, judged from lnd (the payer's payment status, the
merchant's invoice state, the route's hops)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli import build_parser
from harness.network import Network
from harness.supervisor import _network_options
from harness.topology import Topology


def test_names_are_stable_and_the_default_is_the_old_line() -> None:
    default = Topology()
    assert default.node_names == ["merchant", "payer", "router"]
    assert default.channels() == [("router", "merchant"), ("payer", "router")]
    assert default.hops() == 2

    wide = Topology(payers=3, routers=2)
    assert wide.payer_names == ["payer", "payer2", "payer3"]
    assert wide.router_names == ["router", "router2"]


def test_a_line_chains_the_routers_and_a_star_puts_them_side_by_side() -> None:
    line = Topology(payers=2, routers=3, shape="line")
    assert line.channels() == [("router", "router2"), ("router2", "router3"), ("router3", "merchant"),
                               ("payer", "router"), ("payer2", "router")]
    assert line.hops() == 4
    assert line.channel_counts() == {"merchant": 1, "payer": 1, "payer2": 1, "router": 3, "router2": 2,
                                     "router3": 2}

    star = Topology(payers=3, routers=2, shape="star")
    assert star.channels() == [("router", "merchant"), ("router2", "merchant"),
                               ("payer", "router"), ("payer2", "router2"), ("payer3", "router")]
    assert star.hops() == 2


@pytest.mark.parametrize(("options", "reason"), [
    ({"payers": 0}, "at least one payer and one router"),
    ({"routers": 0}, "at least one payer and one router"),
    ({"topology": "ring"}, "unknown topology 'ring'"),
])
def test_an_impossible_topology_fails_before_anything_starts(tmp_path: Path, options: dict, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        Network(tmp_path / "run", **options)
    assert not (tmp_path / "run").exists()


def test_up_hands_the_topology_to_its_supervisor() -> None:
    args = build_parser().parse_args(["up", "--payers", "3", "--routers", "2", "--topology", "star"])
    topology = Topology(args.payers, args.routers, args.topology)
    assert topology == Topology(3, 2, "star")
    # The background supervisor is `up --foreground` with the same options: they must parse back the same.
    options = _network_options(None, False, topology)
    again = build_parser().parse_args(["up", "--foreground", *options])
    assert Topology(again.payers, again.routers, again.topology) == topology
    defaults = build_parser().parse_args(["up"])
    assert Topology(defaults.payers, defaults.routers, defaults.topology) == Topology()


@pytest.mark.regtest
def test_two_payers_pay_the_merchant_through_two_routers_in_a_line(tmp_path: Path) -> None:
    with Network(tmp_path / "run", starknet=False, payers=2, routers=2, topology="line") as network:
        state = network.state()
        assert list(state["lightning"]["nodes"]) == ["merchant", "payer", "payer2", "router", "router2"]
        assert {"payer2", "router2"} <= set(state["pids"])
        assert state["lightning"]["topology"]["channels"] == [
            ["router", "router2"], ["router2", "merchant"], ["payer", "router"], ["payer2", "router"]]
        merchant = network.merchant.client()
        route = [network.router.pubkey, network.nodes["router2"].pubkey, network.merchant.pubkey]

        for payer in network.payers:
            invoice = merchant.add_invoice(20_000_000, memo=f"from {payer.name}")

            result = payer.client().pay(invoice["payment_request"])

            assert result["status"] == "SUCCEEDED", (payer.name, result.get("failure_reason"))
            assert [hop["pub_key"] for hop in result["htlcs"][-1]["route"]["hops"]] == route
            assert merchant.lookup_invoice(bytes.fromhex(invoice["payment_hash"]))["state"] == "SETTLED"
