"""Per-order metadata, reference and redirect_url, without the network: what OrderRequest accepts and refuses,
the operator's redirect hosts, and migration 0008 up and down on SQLite. Against the running service (stored,
returned by every read, carried by webhooks, shown by the checkout) in tests/service/test_order_metadata.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from pydantic import ValidationError
from sqlalchemy import inspect

from service.config import Settings
from service.container import order_rules
from service.domain.orders import (
    MAX_METADATA_BYTES,
    MAX_REFERENCE_CHARS,
    OrderRejected,
    OrderRequest,
    PlaceOrder,
)
from service.storage.database import MIGRATIONS_DIR, make_engine, migrate

ADDRESS = "0x1"


def order(**extra: Any) -> dict[str, Any]:
    return {"starknet_address": ADDRESS, "vusd_amount": "5.00", **extra}


def test_metadata_reference_and_redirect_are_optional_and_kept_as_given() -> None:
    metadata = {"cart": [{"sku": "A-1", "qty": 2}], "customer": {"id": 42, "tier": "gold"}, "note": "été"}
    request = OrderRequest.model_validate(order(metadata=metadata, reference="INV-2026-0001",
                                                redirect_url="https://shop.example/thanks?o=1"))
    assert (request.metadata, request.reference, request.redirect_url) == (
        metadata, "INV-2026-0001", "https://shop.example/thanks?o=1")
    plain = OrderRequest.model_validate(order())
    assert (plain.metadata, plain.reference, plain.redirect_url) == (None, None, None)


@pytest.mark.parametrize("extra", [
    {"metadata": {"blob": "x" * MAX_METADATA_BYTES}},
    {"metadata": {"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}}},  # six levels of objects
    {"metadata": ["not", "an", "object"]},
    {"metadata": "text"},
    {"reference": ""},
    {"reference": "x" * (MAX_REFERENCE_CHARS + 1)},
    {"reference": "line\nbreak"},
    {"reference": 12345},
    {"reference": "lone \ud800 surrogate"},
    {"metadata": {"x": float("nan")}},
    {"metadata": {"x": "lone \udc00"}},
    {"redirect_url": "https://shop.example/\u00e9t\u00e9"},
    {"redirect_url": "javascript:alert(1)"},
    {"redirect_url": "ftp://shop.example/"},
    {"redirect_url": "//shop.example/thanks"},
    {"redirect_url": "/thanks"},
    {"redirect_url": "https://user:pw@shop.example/"},
    {"redirect_url": "https://shop.example/a b"},
    {"redirect_url": "https://[::1/"},
    # Browsers read a backslash as "/": this one would lead to evil.example past a ".shop.example" allow-list.
    {"redirect_url": "https://evil.example\\.shop.example/thanks"},
    {"redirect_url": "https://evil.example%5c.shop.example/"},
    {"redirect_url": "https://shop.example\\@evil.example/"},
], ids=lambda extra: next(iter(extra)))
def test_out_of_bounds_values_are_refused(extra: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        OrderRequest.model_validate(order(**extra))


def test_metadata_just_under_the_bound_is_kept() -> None:
    blob = "x" * (MAX_METADATA_BYTES - len(json.dumps({"blob": ""}, separators=(",", ":"))))
    assert OrderRequest.model_validate(order(metadata={"blob": blob})).metadata == {"blob": blob}


def check_redirect(hosts: list[str] | None, url: str) -> None:
    place = PlaceOrder.__new__(PlaceOrder)
    place.rules = order_rules(Settings(redirect_hosts=hosts or []))
    place._check_redirect(url)


@pytest.mark.parametrize(("hosts", "url"), [
    (["shop.example"], "https://shop.example/thanks"),
    (["shop.example"], "http://SHOP.example:8080/x"),
    ([".shop.example"], "https://eu.shop.example/x"),
])
def test_a_redirect_to_an_allowed_host_passes(hosts: list[str], url: str) -> None:
    check_redirect(hosts, url)


@pytest.mark.parametrize(("hosts", "url"), [
    (None, "https://shop.example/thanks"),
    ([], "https://shop.example/thanks"),
    (["shop.example"], "https://evil.example/"),
    (["shop.example"], "https://shop.example.evil.example/"),
    (["shop.example"], "https://eu.shop.example/"),
    ([".shop.example"], "https://evilshop.example/"),
])
def test_a_redirect_elsewhere_is_refused_with_what_to_do(hosts: list[str] | None, url: str) -> None:
    with pytest.raises(OrderRejected) as refused:
        check_redirect(hosts, url)
    assert refused.value.code == "redirect_not_allowed" and refused.value.http_status == 400
    assert refused.value.hint


def test_migration_0008_adds_and_removes_the_columns(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'volta.sqlite'}"
    migrate(url)
    engine = make_engine(url)
    columns = {column["name"] for column in inspect(engine).get_columns("orders")}
    assert {"metadata_json", "reference", "redirect_url"} <= columns
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url)
    command.downgrade(config, "0007")
    engine.dispose()
    engine = make_engine(url)
    columns = {column["name"] for column in inspect(engine).get_columns("orders")}
    assert not {"metadata_json", "reference", "redirect_url"} & columns
    engine.dispose()
