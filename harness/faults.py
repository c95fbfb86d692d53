"""Faults between the service and its dependencies: toxiproxy as a harness process, and a small client
for its REST API (https://github.com/Shopify/toxiproxy#http-api).

Every proxy listens on 127.0.0.1 and forwards to a loopback upstream: the client refuses anything else.
A test proves a fault fired from two counters toxiproxy keeps itself: connections accepted per proxy
(its log says "Accepted client" at each accept) and bytes per proxy and direction (its Prometheus
metrics, which toxiproxy adds to only when a connection closes, one direction at a time).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx
from prometheus_client.parser import text_string_to_metric_families

from harness.process import ManagedProcess
from harness.util import Timeouts, free_port

Stream = Literal["upstream", "downstream"]
# What toxiproxy's server logs at each accepted connection (proxy.go), with the proxy's name.
_ACCEPTED = "Accepted client"


class FaultError(RuntimeError):
    pass


@dataclass(frozen=True)
class Toxic:
    name: str
    type: str
    stream: Stream
    attributes: dict[str, Any]
    toxicity: float = 1.0

    @classmethod
    def from_api(cls, body: dict[str, Any]) -> Toxic:
        return cls(body["name"], body["type"], body["stream"], dict(body.get("attributes") or {}),
                   float(body.get("toxicity", 1.0)))


@dataclass(frozen=True)
class Proxy:
    name: str
    listen: str  # "127.0.0.1:PORT", where clients connect
    upstream: str  # "127.0.0.1:PORT", where toxiproxy forwards to
    enabled: bool
    toxics: list[Toxic] = field(default_factory=list)

    @classmethod
    def from_api(cls, body: dict[str, Any]) -> Proxy:
        return cls(body["name"], body["listen"], body["upstream"], bool(body["enabled"]),
                   [Toxic.from_api(toxic) for toxic in body.get("toxics") or []])

    def url(self, scheme: str = "http", path: str = "") -> str:
        """The address a client uses instead of the upstream's: same scheme and path, the proxy's port."""
        return f"{scheme}://{self.listen}{path}"

    def state(self) -> dict[str, str]:
        return {"listen": self.listen, "upstream": self.upstream}


@dataclass(frozen=True)
class Traffic:
    """Bytes through one proxy, from toxiproxy's counters (each counted when its connection closes).

    `received_upstream`: client -> toxiproxy; `sent_upstream`: toxiproxy -> server;
    `received_downstream`: server -> toxiproxy; `sent_downstream`: toxiproxy -> client.
    """

    received_upstream: int = 0
    sent_upstream: int = 0
    received_downstream: int = 0
    sent_downstream: int = 0

    def __sub__(self, earlier: Traffic) -> Traffic:
        return Traffic(*(now - then for now, then in zip(vars(self).values(), vars(earlier).values(), strict=True)))

    @property
    def total(self) -> int:
        return sum(vars(self).values())


def loopback_address(address: str) -> str:
    """`address` ("HOST:PORT") if HOST is a loopback IP; anything else is refused, not proxied."""
    host, _, port = address.rpartition(":")
    try:
        is_loopback = ipaddress.ip_address(host).is_loopback and port.isdigit()
    except ValueError:
        is_loopback = False
    if not is_loopback:
        raise FaultError(f"{address!r} is not a loopback HOST:PORT; the fault proxy only joins local processes")
    return address


class Toxiproxy(ManagedProcess):
    """toxiproxy-server with its API on 127.0.0.1:<free port> and per-proxy byte counters switched on."""

    CLEAN_STOP_EXIT_CODES = frozenset({0})  # toxiproxy catches SIGTERM and exits 0 (measured, v2.12.0)

    def __init__(self, binary: Path, workdir: Path, name: str = "toxiproxy") -> None:
        super().__init__(name, workdir)
        self.binary = binary
        self.port = free_port()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        # --proxy-metrics turns on toxiproxy_proxy_{received,sent}_bytes_total at /metrics.
        return [str(self.binary), "-host", "127.0.0.1", "-port", str(self.port), "-proxy-metrics"]

    def environment(self) -> dict[str, str]:
        # Unset, toxiproxy logs at trace level (several lines per chunk of data); "Accepted client",
        # which `FaultClient.connections` counts, is at info.
        return {**os.environ, "LOG_LEVEL": "info"}

    def wait_ready(self, *, timeout: float = Timeouts.PROCESS_START) -> None:
        self.wait_answering(lambda: httpx.get(f"{self.api_url}/version", timeout=2).status_code == 200,
                            f"{self.api_url}/version", transient=(httpx.TransportError,), timeout=timeout)

    def client(self) -> FaultClient:
        return FaultClient(self.api_url, self.log_path)

    def state(self, proxies: dict[str, Proxy]) -> dict[str, Any]:
        """The `faults` entry of state.json."""
        return {"api_url": self.api_url, "log": str(self.log_path),
                "proxies": {name: proxy.state() for name, proxy in proxies.items()}}


class FaultClient:
    """Toxiproxy's REST API, with one named helper per fault the tests inject."""

    def __init__(self, api_url: str, log_path: Path | None = None) -> None:
        self.api_url = api_url
        self.log_path = log_path
        self._http = httpx.Client(base_url=api_url, timeout=Timeouts.RPC)

    @classmethod
    def from_state(cls, faults: dict[str, Any]) -> FaultClient:
        return cls(faults["api_url"], Path(faults["log"]) if faults.get("log") else None)

    def close(self) -> None:
        self._http.close()

    # -- proxies -----------------------------------------------------------------------------------------

    def create_proxy(self, name: str, upstream: str, listen: str | None = None) -> Proxy:
        body = {"name": name, "upstream": loopback_address(upstream),
                "listen": loopback_address(listen or f"127.0.0.1:{free_port()}"), "enabled": True}
        return Proxy.from_api(self._call("POST", "/proxies", body))

    def proxies(self) -> dict[str, Proxy]:
        return {name: Proxy.from_api(body) for name, body in self._call("GET", "/proxies").items()}

    def proxy(self, name: str) -> Proxy:
        return Proxy.from_api(self._call("GET", f"/proxies/{name}"))

    def cut(self, proxy: str) -> Proxy:
        """Disable the proxy: it stops listening and drops its open connections (connection refused)."""
        return Proxy.from_api(self._call("PATCH", f"/proxies/{proxy}", {"enabled": False}))

    def restore(self, proxy: str) -> Proxy:
        return Proxy.from_api(self._call("PATCH", f"/proxies/{proxy}", {"enabled": True}))

    # -- toxics ------------------------------------------------------------------------------------------

    def add_toxic(self, proxy: str, kind: str, attributes: dict[str, Any], stream: Stream = "downstream",
                  name: str | None = None, toxicity: float = 1.0) -> Toxic:
        body = {"name": name or f"{kind}_{stream}", "type": kind, "stream": stream, "toxicity": toxicity,
                "attributes": attributes}
        return Toxic.from_api(self._call("POST", f"/proxies/{proxy}/toxics", body))

    def remove_toxic(self, proxy: str, toxic: str) -> None:
        self._call("DELETE", f"/proxies/{proxy}/toxics/{toxic}")

    # `stream` says which way the fault acts: "upstream" on the client's request (it never reaches the
    # server), "downstream" on the server's answer (the request has had its effect; the client never
    # learns of it). The second is the one that loses a sent transaction's receipt.

    def latency(self, proxy: str, ms: int, jitter_ms: int = 0, stream: Stream = "downstream") -> Toxic:
        """Delay every chunk of data by `ms` (± `jitter_ms`)."""
        return self.add_toxic(proxy, "latency", {"latency": ms, "jitter": jitter_ms}, stream)

    def stall(self, proxy: str, stream: Stream = "downstream") -> Toxic:
        """Hold all data and never close the connection (the `timeout` toxic with timeout 0); new
        connections are still accepted and held too. The connection ends only when the upstream closes it
        or the client gives up."""
        return self.add_toxic(proxy, "timeout", {"timeout": 0}, stream)

    def reset(self, proxy: str, after_ms: int = 0, stream: Stream = "downstream") -> Toxic:
        """Reset the connection (TCP RST) on its first data, `after_ms` later (the `reset_peer` toxic)."""
        return self.add_toxic(proxy, "reset_peer", {"timeout": after_ms}, stream)

    def clear(self, proxy: str | None = None) -> list[Toxic]:
        """Remove every toxic of `proxy` (of every proxy when None) and re-enable it; returns what was removed."""
        names = [proxy] if proxy else list(self.proxies())
        removed: list[Toxic] = []
        for name in names:
            for toxic in self.proxy(name).toxics:
                self.remove_toxic(name, toxic.name)
                removed.append(toxic)
            self.restore(name)
        return removed

    @contextlib.contextmanager
    def fault(self, proxy: str, kind: str, attributes: dict[str, Any] | None = None,
              stream: Stream = "downstream") -> Iterator[Toxic]:
        """One toxic for the length of a `with` block, removed even when the block raises."""
        toxic = self.add_toxic(proxy, kind, attributes or {}, stream)
        try:
            yield toxic
        finally:
            self.remove_toxic(proxy, toxic.name)

    @contextlib.contextmanager
    def outage(self, proxy: str) -> Iterator[Proxy]:
        """The proxy cut for the length of a `with` block, restored even when the block raises."""
        try:
            yield self.cut(proxy)
        finally:
            self.restore(proxy)

    # -- evidence ----------------------------------------------------------------------------------------

    def traffic(self, proxy: str) -> Traffic:
        """Bytes through `proxy` so far (connections still open are not counted yet)."""
        counters: dict[str, int] = {}
        text = self._http.get("/metrics").raise_for_status().text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.labels.get("proxy") != proxy or not sample.name.endswith("_bytes_total"):
                    continue
                kind = "received" if "received" in sample.name else "sent"
                counters[f"{kind}_{sample.labels['direction']}"] = int(sample.value)
        return Traffic(**counters)

    def connections(self, proxy: str) -> int:
        """Connections `proxy` has accepted so far, counted from toxiproxy's own log at each accept."""
        if self.log_path is None:
            raise FaultError("connections are counted from toxiproxy's log; this client was given none")
        count = 0
        for line in self.log_path.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                count += entry.get("message") == _ACCEPTED and entry.get("name") == proxy
        return count

    # -- plumbing ----------------------------------------------------------------------------------------

    def _call(self, method: str, route: str, body: dict[str, Any] | None = None) -> Any:
        try:
            response = self._http.request(method, route, json=body)
        except httpx.TransportError as exc:
            raise FaultError(f"toxiproxy at {self.api_url} unreachable ({exc!r}); is the network up with faults?")\
                from exc
        if response.status_code >= 400:
            raise FaultError(f"toxiproxy {method} {route}: HTTP {response.status_code} {response.text.strip()}")
        return response.json() if response.content else None
