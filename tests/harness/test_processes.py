"""Each process's life cycle on its own: a refused password ends the start at once, and every stop is
checked for a clean exit (Bitcoin Core's `expected_ret_code`), the real programs' and a misbehaving one's."""

from __future__ import annotations

import logging
import signal
import sys
import time
from pathlib import Path

import httpx
import pytest

from harness.btcd import Btcd
from harness.devnet import Devnet
from harness.faults import Toxiproxy
from harness.lnd import Lnd
from harness.network import Network
from harness.nginx import Nginx
from harness.postgres import Postgres
from harness.process import ManagedProcess, ProcessError
from harness.redis import Redis
from harness.tools import locate
from harness.util import Timeouts, free_port, wait_until

pytestmark = pytest.mark.regtest

# Far below the 120 s start timeout the password used to be retried for: btcd itself starts in about a second.
REFUSED_WITHIN_S = 15


def test_wrong_btcd_password_fails_the_start_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    btcd = Btcd(locate("btcd")["btcd"], tmp_path / "btcd")
    command = btcd.command()  # btcd runs with the right password ...
    monkeypatch.setattr(btcd, "command", lambda: command)
    btcd.rpc_password = "not-" + btcd.rpc_password  # ... and the harness's client asks with a wrong one
    started = time.monotonic()
    try:
        with pytest.raises(ProcessError) as refused:
            btcd.start()
        elapsed_s = time.monotonic() - started
        assert btcd.is_running(), "btcd itself is fine; only the client's password is wrong"
    finally:
        btcd.stop()

    assert elapsed_s < REFUSED_WITHIN_S, f"took {elapsed_s:.1f}s: the refusal was retried"
    message = str(refused.value)
    assert "[btcd]" in message and "RPC user 'volta'" in message and "refused the password" in message, message
    assert "HTTP 401" in message, message
    assert "RPC authentication failure" in btcd.log_path.read_text(), "btcd's own log shows the refusal"


def test_the_real_programs_stop_cleanly(tmp_path: Path) -> None:
    """The exit codes each program gives on SIGTERM, as the harness expects them (measured, not assumed)."""
    btcd = Btcd(locate("btcd")["btcd"], tmp_path / "btcd")
    lnd = Lnd(locate("lnd")["lnd"], tmp_path / "lnd", "lnd", btcd)
    devnet = Devnet(locate("starknet-devnet")["starknet-devnet"], tmp_path / "devnet")
    toxiproxy = Toxiproxy(locate("toxiproxy")["toxiproxy-server"], tmp_path / "toxiproxy")
    processes: list[ManagedProcess] = [btcd, lnd, devnet, toxiproxy]
    try:
        btcd.start()
        btcd.mine(1)  # a recent tip, so that lnd can call itself synced and `start` return
        for process in processes[1:]:
            process.start()
        for process in reversed(processes):
            process.stop()  # raises if the exit is not a clean one
    finally:
        for process in processes:
            process.kill()

    assert {process.name: process.exit_code for process in processes} == {
        "btcd": 0, "lnd": 0, "devnet": -signal.SIGTERM, "toxiproxy": 0}


# An API instance's stand-in for nginx: answers every GET with 200 and the request's headers as JSON.
ECHO_SERVER = """
import json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
class Echo(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps(dict(self.headers.items())).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
HTTPServer(("127.0.0.1", int(sys.argv[1])), Echo).serve_forever()
"""


class Upstream(ManagedProcess):
    def __init__(self, workdir: Path) -> None:
        super().__init__("upstream", workdir)
        self.port = free_port()

    def command(self) -> list[str]:
        return [sys.executable, "-c", ECHO_SERVER, str(self.port)]

    def wait_ready(self, *, timeout: float = Timeouts.PROCESS_START) -> None:
        self.wait_answering(lambda: httpx.get(f"http://127.0.0.1:{self.port}/").status_code == 200,
                            "its first answer", transient=(httpx.TransportError,), timeout=timeout)


def test_postgres_redis_and_nginx_stop_cleanly(tmp_path: Path) -> None:
    """The scaled-out service's programs, measured like the others: PostgreSQL's fast shutdown (SIGINT) with a
    client still connected, redis-server and nginx on SIGTERM, all exit 0."""
    upstream = Upstream(tmp_path / "upstream")
    postgres, redis = Postgres(tmp_path / "postgres"), Redis(tmp_path / "redis")
    processes: list[ManagedProcess] = [upstream, postgres, redis]
    try:
        for process in processes:
            process.start()
        nginx = Nginx(tmp_path / "nginx", [f"127.0.0.1:{upstream.port}"])
        processes.append(nginx)
        nginx.start()
        client = postgres.connect()  # a pool's connection left open: the fast shutdown ends it
        assert client.execute("SELECT current_user").fetchone() == ("volta",)
        with redis.client() as redis_client:
            assert redis_client.ping()
        # nginx passes the client on: appended to what a proxy before it said (the service trusts one hop).
        seen = httpx.get(f"{nginx.url}/api/v1/rate", headers={"X-Forwarded-For": "203.0.113.7"}).json()
        assert seen["X-Forwarded-For"] == "203.0.113.7, 127.0.0.1" and seen["X-Real-IP"] == "127.0.0.1"
        assert httpx.get(f"{nginx.url}/api/v1/rate").json()["X-Forwarded-For"] == "127.0.0.1"
        for process in reversed(processes):
            process.stop()  # raises if the exit is not a clean one
        client.close()
    finally:
        for process in processes:
            process.kill()
        postgres.discard()

    assert {process.name: process.exit_code for process in processes} == {
        "upstream": -signal.SIGTERM, "postgres": 0, "redis": 0, "nginx": 0}
    assert postgres.STOP_SIGNAL == signal.SIGINT
    assert "received fast shutdown request" in postgres.log_path.read_text()


