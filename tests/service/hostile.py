"""Hostile HTTP requests as Hypothesis strategies, and a sender that gets them onto the wire as they are.

A request is built from labelled parts (where it goes, a query, headers, a body), so a finding can say which
part was hostile ("body:deep-arrays-100000 header:Volta-Signature:huge-timestamp") and show a short reproduction.
The values are the ones that break parsers: JSON nested 100,000 levels deep, integers of 400 digits, NaN and
Infinity tokens, lone surrogates escaped in JSON, invalid UTF-8, bodies of several megabytes, wrong content types,
non-ASCII, control-character and over-long header values. What httpx (h11) refuses to send, control characters
in a header or raw bytes in the request line, goes over a bare socket.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote

import httpx
from hypothesis import strategies as st

MB = 1_000_000
BODY_BOUND = 64 * 1024  # service.api.bodies.MAX_BODY_BYTES: one byte more must be a 413

HUGE_NUMBERS = [10**400, -(10**400), 2**256, 2**64, -(2**63) - 1, 2**251, 21_000_000 * 10**8 + 1]
# Written into the JSON text as they are: Python's decoder takes NaN and Infinity, and 1e400 overflows to inf.
NUMBER_TOKENS = ["1e308", "-1e308", "1e400", "5e-324", "NaN", "Infinity", "-Infinity", "-0", "0.1e1", "1" * 5000]
TRICKY_TEXT = [
    "", " ", "\x00", "\u202e", "\ufeff", "\ud800", "\udfff", "\ud83d", "é" * 1000, "🙂" * 50,
    "NaN", "Infinity", "1e308", "-0.00", "25.00\x00", "25,00",
    "\u0662\u0665.\u0660\u0660", "\uff12\uff15.\uff10\uff10",  # 25.00 in Arabic-Indic and fullwidth digits
    "0x" + "f" * 64, "0x" + "1" * 65, "0x0", " 0x1 ", "0x1\n", "\uff10\uff58\uff11", "0x_1", "-0x1",
    "ord_" + "a" * 10_000, "../../etc/passwd", "%00", "<script>alert(1)</script>", "'; DROP TABLE orders; --",
]
ORDER_FIELDS = ["starknet_address", "vusd_amount", "amount_sat", "max_slippage_bps"]
OTHER_FIELDS = ["payment_hash", "challenge", "signature", "__proto__", "", "é", "a" * 300]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # with {placeholders}
    query: tuple[str, ...] = ()  # the query parameters it requires

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}" + ("?" + "&".join(f"{name}=" for name in self.query) if self.query else "")


def endpoints(document: dict[str, Any]) -> list[Endpoint]:
    """Every operation of an OpenAPI document, so an endpoint added to it is fuzzed too."""
    return [Endpoint(method.upper(), path, tuple(parameter["name"] for parameter in operation.get("parameters", [])
                                                if parameter["in"] == "query" and parameter.get("required")))
            for path, methods in document["paths"].items() for method, operation in methods.items()]


@dataclass(frozen=True)
class HostileRequest:
    endpoint: Endpoint
    target: str  # path and query, percent-encoded unless `raw`
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes
    labels: tuple[str, ...]  # what is hostile about it
    chunked: bool = False  # sent without Content-Length
    raw: bool = False  # bytes httpx will not send: over a bare socket

    @property
    def length_is_readable(self) -> bool:
        """Whether the server can see the body's length. Python's HTTP header parser, under Flask's development
        server, stops at a header name that is not ASCII: every header after it, Content-Length included, is
        dropped (and the server closes the connection after answering, so the unread body cannot become a
        request of its own)."""
        return all(name.isascii() for name, _ in self.headers)

    def smaller(self) -> Iterator[HostileRequest]:
        """This request without one of its parts (a header, the body, a query parameter), each in turn."""
        for index, (name, _) in enumerate(self.headers):
            headers = self.headers[:index] + self.headers[index + 1:]
            yield self._without(f"header:{name.decode('utf-8', 'replace')}:", headers=headers)
        if self.body:
            yield self._without("body:", body=b"", chunked=False)
        path, _, query = self.target.partition("?")
        params = query.split("&") if query else []
        for index, param in enumerate(params):
            rest = "&".join(params[:index] + params[index + 1:])
            yield self._without(f"query-{param.partition('=')[0]}:", target=path + (f"?{rest}" if rest else ""))

    def _without(self, label_prefix: str, **changes: Any) -> HostileRequest:
        smaller = replace(self, **changes)
        labels = tuple(label for label in self.labels if not label.startswith(label_prefix)
                       and not (label == "chunked" and not smaller.chunked)) or ("ordinary",)
        return replace(smaller, labels=labels, raw=needs_raw(smaller.target, smaller.headers))

    def reproduction(self, base_url: str, limit: int = 160) -> str:
        """A curl-like line, every part cut to `limit` characters (with its full length)."""
        def cut(data: bytes | str) -> str:
            text = repr(data)
            return text if len(text) <= limit else f"{text[:limit]}…({len(data)} long)"
        parts = [f"{self.endpoint.method} {base_url}{cut(self.target)[1:-1]}"]
        parts += [f"-H {cut(name + b': ' + value)}" for name, value in self.headers]
        if self.body:
            parts.append(f"--data-binary {cut(self.body)}" + (" (chunked)" if self.chunked else ""))
        return " ".join(parts) + ("  [sent over a bare socket]" if self.raw else "")


@dataclass
class Answer:
    status: int
    content_type: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> object:
        return json.loads(self.body)


# -- bodies ------------------------------------------------------------------------------------------------

Body = tuple[str, bytes, bytes | None]  # label, bytes, the content type that goes with them (None: none)
JSON = b"application/json"


def deep(kind: str, depth: int) -> bytes:
    if kind == "arrays":
        return b"[" * depth + b"]" * depth
    if kind == "objects":
        return b'{"a":' * depth + b"1" + b"}" * depth
    if kind == "unclosed":
        return b'{"starknet_address":' + b"[" * depth
    # a real-looking order whose address is nested deep inside
    return b'{"starknet_address":' + b"[" * depth + b'"0x1"' + b"]" * depth + b',"vusd_amount":"5.00"}'


@st.composite
def deep_bodies(draw: st.DrawFn) -> Body:
    kind = draw(st.sampled_from(["arrays", "objects", "unclosed", "inside-an-order"]))
    depth = draw(st.sampled_from([33, 1_000, 10_000, 30_000, 100_000]))
    return f"deep-{kind}-{depth}", deep(kind, depth), JSON


@st.composite
def number_bodies(draw: st.DrawFn) -> Body:
    """An order whose numbers are huge, or tokens such as NaN and 1e400, written into the text as they are."""
    fields = draw(st.lists(st.sampled_from(ORDER_FIELDS), min_size=1, max_size=4, unique=True))
    values = {name: draw(st.sampled_from([str(n) for n in HUGE_NUMBERS] + NUMBER_TOKENS +
                                         [json.dumps(token) for token in NUMBER_TOKENS])) for name in fields}
    text = "{" + ",".join(f'"{name}":{value}' for name, value in values.items()) + "}"
    longest = max(values.values(), key=len)
    return f"numbers-{longest[:12]}", text.encode(), JSON


def hostile_text() -> st.SearchStrategy[str]:
    characters = st.one_of(st.characters(), st.characters(categories=["Cs"]),  # lone surrogates
                           st.sampled_from(["\x00", "\x1b", "\x7f", "\u2028", "\ufffe"]))
    return st.one_of(st.sampled_from(TRICKY_TEXT), st.text(characters, max_size=40))


def json_values() -> st.SearchStrategy[object]:
    leaves = st.one_of(st.none(), st.booleans(), st.integers(), st.sampled_from(HUGE_NUMBERS),
                       st.floats(allow_nan=True, allow_infinity=True), hostile_text())
    keys = st.one_of(st.sampled_from(ORDER_FIELDS + OTHER_FIELDS), hostile_text())
    return st.recursive(leaves, lambda children: st.one_of(st.lists(children, max_size=4),
                                                           st.dictionaries(keys, children, max_size=4)),
                        max_leaves=12)


@st.composite
def text_bodies(draw: st.DrawFn) -> Body:
    """Any JSON, mostly objects with the order's field names: escaped (lone surrogates as \\ud800), or with
    surrogates written out as bytes (not UTF-8 at all)."""
    value = draw(st.one_of(json_values(), st.dictionaries(st.sampled_from(ORDER_FIELDS + OTHER_FIELDS),
                                                          json_values(), min_size=1, max_size=4)))
    if draw(st.booleans()):
        return "json-escaped", json.dumps(value).encode(), JSON
    return "json-surrogates-as-bytes", json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass"), JSON


@st.composite
def byte_bodies(draw: st.DrawFn) -> Body:
    """Not UTF-8, or UTF-8 with a byte order mark, or JSON in UTF-16/32 (which json.loads reads)."""
    kind = draw(st.sampled_from(["random", "invalid-utf8-in-string", "bom", "utf-16", "utf-32", "nul"]))
    order = '{"starknet_address": "0x1", "vusd_amount": "5.00"}'
    body = {
        "random": draw(st.binary(min_size=1, max_size=200)),
        "invalid-utf8-in-string": b'{"starknet_address": "0x\xff\xfe", "vusd_amount": "5.\xc3"}',
        "bom": b"\xef\xbb\xbf" + order.encode(),
        "utf-16": order.encode("utf-16"),
        "utf-32": order.encode("utf-32"),
        "nul": b"\x00" * 64,
    }[kind]
    return f"bytes-{kind}", body, JSON


@st.composite
def oversized_bodies(draw: st.DrawFn) -> Body:
    size = draw(st.sampled_from([BODY_BOUND + 1, 256 * 1024, MB, 3 * MB, 6 * MB]))
    fill = draw(st.sampled_from(["flat-json", "spaces", "brackets"]))
    if fill == "flat-json":
        head = b'{"starknet_address":"0x1","vusd_amount":"5.00","padding":"'
        body = head + b"x" * (size - len(head) - 2) + b'"}'
    elif fill == "spaces":
        body = b'{"starknet_address":"0x1"' + b" " * (size - 27) + b"}"
    else:
        body = b"[" * (size // 2) + b"]" * (size - size // 2)
    return f"oversized-{fill}-{size}", body, JSON


CONTENT_TYPES = [b"text/plain", b"application/x-www-form-urlencoded", b"multipart/form-data; boundary=x",
                 b"application/json; charset=utf-16", b"application/json; charset=\xc3\xa9", b"application/xml",
                 b"application/json" + b"; x=" + b"a" * 8_000, b"", b"*/*", b"applicati\xc3\xb3n/json"]


@st.composite
def wrong_type_bodies(draw: st.DrawFn) -> Body:
    content_type = draw(st.sampled_from(CONTENT_TYPES))
    body = draw(st.sampled_from([b'{"starknet_address": "0x1", "vusd_amount": "5.00"}',
                                 b"starknet_address=0x1&vusd_amount=5.00",
                                 b'--x\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--x--\r\n']))
    return f"content-type-{content_type[:24].decode('latin-1')}", body, content_type


def bodies() -> st.SearchStrategy[Body]:
    return st.one_of(st.just(("no-body", b"", None)), deep_bodies(), number_bodies(), text_bodies(), byte_bodies(),
                     oversized_bodies(), wrong_type_bodies())


# -- headers -----------------------------------------------------------------------------------------------

HEADER_NAMES = [b"Volta-Signature", b"Volta-Delivery", b"Authorization", b"Idempotency-Key", b"Content-Type",
                b"X-Forwarded-For", b"Accept", b"X-\xc3\xa9"]


def header_values(now: int) -> st.SearchStrategy[tuple[str, bytes]]:
    """(label, value). Control characters need the bare socket (h11 refuses them)."""
    return st.sampled_from([
        ("non-ascii", "é中🙂".encode()),
        ("latin-1-byte", b"\xff\xfe"),
        ("bearer-non-ascii", "Bearer é🙂".encode()),
        ("bearer-latin-1", b"Bearer \xe9"),
        ("bearer-long", b"Bearer " + b"A" * 8_000),
        ("long-8k", b"a" * 8_000),
        ("long-60k", b"b" * 60_000),
        ("signature-non-ascii-v1", f"t={now},v1=é".encode()),
        ("signature-non-ascii-t", "t=\u0661\u0667\u0660\u0660\u0660\u0660\u0660\u0660\u0660\u0660,v1=ab".encode()),
        ("signature-huge-timestamp", b"t=" + b"9" * 400 + b",v1=00"),
        ("signature-huge-negative", b"t=-" + b"9" * 400 + b",v1=00"),
        ("signature-4301-digits", b"t=" + b"1" * 4301 + b",v1=00"),
        ("signature-float", b"t=1e308,v1=00"),
        ("signature-many-parts", b",".join([b"v1=00"] * 2000) + f",t={now}".encode()),
        ("signature-empty-parts", b",,,=,t=,v1="),
        ("huge-number", str(10**400).encode()),
        ("control-char", b"a\x01b"),
        ("del-char", b"a\x7fb"),
        ("nul", b"a\x00b"),
        ("empty", b""),
    ])


@st.composite
def hostile_headers(draw: st.DrawFn, now: int) -> list[tuple[bytes, bytes, str]]:
    """Up to three of HEADER_NAMES, each with a hostile value: (name, value, label)."""
    headers = []
    for name in draw(st.lists(st.sampled_from(HEADER_NAMES), max_size=3, unique=True)):
        label, value = draw(header_values(now))
        headers.append((name, value, label))
    return headers


# -- where the request goes --------------------------------------------------------------------------------

PATH_VALUES = [  # label, the path segment as sent (percent-encoded)
    ("non-ascii", quote("ord_é中🙂")), ("invalid-utf8", "ord_%ff%fe"), ("nul", "ord_%00"), ("long", "o" * 8_000),
    ("dot-dot", "..%2F..%2Fmetrics"), ("huge-number", str(10**400)), ("surrogate-escape", "%ed%a0%80"),
    ("spaces", "ord%20%20x"), ("empty-ish", "%20"),
]
QUERY_VALUES = [  # label, the value as sent (percent-encoded)
    ("non-ascii", quote("0x\uff11é")), ("invalid-utf8", "0x%ff"), ("huge-number", str(10**400)),
    ("hex-huge", "0x" + "f" * 400), ("long", "0x" + "1" * 8_000), ("nul", "0x1%00"), ("float", "1e308"),
    ("nan", "NaN"), ("negative", "-1"), ("arabic-digits", quote("\u0663")), ("empty", ""),
]


@st.composite
def targets(draw: st.DrawFn, endpoint: Endpoint, known: dict[str, str]) -> tuple[str, list[str]]:
    """(target, labels): the path with its parameters and required query, each either a real value (from
    `known`, by parameter name) or a hostile one, and now and then one more hostile query parameter."""
    labels: list[str] = []
    path = endpoint.path
    for name in re.findall(r"{(\w+)}", endpoint.path):
        label, value = draw(st.sampled_from([("real", quote(known.get(name, "x"))), *PATH_VALUES,
                                             ("raw-bytes", "ord_\xff\xe9")]))
        labels.append(f"path-{name}:{label}")
        path = path.replace(f"{{{name}}}", value)
    params: list[str] = []
    for name in endpoint.query:
        label, value = draw(st.sampled_from([("real", quote(known.get(name, "x"))), *QUERY_VALUES]))
        labels.append(f"query-{name}:{label}")
        params.append(f"{name}={value}")
    if draw(st.booleans()):
        name, value = draw(st.sampled_from([("limit", str(10**400)), ("offset", "-" + "9" * 5000),
                                            ("limit", "NaN"), ("order_id", quote("é" * 500)),
                                            ("starknet_address", "x&starknet_address=0x2")]))
        labels.append(f"query-{name}:hostile")
        params.append(f"{name}={value}")
    return path + ("?" + "&".join(params) if params else ""), labels


@st.composite
def hostile_requests(draw: st.DrawFn, endpoint: Endpoint, known: dict[str, str], admin_token: str) -> HostileRequest:
    """A request to `endpoint` with hostile parts. `known`: real values by parameter name (an open order's id, an
    account's address), so hostile headers and bodies also reach the views behind a 404; `admin_token`: the
    operator's, sent now and then, so the views behind the token check see hostile input too."""
    now = int(time.time())
    target, labels = draw(targets(endpoint, known))
    body_label, body, body_type = draw(bodies())
    headers = draw(hostile_headers(now))
    names = {name.lower() for name, _, _ in headers}
    if b"authorization" not in names and draw(st.integers(0, 2)) == 0:
        headers.append((b"Authorization", f"Bearer {admin_token}".encode(), "ordinary"))
    if body_type is not None and b"content-type" not in names:
        headers.append((b"Content-Type", body_type, "ordinary"))
    labels += [f"body:{body_label}"] if body else []
    labels += [f"header:{name.decode('utf-8', 'replace')}:{label}" for name, _, label in headers if label != "ordinary"]
    sent_headers = tuple((name, value) for name, value, _ in headers)
    raw = needs_raw(target, sent_headers)
    chunked = bool(body) and not raw and draw(st.integers(0, 9)) == 0
    if chunked:
        labels.append("chunked")
    return HostileRequest(endpoint=endpoint, target=target, headers=sent_headers, body=body,
                          labels=tuple(labels) or ("ordinary",), chunked=chunked, raw=raw)


CONTROL = set(range(0x20)) - {0x09} | {0x7F}


def needs_raw(target: str, headers: tuple[tuple[bytes, bytes], ...]) -> bool:
    """Whether httpx (h11) would refuse to send this: raw bytes in the request line, a header name that is not
    ASCII, or a control character in a header."""
    return not target.isascii() or any(not name.isascii() or set(value) & CONTROL for name, value in headers)


# -- sending -----------------------------------------------------------------------------------------------

def send(http: httpx.Client, request: HostileRequest) -> Answer:
    """Send as built: over httpx, or over a bare socket for bytes h11 refuses. An event stream is read up to its
    first event only (an open order's stream lasts until the order ends)."""
    if request.raw:
        return send_raw(str(http.base_url), request)
    content: bytes | Iterator[bytes] = chunks(request.body) if request.chunked else request.body
    built = http.build_request(request.endpoint.method, httpx.URL(request.target), headers=list(request.headers),
                               content=content if request.body else None)
    response = http.send(built, stream=True)
    try:
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            body = first_event(response)
        else:
            body = response.read()
        return Answer(response.status_code, response.headers.get("content-type", ""), body, dict(response.headers))
    finally:
        response.close()


def chunks(body: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start:start + size]


def first_event(response: httpx.Response) -> bytes:
    received = b""
    for chunk in response.iter_raw():
        received += chunk
        if b"\n\n" in received:
            break
    return received


def send_raw(base_url: str, request: HostileRequest, timeout: float = 30) -> Answer:
    """HTTP/1.1 over a bare socket: the request line and headers as bytes, whatever they contain."""
    url = httpx.URL(base_url)
    head = [f"{request.endpoint.method} ".encode() + request.target.encode("latin-1") + b" HTTP/1.1",
            f"Host: {url.host}:{url.port}".encode(), b"Connection: close",
            *(name + b": " + value for name, value in request.headers)]
    if request.body:
        head.append(f"Content-Length: {len(request.body)}".encode())
    with socket.create_connection((url.host, url.port or 80), timeout=timeout) as connection:
        # Sent while the answer is read: the server may answer before reading the body (a 413), or never read it
        # (an event stream that did not see the body's length), and a sender alone would wait on a full buffer.
        sender = threading.Thread(target=_send_quietly, args=(connection, b"\r\n".join(head) + b"\r\n\r\n" +
                                                                request.body), daemon=True)
        sender.start()
        received = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            data = connection.recv(65536)
            if not data or _complete(received := received + data):
                break
        with contextlib.suppress(OSError):
            connection.shutdown(socket.SHUT_RDWR)  # a send still waiting fails at once
        sender.join(timeout)
    return parse_response(received)


def _send_quietly(connection: socket.socket, data: bytes) -> None:
    with contextlib.suppress(OSError):  # the server answered and closed before reading it all
        connection.sendall(data)


def _complete(received: bytes) -> bool:
    head, separator, body = received.partition(b"\r\n\r\n")
    if not separator:
        return False
    headers = _headers(head)
    if headers.get("content-type", "").startswith("text/event-stream"):
        return b"\n\n" in body
    length = headers.get("content-length")
    return length is not None and len(body) >= int(length)


def _headers(head: bytes) -> dict[str, str]:
    lines = head.decode("latin-1").split("\r\n")[1:]
    return {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}


def parse_response(received: bytes) -> Answer:
    head, _, body = received.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].split()
    if len(status_line) < 2 or not status_line[1].isdigit():
        raise ConnectionError(f"no HTTP response, only {received[:200]!r}")
    headers = _headers(head)
    return Answer(int(status_line[1]), headers.get("content-type", ""), body, headers)
