"""The OpenAPI document is generated from the models (no hand-kept copy of any vocabulary), valid OpenAPI 3.0 by a
third-party validator, and describes what the models accept and build. Served and fuzzed against the running
service in tests/service/test_api_fuzz.py; rendered in the browser in tests/web/test_api_docs.py."""

from __future__ import annotations

import copy
import inspect
from pathlib import Path

import jsonschema
import pytest
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate

from service import order_view
from service.api import openapi, serializers
from service.api.openapi import OPENAPI
from service.domain.states import OrderStatus, RefundReason

SCHEMAS = OPENAPI["components"]["schemas"]
# Not schemas.py: its Literal of delivery states shares the word "failed" with the order states.
SOURCES = [Path(inspect.getfile(module)) for module in (openapi, serializers, order_view)]


def test_the_document_is_valid_openapi_3_0() -> None:
    """Valid by openapi-spec-validator, but for one keyword pair: an event stream's data is described with JSON
    Schema's contentMediaType/contentSchema (as OpenAPI 3.2 reads a text/event-stream), which 3.0 does not know;
    schemathesis checks every event with it."""
    document = copy.deepcopy(OPENAPI)
    events = document["paths"]["/api/v1/orders/{order_id}/events"]["get"]["responses"]["200"]["content"]
    data = events["text/event-stream"]["schema"]["properties"]["data"]
    assert data.pop("contentSchema") == {"$ref": "#/components/schemas/Order"}
    data.pop("contentMediaType")
    validate(document)


def test_statuses_and_reasons_come_from_the_state_module() -> None:
    order = SCHEMAS["Order"]["properties"]
    assert order["status"]["enum"] == [status.value for status in OrderStatus]
    assert order["refund_reason"]["enum"] == [*(reason.value for reason in RefundReason), None]
    assert order["refund_reason"]["nullable"] is True
    assert SCHEMAS["StateChange"]["properties"]["status"]["enum"] == [status.value for status in OrderStatus]


VOCABULARY = [*(status.value for status in OrderStatus), *(reason.value for reason in RefundReason)]


@pytest.mark.parametrize("word", VOCABULARY)
def test_no_status_or_reason_is_written_in_the_openapi_module(word: str) -> None:
    for source in SOURCES:
        assert f'"{word}"' not in source.read_text(), f"{source} spells {word!r}: take it from the models"


def test_every_reference_resolves() -> None:
    def refs(node: object) -> list[str]:
        if isinstance(node, dict):
            return [node["$ref"]] if "$ref" in node else [ref for value in node.values() for ref in refs(value)]
        if isinstance(node, list):
            return [ref for item in node for ref in refs(item)]
        return []

    for ref in refs(OPENAPI):
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in SCHEMAS, ref


def check(body: object, name: str) -> None:
    """Validate as OpenAPI 3.0 reads a schema (nullable, boolean exclusive bounds), with openapi-schema-validator."""
    schema = {"$ref": f"#/components/schemas/{name}", "components": OPENAPI["components"]}
    OAS30Validator(schema).validate(body)


@pytest.mark.parametrize("body", [
    {"starknet_address": "0x1", "vusd_amount": "25.00"},
    {"starknet_address": "0x1", "amount_sat": 5000, "max_slippage_bps": 100},
])
def test_a_valid_order_request_matches_the_document(body: dict[str, object]) -> None:
    check(body, "OrderRequest")


@pytest.mark.parametrize("body", [
    {"vusd_amount": "25.00"},
    {"starknet_address": "0x1", "vusd_amount": "1", "surprise": True},
    {"starknet_address": "0x1", "amount_sat": 0},
    {"starknet_address": "0x1", "max_slippage_bps": 10001},
])
def test_what_the_document_refuses_the_model_refuses_too(body: dict[str, object]) -> None:
    with pytest.raises(jsonschema.ValidationError):
        check(body, "OrderRequest")
