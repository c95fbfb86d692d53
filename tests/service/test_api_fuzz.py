"""Fuzzing the running service (a separate process) with at least 5,000 generated requests, in three ways:

- stateless schemathesis over every operation of the document served at /api/v1/openapi.json;
- stateful schemathesis following links between operations (create → read → events → qr → history, payment
  notice, challenge → session; tests/service/fuzz_workflow.py);
- hostile requests from Hypothesis strategies sent straight at every endpoint (tests/service/hostile.py): JSON
  nested 100,000 deep, 400-digit integers, NaN tokens, lone surrogates, invalid UTF-8, bodies of several MB, wrong
  content types, non-ASCII, control-character and over-long headers.

Never a 5xx; every schemathesis response matches the document; every hostile 4xx is our JSON error
{"error", "message", "hint"} and every body over 64 KiB a 413; the process is alive after every request and
answers /api/v1/health after every batch. The per-IP rate limits and stream caps would answer a flood with 429, so
the fuzzing runs with them raised (one small test first checks that a 429 is the same JSON error). The last tests
check two things the document must say that the fuzzing found it does not (run with -x, they come last).
"""

from __future__ import annotations

import contextlib
import secrets
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis.errors import FlakyStrategyDefinition, HypothesisException
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from harness.network import Network
from harness.process import ProcessError
from harness.service_process import VoltaService
from service.api.openapi import OPENAPI
from service.config import Settings
from service.domain.orders import normalize_starknet_address
from tests.service.fuzz_workflow import Secrets, workflow
from tests.service.history_signing import history_session
from tests.service.hostile import Endpoint, HostileRequest, endpoints, hostile_requests
from tests.service.hostile_probe import ERROR_KEYS, Finding, Prober, summarize

pytestmark = pytest.mark.regtest

schema = schemathesis.openapi.from_dict(OPENAPI)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
MIN_REQUESTS = 5_000
SENT: Counter[str] = Counter()  # every request of this module, by way of fuzzing
ADMIN_TOKEN = f"fuzz-operator-{secrets.token_hex(8)}"
FUZZ_ENV = {  # every rate limit and cap per client the settings have, raised; and an operator token, so the
    # delivery log checks Authorization and hostile values reach that comparison
    **{f"VOLTA_{name.upper()}": "1000000/minute" for name in Settings.model_fields
       if name.startswith("rate_limit_") and "_per_" in name},
    **{f"VOLTA_{name.upper()}": "1000000" for name in Settings.model_fields
       if name.startswith("max_") and name.endswith("_per_ip")},
    "VOLTA_ADMIN_TOKEN": ADMIN_TOKEN,
}
ENDPOINTS = endpoints(OPENAPI)


def test_the_served_document_is_the_one_fuzzed(network: Network) -> None:
    assert network.service is not None
    assert httpx.get(f"{network.service.url}/api/v1/openapi.json").json() == OPENAPI


@pytest.fixture(scope="module")
def service_env(network: Network) -> Iterator[dict[str, str]]:
    """The service's environment as this module found it; the service runs with it again after the module."""
    service = network.service
    assert service is not None
    found = dict(service.extra_env)
    yield found
    if service.extra_env != found or not service.is_running():
        revive(service, found)


def test_a_flood_is_answered_429_in_the_json_error_shape(network: Network, service_env: dict[str, str]) -> None:
    """Before the limits are raised for the fuzzing: with 3 history challenges a minute per IP, the fourth gets
    429; with 2 live event streams per IP, the third does; both in our JSON error shape."""
    service = network.service
    assert service is not None
    service.restart({**service_env, "VOLTA_RATE_LIMIT_HISTORY_PER_IP": "3/minute",
                     "VOLTA_MAX_EVENT_STREAMS_PER_IP": "2"})
    with httpx.Client(base_url=service.url, timeout=30) as http:
        answers = [http.post("/api/v1/history/challenge", json={"starknet_address": "0x1"}) for _ in range(4)]
        assert [answer.status_code for answer in answers] == [200, 200, 200, 429], [a.text for a in answers]
        order = http.post("/api/v1/orders", json={"starknet_address": network.users[0]["address"],
                                                  "vusd_amount": "2.00"})
        assert order.status_code == 201, order.text
        events = f"/api/v1/orders/{order.json()['order_id']}/events"
        with http.stream("GET", events) as first, http.stream("GET", events) as second:
            third = http.get(events)
            statuses = [first.status_code, second.status_code, third.status_code]
    SENT["rate limit"] += len(answers) + 4
    assert statuses == [200, 200, 429], (statuses, third.text)
    for refused in (answers[-1], third):
        assert set(refused.json()) == ERROR_KEYS and all(refused.json().values()), refused.text
    assert int(answers[-1].headers["Retry-After"]) > 0


