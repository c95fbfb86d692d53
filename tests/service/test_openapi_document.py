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


OPERATIONS = {operation["operationId"]: operation for path in OPENAPI["paths"].values() for operation in path.values()}


def links_of(operation_id: str, status: str) -> dict[str, str]:
    """The operations an answer links to, by link name."""
    links = OPERATIONS[operation_id]["responses"][status].get("links", {})
    return {name: link["operationId"] for name, link in links.items()}


def test_the_document_links_an_order_to_its_reads_and_a_proof_to_the_history() -> None:
    """create → read → events → QR → history, and challenge → session → history: integrators (and the stateful
    fuzzing, tests/service/fuzz_workflow.py) follow these links."""
    reads_of_an_order = {"getOrder", "orderEvents", "orderQr", "listOrders"}
    assert reads_of_an_order <= set(links_of("createOrder", "201").values())
    assert reads_of_an_order - {"getOrder"} <= set(links_of("getOrder", "200").values())
    assert set(links_of("historyChallenge", "200").values()) == {"historySession"}
    assert set(links_of("historySession", "200").values()) == {"listOrders"}


def test_every_link_names_an_operation_and_what_it_takes() -> None:
    links = [link for operation in OPERATIONS.values() for response in operation["responses"].values()
             for link in response.get("links", {}).values()]
    assert links
    for link in links:
        target = OPERATIONS[link["operationId"]]
        assert set(link.get("parameters", {})) <= {parameter["name"] for parameter in target.get("parameters", [])}
        body = link.get("requestBody", {})
        if body:
            model = target["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
            assert set(body) <= set(SCHEMAS[model]["properties"]), (link, model)
        assert all(value.startswith("$response.body#/") for value in [*link.get("parameters", {}).values(),
                                                                       *body.values()]), link
