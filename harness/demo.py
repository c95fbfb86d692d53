"""`python -m harness demo`: one real purchase, the way a person makes it, timed step by step.

Brings the network up if it is not (btcd, three lnd nodes, devnet with the contracts, the service),
asks the service for 25 VUSD, pays the invoice from the payer node through the router, waits for
`completed`, and prints the VUSD balance on the devnet.
"""

from __future__ import annotations

from datetime import UTC, datetime

from rich.console import Console
from rich.table import Table

from harness.purchase import Buyer, state_times
from harness.state import lnd_client, read_state
from harness.supervisor import bring_up, network_is_up, starknet_from_state
from service.domain.pricing import VUSD_QUANTUM, vusd_from_base_units
from service.domain.states import OrderStatus

console = Console()
DEMO_VUSD = "25.00"


def ensure_network_up() -> dict:
    if not network_is_up() and bring_up() != 0:
        raise SystemExit("could not bring the regtest network up")
    return read_state()


def run_demo() -> int:
    state = ensure_network_up()
    starknet, chain = starknet_from_state()
    recipient = starknet["users"][0]["address"]
    payer = lnd_client(state, "payer")
    buyer = Buyer(state["service"]["url"], payer)
    try:
        vusd_before = chain.vusd_balance(int(recipient, 16))
        sats_before = payer.channel_balance()["local_msat"] // 1000
        purchase = buyer.buy(recipient, DEMO_VUSD)
        vusd_after = chain.vusd_balance(int(recipient, 16))
    finally:
        buyer.close()
        chain.close()
    order = purchase.order
    print_steps(order)
    if order["status"] != OrderStatus.COMPLETED:
        console.print(f"[red]purchase ended {order['status']}[/red] ({order.get('refund_reason')})")
        return 1
    payment = purchase.payment.result() if purchase.payment else {}
    console.print(f"paid {order['amount_sat']} sat (+{int(payment.get('fee_msat', 0)) // 1000} sat routing fee) "
                  f"from payer; payer had {sats_before} sat in channels")
    console.print(f"VUSD balance of {recipient[:12]}…: {as_vusd(vusd_before)} -> {as_vusd(vusd_after)} "
                  f"(mint tx {order['mint_tx_hash']})")
    console.print("the network stays up: `python -m harness status`, `python -m harness down`")
    return 0


def as_vusd(base_units: int) -> str:
    return f"{vusd_from_base_units(base_units).quantize(VUSD_QUANTUM)}"


def print_steps(order: dict) -> None:
    table = Table("state", "at", "after previous")
    previous: float | None = None
    for status, at in state_times(order["history"]).items():
        delta = f"{(at - previous) * 1000:.0f} ms" if previous else "-"
        table.add_row(status, datetime.fromtimestamp(at, UTC).strftime("%H:%M:%S.%f")[:-3], delta)
        previous = at
    console.print(table)
