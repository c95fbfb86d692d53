"""`python -m harness demo`: one real payment payer -> router -> merchant, timed step by step."""

from __future__ import annotations

import time

from rich.console import Console

from harness.cli import cmd_up
from harness.state import lnd_client, read_state, state_path

console = Console()

DEMO_AMOUNT_MSAT = 100_000_000  # 100,000 sat, the size of a typical purchase


def ensure_network_up() -> dict:
    if not state_path().exists():
        import argparse

        if cmd_up(argparse.Namespace(foreground=False)) != 0:
            raise SystemExit("could not bring the regtest network up")
    return read_state()


def run_demo() -> int:
    started = time.monotonic()
    state = ensure_network_up()
    merchant, payer = lnd_client(state, "merchant"), lnd_client(state, "payer")
    before = payer.channel_balance()["local_msat"]
    step = time.monotonic()
    invoice = merchant.add_invoice(DEMO_AMOUNT_MSAT, memo="VOLTA demo payment")
    invoice_s = time.monotonic() - step
    step = time.monotonic()
    result = payer.pay(invoice["payment_request"])
    pay_s = time.monotonic() - step
    settled = merchant.lookup_invoice(bytes.fromhex(invoice["payment_hash"]))
    after = payer.channel_balance()["local_msat"]
    if result.get("status") != "SUCCEEDED" or settled.get("state") != "SETTLED":
        console.print(f"[red]payment failed[/red]: {result.get('failure_reason')} (invoice {settled.get('state')})")
        return 1
    console.print(f"invoice created on merchant in {invoice_s * 1000:.0f} ms")
    console.print(
        f"payer paid {DEMO_AMOUNT_MSAT // 1000} sat through router in {pay_s * 1000:.0f} ms "
        f"(routing fee {int(result.get('fee_msat', 0))} msat); merchant invoice {settled['state']}"
    )
    console.print(f"payer balance {before // 1000} -> {after // 1000} sat; total {time.monotonic() - started:.1f}s")
    console.print("the network stays up: `python -m harness status`, `python -m harness down`")
    return 0
