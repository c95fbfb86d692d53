"""The service scaled out: two API instances behind nginx and two workers with two mint lanes, on the network's
own PostgreSQL and Redis. A purchase through nginx is judged from lnd and the vault; purchases at once are minted
only by the vault's operators, each lane leased to one worker; an order's events come through nginx as the
service writes them; a SIGKILLed API instance costs no request."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from harness.chaos import run_chaos
from harness.cli import build_parser
from harness.network import Network
from harness.purchase import Buyer
from harness.pytest_plugin import outside_judge
from harness.scale import ServiceScale
from harness.supervisor import _network_options
from harness.topology import Topology
from harness.util import wait_until
from service.api.orders import SSE_KEEPALIVE_S
from service.domain.pricing import vusd_base_units
from service.domain.states import FINAL_STATUSES
from service.starknet.client import StarknetClient

# The first event of an order's stream must reach the buyer at once, not when a buffer fills or the stream ends.
FIRST_EVENT_WITHIN_S = 10
# The service writes an event or a keepalive comment at least every SSE_KEEPALIVE_S: longer silence is a stream
# held back on the way.
SILENCE_LIMIT_S = 2 * SSE_KEEPALIVE_S
CHAOS_SECONDS = float(os.environ.get("VOLTA_CHAOS_SECONDS", "45"))


@pytest.fixture
def buyer(scaled_network: Network) -> Iterator[Buyer]:
    client = Buyer(scaled_network.service_url, scaled_network.payer.client())
    yield client
    client.close()


def upstreams_in_access_log(network: Network, after_line: int = 0) -> list[str]:
    """The instance ("127.0.0.1:PORT") nginx passed each request to, in order; tried ones joined by ", "."""
    assert network.nginx is not None
    lines = network.nginx.access_log.read_text().splitlines()[after_line:]
    return [match.group(1) for line in lines if (match := re.search(r"upstream=([\d.:]+(?:, [\d.:]+)*)", line))]


def test_scale_is_checked_before_anything_starts(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="SQLite serves a single process"):
        Network(tmp_path / "run", api_instances=2, workers=1)
    with pytest.raises(ValueError, match="no order would settle"):
        Network(tmp_path / "run", api_instances=3, database="postgres")
    assert not (tmp_path / "run").exists()
    assert ServiceScale(api_instances=1, workers=1, database="postgres").scaled
    assert not ServiceScale(database="postgres").scaled
    assert ServiceScale(3, 2, "postgres").api_names == ["api", "api2", "api3"]


def test_up_hands_the_scale_to_its_supervisor() -> None:
    args = build_parser().parse_args(["up", "--api", "3", "--workers", "2", "--db", "postgres"])
    scale = ServiceScale(args.api, args.workers, args.db)
    assert scale == ServiceScale(3, 2, "postgres")
    again = build_parser().parse_args(["up", "--foreground", *_network_options(None, False, Topology(), scale)])
    assert ServiceScale(again.api, again.workers, again.db) == scale
    defaults = build_parser().parse_args(["up"])
    assert ServiceScale(defaults.api, defaults.workers, defaults.db) == ServiceScale()  # one process, SQLite


@pytest.mark.regtest
def test_state_json_records_every_process_and_no_secret(scaled_network: Network) -> None:
    network = scaled_network
    assert network.nginx is not None and network.postgres is not None and network.redis is not None
    state = json.loads(json.dumps(network.state()))  # what `python -m harness up` writes to state.json
    service = state["service"]
    assert service["url"] == network.service_url == network.nginx.url
    assert service["database_url"] == f"postgresql+psycopg://volta@127.0.0.1:{network.postgres.port}/volta"
    assert service["redis_url"] == f"redis://127.0.0.1:{network.redis.port}/0"
    assert service["scale"] == {"api_instances": 2, "workers": 2, "database": "postgres"}
    assert list(service["api"]) == ["api", "api2"] and list(service["workers"]) == ["worker", "worker2"]
    assert {"postgres", "redis", "api", "api2", "worker", "worker2", "nginx"} <= set(state["pids"])
    [lane] = state["starknet"]["mint_lanes"]  # the second lane's operator: its key's file, never the key
    assert lane["address"] == network.lane_operators[0]["address"]
    assert network.lane_operators[0]["private_key"] not in json.dumps(state)
    assert Path(lane["private_key_file"]).stat().st_mode & 0o777 == 0o600
    key_file = Path(service["preimage_key_file"])
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert key_file.read_text().strip() not in json.dumps(state), "the key's path is recorded, never the key"
    assert network.service is None, "scaled out, no process is API and worker at once"


@pytest.mark.regtest
def test_every_process_listens_on_loopback_only(scaled_network: Network) -> None:
    ours = {pid for pid in scaled_network.state()["pids"].values()}
    listening = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    addresses: dict[int, list[str]] = {}
    for line in listening.splitlines():
        fields = line.split()
        for pid in map(int, re.findall(r"pid=(\d+)", line)):
            if pid in ours:
                addresses.setdefault(pid, []).append(fields[3])
    names = {pid: name for name, pid in scaled_network.state()["pids"].items()}
    assert {names[pid] for pid in addresses} >= {"postgres", "redis", "api", "api2", "nginx"}
    outside = {names[pid]: found for pid, found in addresses.items()
               if any(not address.startswith("127.0.0.1:") for address in found)}
    assert not outside, f"listening beyond 127.0.0.1: {outside}"


@pytest.mark.regtest
def test_a_purchase_through_nginx_is_judged_from_lnd_and_the_vault(scaled_network: Network, buyer: Buyer) -> None:
    address = scaled_network.users[0]["address"]
    vault = StarknetClient(scaled_network.starknet_config())
    try:
        before = vault.vusd_balance(int(address, 16))
        purchase = buyer.buy(address, "12.00")
        judge = outside_judge(scaled_network, vault)
        verdict = judge.at_rest(purchase.order)
        grown = vault.vusd_balance(int(address, 16)) - before
    finally:
        vault.close()

    assert purchase.order["status"] == "completed", purchase.order
    assert (verdict.invoice_state, verdict.payment_status, verdict.hash_used) == ("SETTLED", "SUCCEEDED", True)
    assert grown == vusd_base_units(Decimal(purchase.order["vusd_amount"]))
    instances = {f"127.0.0.1:{api.port}" for api in scaled_network.api_services}
    assert set(upstreams_in_access_log(scaled_network)) >= instances, "nginx shared the requests out over both"


@pytest.mark.regtest
def test_order_events_pass_through_nginx_unbuffered(scaled_network: Network, buyer: Buyer) -> None:
    """Each event reaches the buyer while the stream is open: the first one while the order still waits for
    its payment, so the stream cannot have ended. A stream held back in nginx (buffered and compressed, say)
    fails here within SILENCE_LIMIT_S, not at the end of the purchase."""
    purchase = buyer.create_order(scaled_network.users[1]["address"], "3.00")
    url = f"{scaled_network.service_url}/api/v1/orders/{purchase.order_id}/events"
    arrivals: list[tuple[float, str]] = []
    opened = time.monotonic()
    try:
        with httpx.stream("GET", url, timeout=httpx.Timeout(10, read=SILENCE_LIMIT_S)) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            for line in response.iter_lines():
                if not line.startswith("data: "):
                    continue
                status = json.loads(line.removeprefix("data: "))["status"]
                arrivals.append((time.monotonic() - opened, status))
                if len(arrivals) == 1:
                    assert arrivals[0][0] < FIRST_EVENT_WITHIN_S, arrivals
                    buyer.pay(purchase)
                if status in FINAL_STATUSES:
                    break
    except httpx.ReadTimeout:
        pytest.fail(f"nothing came through nginx for {SILENCE_LIMIT_S}s (the service writes at least a keepalive "
                    f"every {SSE_KEEPALIVE_S:.0f}s); events so far: {arrivals}")
    ended = time.monotonic() - opened

    statuses = [status for _, status in arrivals]
    assert statuses[0] == "awaiting_payment" and statuses[-1] == "completed", statuses
    assert "payment_held" in statuses and "minting" in statuses, statuses
    assert arrivals[0][0] < arrivals[-1][0] <= ended, arrivals


@pytest.mark.regtest
def test_purchases_at_once_are_minted_by_the_vaults_operators_each_lane_leased_to_one_worker(
        scaled_network: Network) -> None:
    """Which account sent each mint is read from the devnet's transaction; which worker leased which lane from the
    workers' own logs (a lane idle for a while is given back, so over a run one lane may pass between workers)."""
    assert scaled_network.devnet is not None
    operators = {int(account["address"], 16) for account in [scaled_network.operator, *scaled_network.lane_operators]}
    buyers = [Buyer(scaled_network.service_url, scaled_network.payer.client()) for _ in range(6)]
    try:
        with ThreadPoolExecutor(max_workers=6) as pool:
            purchases = list(pool.map(lambda buyer: buyer.buy(scaled_network.users[2]["address"], "2.00"), buyers))
    finally:
        for buyer in buyers:
            buyer.close()
    senders = set()
    for purchase in purchases:
        assert purchase.order["status"] == "completed", purchase.order
        transaction = scaled_network.devnet.rpc("starknet_getTransactionByHash",
                                                {"transaction_hash": purchase.order["mint_tx_hash"]})
        senders.add(int(transaction["sender_address"], 16))
    assert senders <= operators, f"a mint from an account that is no lane: {senders - operators}"
    leased = {int(account, 16) for worker in scaled_network.workers
              for account in re.findall(r"mint lane (0x[0-9a-f]+) leased by worker", worker.log_path.read_text())}
    assert senders <= leased, f"mints from lanes no worker said it leased: {senders - leased}"