@pytest.fixture(scope="module")
def fuzz_service(network: Network, service_env: dict[str, str]) -> VoltaService:
    """The network's service with its rate limits raised for the flood, and an operator token (restarted: that
    also forgets what the 429 test spent)."""
    service = network.service
    assert service is not None
    service.restart({**service_env, **FUZZ_ENV})
    return service


def revive(service: VoltaService, env: dict[str, str]) -> None:
    """Restart the service with `env`, also when a request killed it (that death is reported where it happened)."""
    with contextlib.suppress(ProcessError):
        service.stop()
    service.restart(env)


def assert_alive_and_answering(service: VoltaService, after: str) -> None:
    assert service.is_running(), f"the service died after {after}:\n{service.log_tail()}"
    health = httpx.get(f"{service.url}/api/v1/health", timeout=30)
    assert health.status_code in (200, 503) and "components" in health.json(), f"after {after}: {health.text}"


# -- schemathesis, one operation at a time ---------------------------------------------------------------------

@schema.parametrize()
@settings(max_examples=100, deadline=None, derandomize=True, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture])
def test_every_response_matches_the_document(case: schemathesis.Case, fuzz_service: VoltaService) -> None:
    SENT["stateless"] += 1
    case.call_and_validate(base_url=fuzz_service.url, checks=CHECKS, timeout=30)
    assert fuzz_service.is_running(), f"the service died on {case.operation.label}:\n{fuzz_service.log_tail()}"


# -- schemathesis, following links -----------------------------------------------------------------------------

# Each scenario is its own Hypothesis run with one example and a fixed seed. Which links a step may follow
# depends on the live service's earlier answers, so two examples of one run that share a prefix can draw
# differently, and Hypothesis then stops the run with FlakyStrategyDefinition although nothing failed (it did,
# twice, in CI). One example per run leaves it nothing to compare against; seeds 0..N-1 keep the runs repeatable.
STATEFUL_SCENARIOS = 150


def first_failure(error: BaseException) -> BaseException | None:
    """The service's failure that a Hypothesis error was raised while handling, if any."""
    cause = error.__context__
    while cause is not None and isinstance(cause, HypothesisException):
        cause = cause.__context__
    return cause


