"""GET /api/v1/rate, /health and /balance under a flood, against the running service; and the reads of an order
(itself, its QR code, its live events, its buyer's history), limited the same way.

Calls to the devnet are counted from outside: the service is restarted with its Starknet RPC pointed at a
counting proxy on loopback in front of the devnet. A flood of /rate asks the oracle about once per 2 s, a flood
of /health asks the devnet about once a second, and one client flooding gets 429 with the JSON error body while
another client is still answered.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from harness.network import Network
from harness.service_process import VoltaService
from tests.service.history_signing import bearer, history_session

pytestmark = pytest.mark.regtest

RATE_SHARED_S = 2.0  # what the README promises for /api/v1/rate
HEALTH_SHARED_S = 1.0


class CountingRpcProxy(ThreadingHTTPServer):
    """The devnet's JSON-RPC on another loopback port; counts each method, and calls to the oracle apart."""

    def __init__(self, upstream: str, oracle_address: int) -> None:
        super().__init__(("127.0.0.1", 0), CountingHandler)
        self.upstream, self.oracle_address = upstream, oracle_address
        self.counts: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.http = httpx.Client(timeout=30)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/rpc"

    def count(self, request: dict[str, Any]) -> None:
        name = str(request.get("method"))
        params = request.get("params")
        call = (params.get("request") if isinstance(params, dict) else params[0] if params else None) or {}
        if name == "starknet_call" and int(str(call.get("contract_address", "0x0")), 16) == self.oracle_address:
            name = "oracle"
        with self.lock:
            self.counts[name] += 1

    def reset(self) -> None:
        with self.lock:
            self.counts.clear()


class CountingHandler(BaseHTTPRequestHandler):
    server: CountingRpcProxy

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        parsed = json.loads(body)
        for request in parsed if isinstance(parsed, list) else [parsed]:
            self.server.count(request)
        answer = self.server.http.post(self.server.upstream, content=body,
                                       headers={"Content-Type": "application/json"})
        self.send_response(answer.status_code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer.content)))
        self.end_headers()
        self.wfile.write(answer.content)

    def log_message(self, *args: Any) -> None:
        pass


READS_PER_IP = 30  # a minute, set for this module: a flood from one address is refused whatever its pace


@pytest.fixture(scope="module")
def counted(network: Network) -> Iterator[tuple[VoltaService, CountingRpcProxy]]:
    """The service reaching the devnet through the counting proxy, reads limited to READS_PER_IP a minute."""
    assert network.service is not None and network.contracts is not None and network.devnet is not None
    proxy = CountingRpcProxy(network.devnet.rpc_url, network.contracts.oracle)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    network.service.restart({"VOLTA_STARKNET_RPC_URL": proxy.url,
                             "VOLTA_RATE_LIMIT_READS_PER_IP": f"{READS_PER_IP}/minute"})
    yield network.service, proxy
    network.service.restart()
    proxy.shutdown()
    proxy.http.close()


def flood(url: str, clients: list[str], requests_each: int,
          headers: dict[str, str] | None = None) -> list[httpx.Response]:
    """Each client (a loopback address) asks `url` `requests_each` times back to back, all clients at once."""
    def client(local_address: str) -> list[httpx.Response]:
        with httpx.Client(transport=httpx.HTTPTransport(local_address=local_address), timeout=30,
                          headers=headers) as http:
            return [http.get(url) for _ in range(requests_each)]

    with ThreadPoolExecutor(len(clients)) as pool:
        return [response for responses in pool.map(client, clients) for response in responses]


def loopback_clients(count: int) -> list[str]:
    """127.0.0.2, 127.0.0.3, …: the service on 127.0.0.1 sees each as another client."""
    return [f"127.0.0.{2 + i}" for i in range(count)]


