"""The nesting scan that runs before any JSON decoder: it must count what the decoder would recurse into."""

from __future__ import annotations

import json
import time

import pytest

from service.json_depth import JsonTooDeep, loads_bounded, nesting_depth


@pytest.mark.parametrize(("text", "depth"), [
    (b'{"starknet_address": "0x1", "vusd_amount": "2.00"}', 1),
    (b"[[[]]]", 3),
    (b'{"a": "[[[[[[[[[["}', 1),  # brackets inside a string are text
    (b'{"a": "\\"[[[[[[[[[["}', 1),  # an escaped quote does not end the string
    (b'["x\\\\", [[1]]]', 3),  # an escaped backslash does
    (b'"unterminated [[[[', 0),
    (b"", 0),
    (b"not json at all", 0),
])
def test_depth_of_small_texts(text: bytes, depth: int) -> None:
    assert nesting_depth(text) == depth


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16-le", "utf-16", "utf-32-be"])
def test_depth_is_read_in_the_encoding_the_decoder_detects(encoding: str) -> None:
    # "∀" is U+2200: in UTF-16-LE its bytes are 00 22, a quote to anyone reading bytes.
    text = ('["\u2200", ' + "[" * 100 + "]" * 100 + "]").encode(encoding)
    assert json.loads(text)[0] == "\u2200"
    assert nesting_depth(text) == 101


def test_loads_bounded_refuses_before_decoding_and_decodes_otherwise() -> None:
    with pytest.raises(JsonTooDeep):
        loads_bounded(b"[" * 100_000 + b"]" * 100_000)
    assert loads_bounded(b'{"payment_hash": "00"}') == {"payment_hash": "00"}


@pytest.mark.parametrize("body", [b"[]" * 32_768, b"[" * 65_536, b'"\\' * 32_768, b'"' * 65_536, b"\xc3" * 65_536],
                         ids=["pairs", "openers", "escapes", "quotes", "bad-utf8"])
def test_64_kib_of_anything_is_scanned_quickly(body: bytes) -> None:
    started = time.perf_counter()
    nesting_depth(body)
    assert time.perf_counter() - started < 0.5  # about 10 ms; a backtracking scan took 44 s on the escapes
