"""Every registered type survives the wire: encode, decode, and the same event comes back.

The types are read from the registry, so a newly registered type is tested without being
listed here, and fails until it has an example (see tests/strategies.py).
"""

from __future__ import annotations

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import REGISTRY, decode_event, encode_event, event_from_dict
from schemas.registry import EventType
from tests.strategies import events, payload_inputs, payloads

property_test = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

SUPERSEDED = [(entry, version) for entry in REGISTRY.types() for version in sorted(entry.upcasters)]


@pytest.mark.parametrize(
    "model", REGISTRY.all_models(), ids=lambda m: f"{m.event_type}.v{m.schema_version}"
)
def test_every_registered_version_has_a_valid_example_and_a_strategy(model: type) -> None:
    for example in model.examples():
        model.model_validate(example)
    payload_inputs(model)  # raises when the example is missing or a field type is unknown


@pytest.mark.parametrize("event_type", REGISTRY.known_types())
@property_test
@given(data=st.data())
def test_round_trip(event_type: str, data: st.DataObject) -> None:
    event = data.draw(events(event_type))
    wire = encode_event(event)
    decoded = decode_event(wire)
    assert decoded == event
    assert type(decoded) is type(event)
    assert encode_event(decoded) == wire  # one canonical encoding: stable bytes
    assert event_from_dict(orjson.loads(wire)) == event  # the general path agrees


@pytest.mark.parametrize(
    ("entry", "version"), SUPERSEDED, ids=[f"{e.name}.v{v}" for e, v in SUPERSEDED]
)
@property_test
@given(data=st.data())
def test_every_valid_old_payload_upcasts_to_a_valid_next_version(
    entry: EventType, version: int, data: st.DataObject
) -> None:
    old = data.draw(payloads(entry.models[version]))
    upcast = entry.upcasters[version](old.model_dump(mode="json", exclude_none=True))
    entry.models[version + 1].model_validate(upcast)


def test_there_is_a_superseded_version_to_test() -> None:
    assert SUPERSEDED, "the upcasting property tests above would test nothing"
