"""Nostr Wallet Connect for the browser tests: a Nostr relay as a harness process (nostr-relay, PyPI, on
127.0.0.1 with its own config and SQLite file in its directory) and an NWC wallet service (NIP-47) backed by
an lnd node, as a phone wallet that speaks NWC would be.

The wallet service listens on the relay for kind 23194 requests addressed to its key from the one client key
of its connection string, decrypts them (NIP-44 v2, or NIP-04 for older clients: the request's `encryption`
tag says which), runs `pay_invoice`, `get_info` and `get_balance` on the lnd node, and publishes kind 23195
responses encrypted the same way. Its kind 13194 info event lists those methods and both encryptions, so
@getalby/sdk's client (Bitcoin Connect) picks NIP-44 (sdk 8.0.3, `_findPreferredEncryptionType`).
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import threading
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from nostr_sdk import (
    Client,
    Event,
    EventBuilder,
    Filter,
    Keys,
    Kind,
    PublicKey,
    RelayUrl,
    ReqTarget,
    Tag,
    Timestamp,
)

from harness.lnd_client import HarnessLndClient
from harness.process import ManagedProcess, ProcessError
from harness.util import Timeouts, free_port

INFO_KIND = 13194
REQUEST_KIND = 23194
RESPONSE_KIND = 23195
ENCRYPTIONS = ("nip44_v2", "nip04")  # preferred first, as NIP-47's `encryption` tag lists them
METHODS = ("pay_invoice", "get_info", "get_balance")


class NostrRelay(ManagedProcess):
    """nostr-relay (Python, ASGI under uvicorn: one process, no gunicorn workers to chase) on 127.0.0.1."""

    # uvicorn catches SIGTERM, shuts the app down cleanly, then raises the signal again (measured, uvicorn 0.3x).
    CLEAN_STOP_EXIT_CODES = frozenset({-signal.SIGTERM})

    def __init__(self, workdir: Path, name: str = "nostr-relay") -> None:
        super().__init__(name, workdir)
        self.port = free_port()
        self.binary = Path(sys.executable).parent / "nostr-relay"  # the console script of the same venv
        if not self.binary.exists():
            raise FileNotFoundError(f"{self.binary} is missing: pip install nostr-relay (the project's dev extra)")

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.workdir / "relay.yaml"

    def config(self) -> dict[str, Any]:
        """Everything in the run directory; the relay's own defaults otherwise (signature and age checks on)."""
        return {
            "DEBUG": False,
            "relay_name": "volta-test-relay",
            "storage": {
                "sqlalchemy.url": f"sqlite+aiosqlite:///{self.workdir / 'relay.sqlite3'}",
                "validators": ["nostr_relay.validators.is_not_too_large", "nostr_relay.validators.is_signed",
                               "nostr_relay.validators.is_recent"],
            },
            "gunicorn": {"bind": f"127.0.0.1:{self.port}", "host": "127.0.0.1", "workers": 1, "loglevel": "info"},
            "authentication": {"enabled": False},
            "verification": {"nip05_verification": "disabled"},
        }

    def command(self) -> list[str]:
        return [str(self.binary), "-c", str(self.config_path), "serve", "--use-uvicorn"]

    def spawn(self) -> None:
        self.config_path.write_text(json.dumps(self.config(), indent=2))  # JSON is YAML: no yaml writer needed
        super().spawn()

    def wait_ready(self, *, timeout: float = Timeouts.PROCESS_START) -> None:
        self.wait_answering(self._answers_nip11, f"its NIP-11 document on 127.0.0.1:{self.port}",
                            transient=(httpx.TransportError,), timeout=timeout)

    def _answers_nip11(self) -> bool:
        response = httpx.get(f"http://127.0.0.1:{self.port}/", headers={"Accept": "application/nostr+json"},
                             timeout=5)
        return response.status_code == 200 and "supported_nips" in response.json()


@dataclass
class HandledRequest:
    """One NIP-47 request the wallet service answered: what was asked, how, and what it said."""

    method: str
    encryption: str
    params: dict[str, Any]
    result: dict[str, Any] | None = None
    error: dict[str, str] | None = None


