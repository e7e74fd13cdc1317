"""The exported JSON Schemas describe exactly what the canonical encoding writes."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from schemas import REGISTRY, encode_event
from schemas.catalogue import example_event
from schemas.json_schema import all_event_schemas, event_schema, schema_file_name
from tests.strategies import events

EXPORTED = all_event_schemas()


def validator(event_type: str, version: int | None = None) -> Draft202012Validator:
    return Draft202012Validator(event_schema(event_type, version))


def test_every_version_of_every_type_is_exported_and_indexed() -> None:
    expected = {
        schema_file_name(entry.name, version)
        for entry in REGISTRY.types()
        for version in entry.models
    }
    assert set(EXPORTED) == expected | {"index.json"}
    index = EXPORTED["index.json"]["event_types"]
    assert index["call_center.call"] == {
        "current_version": 2,
        "versions": {"1": "call_center.call.v1.json", "2": "call_center.call.v2.json"},
    }


@pytest.mark.parametrize("name", sorted(set(EXPORTED) - {"index.json"}))
def test_every_schema_is_a_valid_draft_2020_12_schema(name: str) -> None:
    Draft202012Validator.check_schema(EXPORTED[name])


@pytest.mark.parametrize("event_type", REGISTRY.known_types())
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_encoded_event_satisfies_its_schema(event_type: str, data: st.DataObject) -> None:
    event = data.draw(events(event_type))
    validator(event_type).validate(orjson.loads(encode_event(event)))


def test_a_superseded_version_is_exported_as_deprecated_and_validates_old_events() -> None:
    schema = event_schema("call_center.call", 1)
    assert schema["deprecated"] is True
    assert schema["properties"]["schema_version"]["const"] == 1
    old_call = example_event("call_center.call", 1)
    validator("call_center.call", 1).validate(old_call)
    assert not validator("call_center.call").is_valid(old_call)


def test_mapping_keys_are_constrained_like_the_decoder_constrains_them() -> None:
    visit = example_event("web.visited")
    visit["payload"]["utm"] = {"bad\x00key": "x"}
    assert not validator("web.visited").is_valid(visit)


def test_amounts_are_decimal_strings() -> None:
    purchase = example_event("commerce.purchased")
    validator("commerce.purchased").validate(purchase)
    purchase["payload"]["amount"] = 149.9
    assert not validator("commerce.purchased").is_valid(purchase)
