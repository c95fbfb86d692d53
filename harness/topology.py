"""Which lnd nodes the regtest network runs and which channels join them, chosen in one line as
pyln-testing's `line_graph` does: `Topology(payers=2, routers=2, shape="line")`.

Names are stable, so that `state.json`, the CLI (`pay --from payer2`) and scenarios can name a node:
`merchant`, then `payer`, `payer2`, …, then `router`, `router2`, …. The first of each keeps the plain name
every existing test and tool uses, and the default (one payer, one router) is the network as it always was:
payer -> router -> merchant.

Every channel is opened (and funded) by the node nearer the payers, so all the liquidity starts on the
paying side and every payer can pay the merchant at once:

- line: the routers form a chain to the merchant and every payer joins its head,
  payer_i -> router -> router2 -> … -> routerM -> merchant (a payment takes M + 1 hops);
- star: every router has its own channel to the merchant and the payers are dealt out over the routers in
  turn, payer_i -> router_(i mod M) -> merchant (a payment takes 2 hops, the routers side by side).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args

Shape = Literal["line", "star"]
SHAPES: tuple[str, ...] = get_args(Shape)
MERCHANT = "merchant"


def numbered(role: str, count: int) -> list[str]:
    """`role`, `role2`, `role3`, …: `count` stable names, the first one plain."""
    return [role if index == 1 else f"{role}{index}" for index in range(1, count + 1)]


@dataclass(frozen=True)
class Topology:
    payers: int = 1
    routers: int = 1
    shape: Shape = "line"

    def __post_init__(self) -> None:
        # Checked before anything starts: a typo must not cost a minute of bring-up.
        if self.payers < 1 or self.routers < 1:
            raise ValueError(f"a network needs at least one payer and one router, not {self.payers} payer(s) "
                             f"and {self.routers} router(s)")
        if self.shape not in SHAPES:
            raise ValueError(f"unknown topology {self.shape!r}; choose one of {', '.join(SHAPES)}")

    @property
    def payer_names(self) -> list[str]:
        return numbered("payer", self.payers)

    @property
    def router_names(self) -> list[str]:
        return numbered("router", self.routers)

    @property
    def node_names(self) -> list[str]:
        return [MERCHANT, *self.payer_names, *self.router_names]

    def channels(self) -> list[tuple[str, str]]:
        """Every channel as (opener, peer), the opener funding it; routers' channels first."""
        routers = self.router_names
        if self.shape == "line":
            router_hops = list(zip(routers, [*routers[1:], MERCHANT], strict=True))
            return [*router_hops, *((payer, routers[0]) for payer in self.payer_names)]
        return [*((router, MERCHANT) for router in routers),
                *((payer, routers[index % len(routers)]) for index, payer in enumerate(self.payer_names))]

    def hops(self) -> int:
        """Channels a payment from any payer to the merchant crosses."""
        return self.routers + 1 if self.shape == "line" else 2

    def channel_counts(self) -> dict[str, int]:
        """How many channels each node has, opened by it or by its peer."""
        counts = dict.fromkeys(self.node_names, 0)
        for opener, peer in self.channels():
            counts[opener] += 1
            counts[peer] += 1
        return counts

    def state(self) -> dict[str, Any]:
        """The `lightning.topology` entry of state.json."""
        return {"shape": self.shape, "payers": self.payer_names, "routers": self.router_names,
                "channels": [list(channel) for channel in self.channels()]}
