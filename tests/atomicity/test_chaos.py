"""A short chaos run (VOLTA_CHAOS_SECONDS, 45 by default; `make chaos` runs 3 minutes): purchases from the
payer and the router while the service is SIGKILLed every 2-8 s, then every order judged from outside."""

from __future__ import annotations

import os

import pytest

from harness.chaos import run_chaos
from harness.network import Network
from tests.atomicity.conftest import SERVICE_ENV, KillRig

pytestmark = pytest.mark.regtest
CHAOS_SECONDS = float(os.environ.get("VOLTA_CHAOS_SECONDS", "45"))


def test_random_sigkills_under_load_leave_every_order_sound(chain_network: Network) -> None:
    try:
        report = run_chaos(chain_network, CHAOS_SECONDS, service_env=dict(SERVICE_ENV))
    finally:
        KillRig(chain_network).restart()
    print(report.summary())
    assert report.kills >= 3, "the chaos run must actually kill the service"
    assert report.orders, "no purchase was attempted"
    assert report.violations == [], report.violations
    assert report.sound, report.summary()