@pytest.mark.regtest
def test_the_worker_stops_cleanly_and_comes_back(scaled_network: Network) -> None:
    worker = scaled_network.workers[0]
    worker.stop()
    assert worker.exit_code == -signal.SIGTERM  # Python's default action on SIGTERM, like `python -m service`
    worker.start()  # ready again once its log says so, in this run's lines
    assert worker.is_running()


@pytest.mark.regtest
def test_requests_through_nginx_survive_a_sigkilled_api_instance(scaled_network: Network, buyer: Buyer) -> None:
    assert scaled_network.nginx is not None
    dead, alive = scaled_network.api_services
    dead.kill()
    assert dead.exit_code == -signal.SIGKILL
    log_lines = len(scaled_network.nginx.access_log.read_text().splitlines())

    healths = [httpx.get(f"{scaled_network.service_url}/api/v1/health", timeout=10).status_code for _ in range(10)]
    purchase = buyer.create_order(scaled_network.users[2]["address"], "2.00")
    fetched = buyer.get(purchase.order_id)

    assert healths == [200] * 10
    assert fetched["order_id"] == purchase.order_id and fetched["status"] == "awaiting_payment"
    answered_by = upstreams_in_access_log(scaled_network, log_lines)
    assert answered_by and all(upstream.endswith(f"127.0.0.1:{alive.port}") for upstream in answered_by), \
        f"only the live instance answered (a refused try on the dead one is listed first): {answered_by}"

    dead.start()  # back on its port: nginx tries it again once its fail_timeout has passed
    wait_until(lambda: httpx.get(f"{scaled_network.service_url}/api/v1/health", timeout=10).status_code == 200 and
               f"127.0.0.1:{dead.port}" in upstreams_in_access_log(scaled_network, log_lines)[-1],
               timeout=30, what=f"nginx to pass requests to the restarted {dead.name} again", interval=0.5)


