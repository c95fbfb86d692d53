"""schemathesis against the running service: at least 1,000 generated requests, no 5xx, and every
response matches the OpenAPI document served at /api/v1/openapi.json."""

from __future__ import annotations

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from harness.network import Network
from service.api.openapi import OPENAPI

pytestmark = pytest.mark.regtest

schema = schemathesis.openapi.from_dict(OPENAPI)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
REQUESTS_SENT: list[str] = []


def test_the_served_document_is_the_one_fuzzed(network: Network) -> None:
    assert httpx.get(f"{network.service.url}/api/v1/openapi.json").json() == OPENAPI


@schema.parametrize()
@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture])
def test_every_response_matches_the_document(case: schemathesis.Case, network: Network) -> None:
    case.call_and_validate(base_url=network.service.url, checks=CHECKS, timeout=30)
    REQUESTS_SENT.append(case.operation.label)


def test_at_least_a_thousand_requests_were_sent() -> None:
    print(f"schemathesis sent {len(REQUESTS_SENT)} requests over {len(set(REQUESTS_SENT))} operations")
    assert len(REQUESTS_SENT) >= 1000, f"only {len(REQUESTS_SENT)} generated requests"
