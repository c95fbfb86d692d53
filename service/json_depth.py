"""How deep a JSON text nests, found without recursion, so a hostile body is refused before any decoder sees it.

Python's JSON decoder recurses once per nesting level. starknet-py's py_ecc raises the recursion limit to
100,000 for the whole process, so a body nested that deep runs the decoder off the end of its thread's C stack
and the process dies with SIGSEGV (a RecursionError would have been caught). Every body we accept is one level
deep; MAX_JSON_DEPTH leaves room for any future field and stays far below where the decoder's stack matters.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

MAX_JSON_DEPTH = 32

# A JSON string (escapes included): its brackets are text, not nesting. An unterminated string runs to the end
# of the text. Every character can be consumed one way only and the end always matches, so the scan is linear.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.DOTALL)
_ALL_BUT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


class JsonTooDeep(ValueError):
    def __init__(self, max_depth: int) -> None:
        super().__init__(f"the JSON nests deeper than {max_depth} levels")
        self.max_depth = max_depth


def nesting_depth(raw: bytes) -> int:
    """How many arrays or objects `raw`, read as JSON, opens inside each other at most (any bytes, valid JSON
    or not). Linear in its length, the loops in C: about 10 ms for 64 KiB of brackets."""
    # Read in the encoding json.loads would detect (UTF-16 and -32 too), then scanned as UTF-8, where a quote or
    # bracket byte is always that character. Bytes json.loads could not decode fail there before any parsing.
    text = raw.decode(json.detect_encoding(raw), "replace").encode("utf-8", "surrogatepass")
    brackets = _STRING.sub(b"", text).translate(None, _ALL_BUT_BRACKETS)
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def loads_bounded(raw: bytes, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """`json.loads`, after refusing (JsonTooDeep, a ValueError) a text that nests deeper than `max_depth`."""
    if nesting_depth(raw) > max_depth:
        raise JsonTooDeep(max_depth)
    return json.loads(raw)
