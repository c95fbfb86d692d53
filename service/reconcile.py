"""`python -m service.reconcile`: compare finished orders with lnd and the vault once, repair what can be
repaired, and print every finding as JSON. Exits 1 when something could not be repaired (an operator must
look: those orders are now `failed`). The worker runs the same pass every `VOLTA_RECONCILE_INTERVAL_S`."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import asdict
from datetime import timedelta

from service.config import load_settings
from service.container import build_container, utc_now
from service.domain.reconciliation import Reconciliation


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service.reconcile", description=__doc__)
    parser.add_argument("--hours", type=float, default=24, help="orders finished this many hours back (default 24)")
    args = parser.parse_args(argv)
    settings = load_settings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # No worker, but it may mint again (a mint lost with its block) and void a nonce: it leases a lane as a worker
    # does, so it never sends beside a live worker on the same account.
    container = build_container(settings, with_worker=False, signs_mints=True)
    try:
        reconciliation = Reconciliation(container.repository, container.lightning, container.starknet,
                                        container.preimages)
        findings = reconciliation.run(since=utc_now() - timedelta(hours=args.hours))
    finally:
        container.close()
    print(json.dumps({"findings": [asdict(finding) for finding in findings],
                      "unrepaired": sum(not finding.repaired for finding in findings)}, indent=2))
    return 1 if any(not finding.repaired for finding in findings) else 0


if __name__ == "__main__":
    sys.exit(main())
