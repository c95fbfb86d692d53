"""Stateful fuzzing: the schemathesis state machine that follows the served document's links between operations
(service.api.openapi.LINKS) against the running service.

An order that was created is read, followed live, drawn as a QR code, looked up in its address's history (after
its buyer proves the address: challenge, then session), its payment hash is sent as a signed payment notice and its
deliveries are listed. Half of the orders and challenges generated are valid ones for the network's accounts
(a `flatmap_body` hook): random strings are almost never a Starknet address, and a link needs a 201 to follow.

The machine does what a wallet, a hosted node and the operator would: it signs challenges for the accounts whose
keys the test holds, signs payment notices with the service's inbound secret, sends history sessions (now the
right one, now another address's, now none) and, mostly, the operator's token to the delivery log.
"""

from __future__ import annotations

import itertools
import json
import secrets
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import schemathesis
from hypothesis import strategies as st
from schemathesis.checks import CheckFunction
from schemathesis.core import NotSet
from schemathesis.core.transport import Response
from schemathesis.generation.stateful.state_machine import APIStateMachine
from schemathesis.hooks import HookContext

from service.api.openapi import OPENAPI
from service.domain.orders import normalize_starknet_address
from service.webhooks.signing import sign
from tests.service.history_signing import sign_typed_data

VALID_AMOUNTS = ["2.00", "5.00", "12.34"]


def valid_half_the_time(addresses: list[str]) -> Callable[[HookContext, Any], st.SearchStrategy[Any]]:
    """A `flatmap_body` hook: an order or a challenge for one of `addresses`, or the body as generated."""
    orders = st.fixed_dictionaries({"starknet_address": st.sampled_from(addresses),
                                    "vusd_amount": st.sampled_from(VALID_AMOUNTS)},
                                   optional={"max_slippage_bps": st.integers(0, 300)})
    challenges = st.fixed_dictionaries({"starknet_address": st.sampled_from(addresses)})

    def flatmap_body(context: HookContext, body: Any) -> st.SearchStrategy[Any]:
        label = context.operation.label if context.operation else ""
        valid = {"POST /api/v1/orders": orders, "POST /api/v1/history/challenge": challenges}.get(label)
        return st.one_of(st.just(body), valid) if valid is not None else st.just(body)

    return flatmap_body


@dataclass
class Secrets:
    """What the test holds that a fuzzer would not: account keys ({"address", "private_key"}), a history
    session per address (0x + 64 hex digits), the service's inbound webhook secret and the operator's token."""

    accounts: list[dict[str, str]]
    sessions: dict[str, str]
    inbound_webhook_secret: str
    admin_token: str


def workflow(base_url: str, held: Secrets, checks: list[CheckFunction], sent: Counter[str]) -> type[APIStateMachine]:
    """The state machine class for the running service; `sent` counts every request, by operation."""
    accounts, sessions, inbound_secret = held.accounts, held.sessions, held.inbound_webhook_secret
    keys = {normalize_starknet_address(account["address"]): account["private_key"] for account in accounts}
    schema = schemathesis.openapi.from_dict(OPENAPI)
    schema.hooks.register_hook_with_name(valid_half_the_time(list(keys)), "flatmap_body")
    schema.config.phases.stateful.inference.algorithms = []  # the links above, nothing guessed
    # An order's event stream lasts until the order ends: one event shows its shape.
    schema.config.max_stream_events = 1
    challenges: dict[str, str] = {}  # challenge token -> the address it is for (one we hold the key of)
    typed: dict[str, dict[str, Any]] = {}  # challenge token -> its typed data
    turn = itertools.count()

    class VoltaWorkflow(schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
            return {"base_url": base_url, "timeout": 30}

        def before_call(self, case: schemathesis.Case) -> None:
            label = case.operation.label
            if label == "GET /api/v1/orders":
                self._send_a_session(case)
            elif label == "POST /api/v1/history/session" and isinstance(case.body, dict):
                self._sign_the_challenge(case)
            elif label == "GET /api/v1/webhooks/deliveries" and next(turn) % 3:
                case.headers["Authorization"] = f"Bearer {held.admin_token}"

        def _send_a_session(self, case: schemathesis.Case) -> None:
            try:
                address = normalize_starknet_address(str((case.query or {}).get("starknet_address", "")))
            except ValueError:
                return
            if address not in sessions:
                return
            choice = next(turn) % 6  # mostly the right session; sometimes another address's, sometimes none
            others = [token for other, token in sessions.items() if other != address]
            if choice == 0:
                case.headers.pop("Authorization", None)
            else:
                case.headers["Authorization"] = f"Bearer {others[0] if choice == 1 and others else sessions[address]}"

        def _sign_the_challenge(self, case: schemathesis.Case) -> None:
            assert isinstance(case.body, dict)
            token = case.body.get("challenge")
            if isinstance(token, str) and token in challenges and next(turn) % 3:
                address = challenges.pop(token)
                signature: list[Any] = sign_typed_data(typed.pop(token), address, keys[address])
                case.body["signature"] = signature

        def call(self, case: schemathesis.Case, **kwargs: Any) -> Response:
            sent[case.operation.label] += 1
            # A JSON value is signed as sent; raw bytes (negative generation's non-JSON bodies) go out unsigned.
            if case.operation.label == "POST /api/v1/webhooks/lightning" \
                    and not isinstance(case.body, NotSet | bytes) and next(turn) % 4:
                raw = json.dumps(case.body).encode()  # signed as sent, so the notice gets past the signature
                case.headers.update({"Content-Type": "application/json", "Volta-Signature": sign(inbound_secret, raw),
                                     "Volta-Delivery": f"dlv_fuzz_{secrets.token_hex(6)}"})
                return case.call(**kwargs, data=raw)
            return case.call(**kwargs)

        def after_call(self, response: Response, case: schemathesis.Case) -> None:
            super().after_call(response, case)
            if response.status_code != 200:
                return
            if case.operation.label == "POST /api/v1/history/challenge":
                body = response.json()
                if body["starknet_address"] in keys:
                    challenges[body["challenge"]] = body["starknet_address"]
                    typed[body["challenge"]] = body["typed_data"]
            elif case.operation.label == "POST /api/v1/history/session":
                body = response.json()
                sessions[body["starknet_address"]] = body["session"]

        def validate_response(self, response: Response, case: schemathesis.Case,
                              additional_checks: list[CheckFunction] | None = None, **kwargs: Any) -> None:
            case.validate_response(response, checks=checks, transport_kwargs=kwargs or None, recorder=self.recorder)

    return VoltaWorkflow