@dataclass
class NwcWalletService:
    """A NIP-47 wallet service on one relay, paying with one lnd node; runs on an event loop of its own thread.

    `start()` returns once its info event is on the relay and it listens; `stop()` ends the thread."""

    relay_url: str
    lnd: HarnessLndClient
    name: str = "nwc-wallet"
    wallet_keys: Keys = field(default_factory=Keys.generate)
    client_keys: Keys = field(default_factory=Keys.generate)  # the connection string's secret
    handled: list[HandledRequest] = field(default_factory=list)
    # The next this many pay_invoice requests are refused, as when the wallet's owner taps "decline": nothing
    # reaches lnd, and the answer is NIP-47's error (code OTHER, "declined by the wallet's owner").
    refuse_payments: int = 0
    problems: list[str] = field(default_factory=list)  # requests it could not read or answer

    def __post_init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None

    @property
    def connection_uri(self) -> str:
        """What a wallet shows as a QR code or text for the app to paste: NIP-47's connection URI."""
        return (f"nostr+walletconnect://{self.wallet_keys.public_key().to_hex()}"
                f"?relay={quote(self.relay_url, safe='')}&secret={self.client_keys.secret_key().to_hex()}")

    def start(self, timeout: float = Timeouts.PROCESS_START) -> None:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout) or self._failure is not None:
            self.stop()
            raise ProcessError(f"[{self.name}] did not start listening on {self.relay_url} within {timeout:.0f}s: "
                               f"{self._failure!r}")

    def stop(self, timeout: float = Timeouts.PROCESS_STOP) -> None:
        if self._loop is not None and self._stopping is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise ProcessError(f"[{self.name}] still running {timeout:.0f}s after it was asked to stop")

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # kept for start() and the tests: the thread has no one else to tell
            self._failure = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        client = Client()
        await client.add_relay(RelayUrl.parse(self.relay_url))
        await client.connect(timedelta(seconds=Timeouts.RPC))
        try:
            await self._publish(client, EventBuilder(Kind(INFO_KIND), " ".join(METHODS)).tags(
                [Tag.parse(["encryption", " ".join(ENCRYPTIONS)]), Tag.parse(["notifications", ""])]))
            requests = (Filter().kind(Kind(REQUEST_KIND)).pubkey(self.wallet_keys.public_key())
                        .author(self.client_keys.public_key()).since(Timestamp.now()))
            await client.subscribe(ReqTarget.auto([requests]))
            notifications = client.notifications()
            self._ready.set()
            await self._answer_until_stopped(client, notifications)
        finally:
            await client.shutdown()

    async def _answer_until_stopped(self, client: Client, notifications: Any) -> None:
        assert self._stopping is not None
        stopping = asyncio.ensure_future(self._stopping.wait())
        while not self._stopping.is_set():
            arrival = asyncio.ensure_future(notifications.next())
            done, _ = await asyncio.wait({arrival, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if arrival not in done:
                arrival.cancel()
                break
            notification = arrival.result()
            if notification is None or notification.is_shutdown():
                break
            if notification.is_new_event():
                event = notification.event  # type: ignore[attr-defined]
                if event.kind().as_u16() == REQUEST_KIND:
                    await self._answer_one(client, event)

    async def _answer_one(self, client: Client, request: Event) -> None:
        """Answer one request; one that cannot be read or answered is recorded (`problems`, for the tests to
        see) instead of ending the service for every later request."""
        try:
            await self._answer(client, request)
        except Exception as exc:  # recorded with the event, not hidden: tests assert `problems` is empty
            self.problems.append(f"request {request.id().to_hex()}: {exc!r}")

    async def _answer(self, client: Client, request: Event) -> None:
        encryption = _tag_value(request, "encryption") or "nip04"  # no tag: NIP-47's original NIP-04
        client_key = request.author()
        plain = self._decrypt(encryption, client_key, request.content())
        command = json.loads(plain)
        handled = HandledRequest(method=str(command.get("method")), encryption=encryption,
                                 params=dict(command.get("params") or {}))
        self.handled.append(handled)
        try:
            handled.result = await asyncio.to_thread(self._execute, handled.method, handled.params)
        except NwcError as exc:
            handled.error = {"code": exc.code, "message": exc.message}
        reply: dict[str, Any] = {"result_type": handled.method}
        reply.update({"result": handled.result} if handled.error is None else {"error": handled.error})
        content = self._encrypt(encryption, client_key, json.dumps(reply))
        await self._publish(client, EventBuilder(Kind(RESPONSE_KIND), content).tags(
            [Tag.public_key(client_key), Tag.event(request.id())]))

    def _execute(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """One NIP-47 method on the lnd node (blocking: run in a worker thread)."""
        if method == "pay_invoice":
            return self._pay_invoice(str(params.get("invoice", "")))
        if method == "get_info":
            info = self.lnd.get_info()
            return {"alias": info.get("alias", ""), "color": info.get("color", ""),
                    "pubkey": info.get("identity_pubkey", ""), "network": "regtest",
                    "block_height": int(info.get("block_height", 0)), "block_hash": info.get("block_hash", ""),
                    "methods": list(METHODS), "notifications": []}
        if method == "get_balance":
            return {"balance": self.lnd.channel_balance()["local_msat"]}
        raise NwcError("NOT_IMPLEMENTED", f"{method} is not offered by this wallet")

    def _pay_invoice(self, bolt11: str) -> dict[str, Any]:
        if not bolt11:
            raise NwcError("OTHER", "pay_invoice needs an invoice")
        if self.refuse_payments > 0:
            self.refuse_payments -= 1
            raise NwcError("OTHER", "declined by the wallet's owner")
        payment = self.lnd.pay(bolt11, int(Timeouts.PAYMENT))
        if payment.get("status") != "SUCCEEDED":
            raise NwcError("PAYMENT_FAILED", f"lnd: {payment.get('failure_reason') or payment.get('status')}")
        return {"preimage": payment["payment_preimage"], "fees_paid": int(payment.get("fee_msat", 0))}

    def _decrypt(self, encryption: str, sender: PublicKey, payload: str) -> str:
        if encryption == "nip44_v2":
            return self.wallet_keys.nip44_decrypt(sender, payload)
        return self.wallet_keys.nip04_decrypt(sender, payload)

    def _encrypt(self, encryption: str, recipient: PublicKey, content: str) -> str:
        if encryption == "nip44_v2":
            return self.wallet_keys.nip44_encrypt(recipient, content)
        return self.wallet_keys.nip04_encrypt(recipient, content)

    async def _publish(self, client: Client, builder: EventBuilder) -> None:
        output = await client.send_event(builder.finalize(self.wallet_keys))
        if not output.success:
            raise ProcessError(f"[{self.name}] the relay refused an event: {output.failed}")

    def methods_asked(self) -> list[str]:
        return [request.method for request in self.handled]


class NwcError(Exception):
    """A NIP-47 error response: one of the spec's codes and a message for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def _tag_value(event: Event, name: str) -> str | None:
    for tag in event.tags():
        values = tag.to_vec()
        if len(values) >= 2 and values[0] == name:
            return values[1]
    return None
