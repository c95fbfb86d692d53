"""A service started with bad settings stops with a message naming the field and the rule, and never
prints the value of any setting: a secret set beside the mistake must not reach a terminal or a log."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SECRETS = {
    "VOLTA_ADMIN_TOKEN": "admin-token-Zq81",
    "VOLTA_WEBHOOK_SECRET": "whsec-Zq82",
    "VOLTA_INBOUND_WEBHOOK_SECRET": "inbound-Zq83",
    "VOLTA_OPERATOR_PRIVATE_KEY": "0x5ec2e7Zq84",
}


def start_with(entry_point: str, mistake: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("VOLTA_")}
    env |= SECRETS | mistake | {"VOLTA_DATABASE_URL": "sqlite://", "VOLTA_RUN_WORKER": "false"}
    return subprocess.run([sys.executable, "-m", entry_point], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=60)


@pytest.mark.parametrize("entry_point", ["service", "service.worker"])
@pytest.mark.parametrize(("mistake", "named"), [
    ({"VOLTA_MAX_HOLD_S": "60"}, "max_hold_s"),  # a rule across fields: pydantic would print every input
    ({"VOLTA_SPREAD_BPS": "lots"}, "spread_bps"),
    ({"VOLTA_WEBHOOK_URLS": "http://127.0.0.1:9/hook", "VOLTA_WEBHOOK_SECRET": ""}, "webhook_secret"),
])
def test_bad_settings_are_named_without_printing_any_secret(entry_point: str, mistake: dict[str, str],
                                                            named: str) -> None:
    finished = start_with(entry_point, mistake)
    output = finished.stdout + finished.stderr
    assert finished.returncode != 0, output
    assert named in output, output
    leaked = [name for name, value in SECRETS.items() if value in output]
    assert not leaked, f"{leaked} printed:\n{output}"
    repeated = [name for name, value in mistake.items() if value and value in output]
    assert not repeated, f"the value of {repeated} printed:\n{output}"


def test_the_wsgi_entry_point_refuses_to_run_a_worker_inside_gunicorn() -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("VOLTA_")}
    env |= SECRETS | {"VOLTA_DATABASE_URL": "sqlite://"}  # VOLTA_RUN_WORKER left at its default, true
    result = subprocess.run([sys.executable, "-c", "import service.wsgi"], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "VOLTA_RUN_WORKER=false" in result.stderr and "python -m service.worker" in result.stderr
