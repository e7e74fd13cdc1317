"""History written under an old schema version still replays, as the current version."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import pytest

from schemas import (
    REGISTRY,
    CustomerRef,
    Envelope,
    EventValidationError,
    decode_event,
    encode_event,
)
from schemas.errors import RegistryError
from schemas.payloads.call_center import (
    CallCenterCall,
    CallCenterCallV1,
    CallOutcome,
    upcast_v1_to_v2,
)
from schemas.registry import Registry, Superseded

# A call as the first telephony integration published it: stored bytes, never re-encoded.
STORED_V1_CALL = (
    b'{"event_id":"0b5f4a52-3a55-4c57-9d0e-2f1c1c1d9a01","type":"call_center.call",'
    b'"schema_version":1,"occurred_at":"2025-06-02T14:05:09+07:00",'
    b'"source":{"system":"legacy-pbx","channel":"call_center"},'
    b'"customer":{"customer_id":"cust-042"},'
    b'"payload":{"direction":"inbound","duration_ms":184600,"agent":"Hana Kim",'
    b'"resolved":true,"topic":"delivery","notes":"parcel late; rebooked the slot"}}'
)


def test_a_stored_v1_call_replays_as_the_current_version() -> None:
    event = decode_event(STORED_V1_CALL)
    assert event.schema_version == REGISTRY.current_version("call_center.call") == 2
    assert event.payload == CallCenterCall(
        direction="inbound",
        duration_seconds=185,
        agent="Hana Kim",
        outcome=CallOutcome.RESOLVED,
        topic="delivery",
        notes_summary="parcel late; rebooked the slot",
    )
    assert decode_event(encode_event(event)) == event  # and re-encodes as version 2


def test_the_upcaster_is_pure() -> None:
    v1 = CallCenterCallV1.examples()[0]
    before = copy.deepcopy(v1)
    assert upcast_v1_to_v2(v1) == upcast_v1_to_v2(v1)
    assert v1 == before


def test_an_unresolved_v1_call_becomes_outcome_other_and_rounds_half_up() -> None:
    v2 = upcast_v1_to_v2(
        {
            "direction": "outbound",
            "duration_ms": 1500,
            "agent": "a",
            "resolved": False,
            "topic": "t",
        }
    )
    assert v2 == {
        "direction": "outbound",
        "duration_seconds": 2,
        "agent": "a",
        "outcome": "other",
        "topic": "t",
    }


def test_an_invalid_v1_payload_is_reported_in_v1_terms() -> None:
    raw = STORED_V1_CALL.replace(b'"duration_ms":184600', b'"duration_ms":-1')
    with pytest.raises(EventValidationError) as caught:
        decode_event(raw)
    assert caught.value.version == 1
    assert caught.value.problems == [
        ("payload.duration_ms", -1, "Input should be greater than or equal to 0")
    ]
    assert str(caught.value).startswith("invalid call_center.call event (v1): ")


def test_every_version_of_every_type_has_a_pinned_event_model() -> None:
    for entry in REGISTRY.types():
        for version, model in entry.models.items():
            event_model = REGISTRY.event_model(entry.name, version)
            schema = event_model.model_json_schema()
            assert schema["properties"]["type"]["const"] == entry.name
            assert schema["properties"]["schema_version"]["const"] == version
            assert event_model.model_fields["payload"].annotation is model


def test_the_registry_refuses_a_gap_in_versions() -> None:
    with pytest.raises(RegistryError, match=r"versions \[2\], not 1..N"):
        Registry([CallCenterCall])


def test_the_registry_refuses_a_superseded_version_of_an_unknown_type() -> None:
    with pytest.raises(RegistryError, match=r"supersedes unregistered type call_center\.call"):
        Registry([], [Superseded(CallCenterCallV1, upcast_v1_to_v2)])


def test_the_registry_refuses_a_type_registered_twice() -> None:
    with pytest.raises(RegistryError, match="registered twice"):
        Registry([CallCenterCall, CallCenterCall])


def test_producers_cannot_build_an_event_around_a_superseded_payload() -> None:
    old = CallCenterCallV1.model_validate(CallCenterCallV1.examples()[0])
    with pytest.raises(EventValidationError) as caught:
        Envelope.new(
            old, customer=CustomerRef(customer_id="c"), occurred_at=datetime(2026, 1, 1, tzinfo=UTC)
        )
    assert caught.value.problems == [
        (
            "payload",
            "CallCenterCallV1",
            "version 1 is superseded: build a CallCenterCall (version 2)",
        )
    ]
