"""No process outlives the network: not after Ctrl-C, not after a failed start."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.network import Network
from harness.process import ProcessError
from harness.util import Timeouts, wait_until

pytestmark = pytest.mark.regtest


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is gone for every practical purpose.
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "zombie" not in status.read_text()


def test_failed_start_stops_what_was_already_running(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LND_BIN", "/bin/false")  # lnd "starts" and exits at once
    network = Network(tmp_path / "run")

    with pytest.raises(ProcessError, match="exited"):
        network.__enter__()

    assert network.btcd is not None and network.btcd.pid is not None, "btcd was started before lnd failed"
    assert not pid_alive(network.btcd.pid)
    assert (tmp_path / "run").exists(), "the run directory is kept when the start failed"


def test_ctrl_c_on_harness_up_leaves_no_process(tmp_path: Path) -> None:
    env = {**os.environ, "VOLTA_REGTEST_DIR": str(tmp_path)}
    # Its output goes to a file the failure message quotes (a pipe read only at the end could also block it).
    output = tmp_path / "harness-up.log"
    with output.open("wb") as sink:
        harness = subprocess.Popen([sys.executable, "-m", "harness", "up", "--foreground"],
                                   env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    state_file = tmp_path / "state.json"
    try:
        wait_until(lambda: state_file.exists() or harness.poll() is not None,
                   timeout=Timeouts.PROCESS_START * 3, what="harness up to write state.json")
        assert harness.poll() is None, output.read_text(errors="replace")
        pids = json.loads(state_file.read_text())["pids"]
        assert {"btcd", "merchant", "payer", "router"} <= set(pids)
        assert all(pid_alive(pid) for pid in pids.values())

        harness.send_signal(signal.SIGINT)
        try:
            harness.wait(timeout=Timeouts.PROCESS_STOP * 4)
        except subprocess.TimeoutExpired:
            tail = output.read_text(errors="replace")[-4000:]
            raise AssertionError(f"harness up did not stop on Ctrl-C; the end of its output:\n{tail}") from None
    finally:
        if harness.poll() is None:
            harness.kill()

    time.sleep(0.2)
    assert [name for name, pid in pids.items() if pid_alive(pid)] == []
    assert not state_file.exists()