def test_linked_workflows_match_the_document(fuzz_service: VoltaService, network: Network) -> None:
    accounts = network.users[:2]
    with httpx.Client(base_url=fuzz_service.url, timeout=60) as http:
        sessions = {normalize_starknet_address(account["address"]): history_session(http, account)
                    for account in accounts}
    SENT["stateful"] += 2 * len(accounts)  # a challenge and a session each
    by_operation: Counter[str] = Counter()
    held = Secrets(accounts, sessions, fuzz_service.inbound_webhook_secret, ADMIN_TOKEN)
    machine = workflow(fuzz_service.url, held, CHECKS, by_operation)
    one_scenario = settings(max_examples=1, stateful_step_count=12, deadline=None, database=None,
                            phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    for scenario in range(STATEFUL_SCENARIOS):
        try:
            seed(scenario)(machine).run(settings=one_scenario)
        except FlakyStrategyDefinition as flaky:
            # Only a failing scenario is replayed; the failure it was replaying is the finding.
            raise (first_failure(flaky) or flaky) from None
    SENT["stateful"] += by_operation.total()
    print(f"\nstateful: {by_operation.total()} requests: " + ", ".join(f"{n} {op}" for op, n in by_operation.items()))
    linked = {"GET /api/v1/orders/{order_id}", "GET /api/v1/orders/{order_id}/events",
              "GET /api/v1/orders/{order_id}/qr.svg", "GET /api/v1/orders", "POST /api/v1/history/session"}
    assert linked <= set(by_operation), f"links never followed to {linked - set(by_operation)}"
    assert_alive_and_answering(fuzz_service, "the stateful run")


# -- hostile requests, every endpoint ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def known(fuzz_service: VoltaService, network: Network) -> dict[str, str]:
    """Real values for path and query parameters: an open order's id, and the address of the account that bought
    it, so hostile requests also reach the views behind a 404."""
    address = network.users[0]["address"]
    response = httpx.post(f"{fuzz_service.url}/api/v1/orders", timeout=30,
                          json={"starknet_address": address, "vusd_amount": "2.00"})
    SENT["hostile"] += 1
    assert response.status_code == 201, response.text
    return {"order_id": str(response.json()["order_id"]), "starknet_address": address, "delivery_id": "dlv_1"}


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=[endpoint.label for endpoint in ENDPOINTS])
def test_hostile_requests_get_json_errors_and_never_a_5xx(endpoint: Endpoint, fuzz_service: VoltaService,
                                                          known: dict[str, str]) -> None:
    """Every failure is kept (the service restarted if a request killed it) and reported after the batch, one
    paragraph per kind with the smallest request that still fails: one run shows every bug, not just the first."""
    findings: list[Finding] = []
    fuzz_env = dict(fuzz_service.extra_env)
    with httpx.Client(base_url=fuzz_service.url, timeout=30) as http:
        prober = Prober(http, fuzz_service, restart=lambda: revive(fuzz_service, fuzz_env))

        @settings(max_examples=160, deadline=None, derandomize=True, database=None,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        @given(request=hostile_requests(endpoint, known, ADMIN_TOKEN))
        def probe(request: HostileRequest) -> None:
            if (finding := prober.probe(request)) is not None:
                findings.append(finding)

        try:
            probe()
            report = summarize(findings, prober.minimal, fuzz_service.url) if findings else ""
        finally:
            SENT["hostile"] += prober.sent
    statuses = sorted(prober.statuses.items())
    print(f"\nhostile {endpoint.label}: " + ", ".join(f"{n}x {status}" for status, n in statuses))
    assert_alive_and_answering(fuzz_service, f"hostile requests to {endpoint.label}")
    assert not findings, report


# -- the count -------------------------------------------------------------------------------------------------

def test_at_least_5000_requests_were_sent() -> None:
    print(f"\nfuzzing sent {SENT.total()} requests: " + ", ".join(f"{n} {way}" for way, n in SENT.items()))
    assert SENT.total() >= MIN_REQUESTS, f"only {SENT.total()} generated requests ({dict(SENT)})"


# -- the document ----------------------------------------------------------------------------------------------

def test_the_document_lists_the_429_of_event_streams() -> None:
    """GET /api/v1/orders/{order_id}/events answers 429 too_many_streams over VOLTA_MAX_EVENT_STREAMS_PER_IP (see
    the 429 test above); schemathesis fails an undocumented status."""
    responses = OPENAPI["paths"]["/api/v1/orders/{order_id}/events"]["get"]["responses"]
    assert "429" in responses, ('service/api/openapi.py: add "429": _error("too many live streams from this client") '
                                "to orderEvents' responses")


def test_the_document_describes_each_order_event() -> None:
    """schemathesis checks every event of a text/event-stream against the schema (as OpenAPI 3.2 reads it): the
    schema of an order's event stream must describe one event, whose data is an Order."""
    events = OPENAPI["paths"]["/api/v1/orders/{order_id}/events"]["get"]["responses"]["200"]["content"]
    event = events["text/event-stream"]["schema"]
    assert event.get("type") == "object" and "data" in event.get("properties", {}), (
        "service/api/openapi.py: set the text/event-stream schema of orderEvents' 200 to an event "
        "{event, id, data}, data an Order as JSON (contentMediaType/contentSchema)")
