"""A merchant's webhook endpoints on loopback for tests: records every POST and answers with a status of the
test's choosing (always 200, by path, or failing the first tries)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# The status to answer, given the request's path and how many POSTs the receiver had seen before it.
Answer = Callable[[str, int], int]


def always_ok(path: str, seen_before: int) -> int:
    return 200


@dataclass(frozen=True)
class Post:
    """One webhook as the receiver got it, and the status it answered."""

    path: str
    headers: dict[str, str]
    body: bytes
    status: int


class WebhookReceiver(ThreadingHTTPServer):
    def __init__(self, answer: Answer = always_ok) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.answer = answer
        self.seen: list[Post] = []
        # One request at a time between counting and recording, so "the first two fail" means exactly two.
        self.recording = threading.Lock()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"

    def posts(self, path: str, delivery_id: str) -> int:
        """How many times the delivery reached `path` (retries included)."""
        return sum(1 for post in self.seen if post.path == path and post.headers.get("Volta-Delivery") == delivery_id)


class _Handler(BaseHTTPRequestHandler):
    server: WebhookReceiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with self.server.recording:
            status = self.server.answer(self.path, len(self.server.seen))
            self.server.seen.append(Post(self.path, dict(self.headers), body, status))
        self.send_response(status)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def webhook_receiver(answer: Answer = always_ok) -> Iterator[WebhookReceiver]:
    """A receiver serving on its own thread until the block ends."""
    receiver = WebhookReceiver(answer)
    threading.Thread(target=receiver.serve_forever, name="webhook-receiver", daemon=True).start()
    try:
        yield receiver
    finally:
        receiver.shutdown()
        receiver.server_close()