class ReconnectingStream(threading.Thread):
    """Follows an order's events the way the checkout page's EventSource does: when the connection drops, it
    connects again (through nginx, to whichever instance is alive) after a short wait, and carries on."""

    def __init__(self, url: str) -> None:
        super().__init__(name="event-stream", daemon=True)
        self.url, self.connections, self.drops = url, 0, 0
        self.statuses: list[str] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            try:
                self.connections += 1
                with httpx.stream("GET", self.url, timeout=httpx.Timeout(10, read=SILENCE_LIMIT_S)) as response:
                    for line in response.iter_lines():
                        if line.startswith("data: "):
                            self.statuses.append(json.loads(line.removeprefix("data: "))["status"])
                            if self.statuses[-1] in FINAL_STATUSES:
                                self.done.set()
                                return
            except httpx.HTTPError:
                pass
            self.drops += 1
            self.done.wait(0.5)  # EventSource's retry


@pytest.mark.regtest
def test_a_checkout_stream_carries_on_through_nginx_after_the_instance_serving_it_dies(
        scaled_network: Network, buyer: Buyer) -> None:
    """Each API instance is SIGKILLed in turn while a page follows its order: the stream served by the dead one
    drops (counted: the fault must fire), the page connects again through nginx, and the events of the payment
    that follows all arrive."""
    purchase = buyer.create_order(scaled_network.users[1]["address"], "3.00")
    stream = ReconnectingStream(f"{scaled_network.service_url}/api/v1/orders/{purchase.order_id}/events")
    stream.start()
    try:
        wait_until(lambda: stream.statuses, timeout=FIRST_EVENT_WITHIN_S, what="the stream's first event")
        for api in scaled_network.api_services:
            api.kill()
            assert not api.is_running()
            api.restart()
        wait_until(lambda: stream.connections >= 2, timeout=30, what="the page to connect again")
        buyer.pay(purchase)
        stream.join(timeout=120)
    finally:
        stream.done.set()
    assert stream.drops >= 1, "no stream was cut: the kill did not reach the instance serving it"
    assert stream.statuses[0] == "awaiting_payment" and stream.statuses[-1] == "completed", stream.statuses


@pytest.mark.regtest
def test_random_sigkills_of_api_instances_and_workers_leave_every_order_sound(scaled_network: Network) -> None:
    """The scaled-out chaos run, short (VOLTA_CHAOS_SECONDS; `make chaos` runs 3 minutes with 3 of each): buyers
    go through nginx while one API instance or worker at a time is SIGKILLed and restarted; every order is then
    judged from lnd and the vault. Last in this module: it restarts every kind of process."""
    report = run_chaos(scaled_network, CHAOS_SECONDS, kill_every_s=(2.0, 6.0))
    print(report.summary())
    assert report.kills >= 3, "the chaos run must actually kill processes"
    assert any(name.startswith("api") for name in report.killed), f"no API instance was killed: {report.killed}"
    assert any(name.startswith("worker") for name in report.killed), f"no worker was killed: {report.killed}"
    assert report.orders, "no purchase was attempted"
    assert report.violations == [], report.violations
    assert report.sound, report.summary()