@pytest.mark.parametrize("path", ["/api/v1/rate", "/api/v1/health", "/api/v1/balance?starknet_address=0x1"])
def test_one_client_flooding_gets_429_with_the_json_error_and_others_still_get_answers(
    counted: tuple[VoltaService, CountingRpcProxy], path: str,
) -> None:
    service, _ = counted
    responses = flood(service.url + path, ["127.0.0.1"] * 8, requests_each=READS_PER_IP // 4 + 2)
    assert_flood_refused(responses, answered={200, 503})
    with httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.250"), timeout=30) as other:
        assert other.get(service.url + path).status_code in (200, 503), "another client is not limited"


def assert_flood_refused(responses: list[httpx.Response], answered: set[int]) -> None:
    """All but READS_PER_IP of one client's flood are refused with 429 and the JSON error body."""
    statuses = Counter(response.status_code for response in responses)
    limited = [response for response in responses if response.status_code == 429]
    assert len(limited) >= len(responses) - READS_PER_IP and set(statuses) <= {*answered, 429}, statuses
    for response in limited:
        body = response.json()
        assert set(body) == {"error", "message", "hint"} and body["hint"], body
        assert int(response.headers["Retry-After"]) >= 0


@pytest.fixture(scope="module")
def bought(counted: tuple[VoltaService, CountingRpcProxy], network: Network) -> tuple[dict[str, Any], str]:
    """An order for the network's first account, and a history session proving that account."""
    service, _ = counted
    account = network.users[0]
    with httpx.Client(base_url=service.url, timeout=30) as http:
        order = http.post("/api/v1/orders", json={"starknet_address": account["address"], "vusd_amount": "2.00"})
        assert order.status_code == 201, order.text
        return order.json(), history_session(http, account)


ORDER_READS = {  # a read of the order (or its buyer's history), and what a client within the limit is answered
    "order": ("/api/v1/orders/{order_id}", 200),
    "qr-code": ("/api/v1/orders/{order_id}/qr.svg", 200),
    "events": ("/api/v1/orders/ord_none/events", 404),  # an open order's stream would stay open: no such order
    "history": ("/api/v1/orders?starknet_address={starknet_address}", 200),
}


@pytest.mark.parametrize(("path", "answered"), ORDER_READS.values(), ids=ORDER_READS.keys())
def test_one_client_flooding_an_orders_reads_gets_429_and_others_are_still_answered(
    counted: tuple[VoltaService, CountingRpcProxy], bought: tuple[dict[str, Any], str], path: str, answered: int,
) -> None:
    service, _ = counted
    order, session = bought
    url = service.url + path.format(**order)
    responses = flood(url, ["127.0.0.1"] * 8, requests_each=READS_PER_IP // 4 + 2, headers=bearer(session))
    assert_flood_refused(responses, answered={answered})
    with httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.250"), timeout=30,
                      headers=bearer(session)) as other:
        assert other.get(url).status_code == answered, "another client is not limited"


@pytest.mark.parametrize(("path", "method", "shared_s"), [("/api/v1/rate", "oracle", RATE_SHARED_S),
                                                          ("/api/v1/health", "starknet_blockNumber", HEALTH_SHARED_S)],
                         ids=["rate-asks-the-oracle", "health-asks-the-devnet"])
def test_a_flood_of_requests_makes_about_one_call_per_period(
    counted: tuple[VoltaService, CountingRpcProxy], path: str, method: str, shared_s: float,
) -> None:
    service, proxy = counted
    time.sleep(shared_s)  # an answer shared from before has gone stale
    proxy.reset()
    started = time.monotonic()
    responses = flood(service.url + path, loopback_clients(24), requests_each=READS_PER_IP - 5)
    periods = (time.monotonic() - started) / shared_s
    print(f"{len(responses)} requests for {path} in {periods * shared_s:.1f} s: {proxy.counts[method]} {method} calls")
    assert {r.status_code for r in responses} == {200}, Counter(r.status_code for r in responses)
    assert 1 <= proxy.counts[method] <= math.ceil(periods) + 1, (dict(proxy.counts), len(responses), periods)