def test_the_service_stops_cleanly(network: Network) -> None:
    service = network.service
    assert service is not None
    service.stop()
    assert service.exit_code == -signal.SIGTERM  # Python's default action on SIGTERM
    service.start()


class Script(ManagedProcess):
    """A shell script in the place of a program that misbehaves on stop: the check is the same for all."""

    def __init__(self, workdir: Path, script: str) -> None:
        super().__init__("misbehaving", workdir)
        self.script = script

    def command(self) -> list[str]:
        return ["/bin/sh", "-c", self.script]

    def wait_ready(self, *, timeout: float = Timeouts.PROCESS_START) -> None:
        self.wait_answering(lambda: (self.workdir / "ready").exists(), "its ready file", timeout=timeout)


# Ready only after the script's traps are set: a SIGTERM before that would find the shell's default action.
LOOP = "touch ready; while :; do sleep 0.1; done"


@pytest.mark.parametrize(("script", "reason"), [
    (f"trap 'echo shutting down badly; exit 3' TERM; {LOOP}", "ended on SIGTERM with exit code 3"),
    (f"trap 'trap - SEGV; kill -SEGV $$' TERM; {LOOP}", "ended on SIGTERM with killed by SIGSEGV"),
    ("touch ready; sleep 1; echo crashed; exit 4", "ended before it was asked to stop with exit code 4"),
], ids=["exit-3", "other-signal", "died-before"])
def test_an_unclean_stop_is_reported_with_its_log(tmp_path: Path, script: str, reason: str) -> None:
    process = Script(tmp_path, script)
    process.start()
    if "exit 4" in script:
        wait_until(lambda: not process.is_running(), timeout=5, what="the script to exit on its own")

    with pytest.raises(ProcessError, match=reason) as unclean:
        process.stop()

    assert str(unclean.value).startswith("[misbehaving]")
    assert "log tail:" in str(unclean.value)
    assert ("shutting down badly" in str(unclean.value)) == ("exit 3" in script)
    process.stop()  # reported once: a second stop is quiet


def test_a_process_deaf_to_sigterm_is_killed_and_reported(tmp_path: Path) -> None:
    process = Script(tmp_path, f"trap '' TERM; {LOOP}")
    process.start()

    with pytest.raises(ProcessError, match=r"did not stop within 1s of SIGTERM, so it was killed"):
        process.stop(timeout=1)

    assert not process.is_running() and process.exit_code == -signal.SIGKILL


def test_kill_and_an_expected_exit_code_are_not_reported(tmp_path: Path) -> None:
    bad_exit = f"trap 'exit 3' TERM; {LOOP}"
    killed = Script(tmp_path / "killed", bad_exit)
    killed.start()
    killed.kill()
    killed.stop()  # we chose that ending: nothing to report
    assert killed.exit_code == -signal.SIGKILL

    expected = Script(tmp_path / "expected", bad_exit)
    expected.start()
    expected.stop(expected_exit_codes={3})  # as Bitcoin Core's stop_node(expected_ret_code=...)
    assert expected.exit_code == 3


def test_network_teardown_reports_an_unclean_stop_after_stopping_the_rest(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    for failed in (False, True):
        network = Network(tmp_path / f"run-{failed}", starknet=False)
        bad, good = Script(tmp_path / f"bad-{failed}", f"trap 'exit 3' TERM; {LOOP}"), \
            Script(tmp_path / f"good-{failed}", LOOP)
        good.name = "well-behaved"
        network.processes += [good, bad]  # as registered by bring-up; the bad one is stopped first
        good.start()
        bad.start()

        if failed:  # coming down because of another error: log, do not hide that error
            with caplog.at_level(logging.ERROR, logger="harness.network"):
                network.stop(failed=True)
            assert "[misbehaving] ended on SIGTERM with exit code 3" in caplog.text
        else:
            with pytest.raises(ProcessError, match=r"\[misbehaving\] ended on SIGTERM with exit code 3"):
                network.stop()

        assert not good.is_running() and good.exit_code == -signal.SIGTERM, "the others are stopped too"
        assert network.run_dir.exists(), "the logs are kept"
