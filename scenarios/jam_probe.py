"""Check the slot-jamming premises of notebook 6 on a live regtest network, small: an order's invoice is paid
with `parts` one-satoshi MPP shards that never add up to it. Records how many HTLCs the router's channel to the
merchant holds meanwhile, the order's status while they are held, whether an honest purchase still completes
beside them, and when lnd fails the shards back (its partial-set timeout). Writes JSON with provenance.

    .venv/bin/python -m scenarios.jam_probe --parts 30 --out scenarios/calibration/jam_probe.json
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from scenarios.provenance import of_measurement

SHARD_MSAT = 1_000


def _pending_htlcs(client: Any, peer_pubkey: str) -> int:
    return sum(len(channel.get("pending_htlcs", [])) for channel in client.list_channels()
               if channel.get("remote_pubkey") == peer_pubkey)


def probe(parts: int) -> dict[str, Any]:
    from harness.network import Network
    from harness.purchase import Buyer

    began = time.time()
    with Network() as network:
        assert network.service is not None
        payer = network.payer.client()
        router = network.router.client()
        buyer = Buyer(network.service_url, payer)
        address = network.users[0]["address"]
        try:
            order = buyer.create_order(address, "10.00").order
            bolt11 = order["bolt11"]
            sent = time.time()
            with ThreadPoolExecutor(max_workers=parts) as pool:
                shards = [pool.submit(lambda: (payer.send_shard(bolt11, SHARD_MSAT), time.time()))
                          for _ in range(parts)]
                time.sleep(5)
                held_on_router = _pending_htlcs(router, network.merchant.pubkey)
                status = buyer.http.get(f"/api/v1/orders/{order['order_id']}").json()["status"]
                honest = buyer.timed_purchase(address)
                results = [shard.result(timeout=400) for shard in shards]
            after = _pending_htlcs(router, network.merchant.pubkey)
            status_after = buyer.http.get(f"/api/v1/orders/{order['order_id']}").json()["status"]
        finally:
            buyer.close()
    return {
        "what": "one order's invoice paid with one-satoshi MPP shards that never complete it",
        "provenance": of_measurement(began, parts, None, "python -m scenarios.jam_probe"),
        "parts": parts, "shard_msat": SHARD_MSAT,
        "htlcs_held_on_router_to_merchant": held_on_router,
        "order_status_while_held": status, "order_status_after": status_after,
        "honest_purchase_beside_it_s": honest["end_to_end"],
        "shard_statuses": sorted({result["status"] for result, _ in results}),
        "shard_failure_codes": sorted({str((result.get("failure") or {}).get("code")) for result, _ in results}),
        "held_s": sorted(at - sent for _, at in results),
        "htlcs_on_router_after": after,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", type=int, default=30)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    data = probe(args.parts)
    args.out.write_text(json.dumps(data, indent=1) + "\n")
    print(json.dumps({k: v for k, v in data.items() if k != "held_s"}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
