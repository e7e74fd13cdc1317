"""The envelope and the call-center payload: what producers and the worker rely on."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from schemas import (
    CustomerRef,
    Envelope,
    EventValidationError,
    UnknownEventType,
    decode_event,
    encode_event,
)
from schemas.payloads.call_center import CallCenterCall


def a_call(**overrides: object) -> Envelope:
    fields: dict[str, object] = dict(
        direction="inbound",
        duration_seconds=125,
        agent="Linh Tran",
        outcome="resolved",
        topic="billing",
    )
    fields.update(overrides)
    return Envelope.new(
        CallCenterCall.model_validate(fields),
        customer=CustomerRef(customer_id="c-1"),
        occurred_at=datetime(2026, 3, 1, 9, 30, tzinfo=UTC),
    )


def test_round_trip_keeps_every_field() -> None:
    event = a_call(queue="billing", notes_summary="asked for an itemised bill")
    assert decode_event(encode_event(event)) == event


def test_event_is_immutable() -> None:
    event = a_call()
    with pytest.raises(Exception, match="frozen"):
        event.type = "other"  # type: ignore[misc]


def test_invalid_payload_names_field_value_and_rule() -> None:
    raw = encode_event(a_call()).replace(b'"duration_seconds":125', b'"duration_seconds":-5')
    with pytest.raises(EventValidationError) as caught:
        decode_event(raw)
    assert caught.value.problems[0][:2] == ("payload.duration_seconds", -5)
    assert "greater than or equal to 0" in str(caught.value)


def test_unknown_type_lists_known_types() -> None:
    raw = encode_event(a_call()).replace(b"call_center.call", b"fax.sent")
    with pytest.raises(UnknownEventType, match=r"known types: call_center\.call"):
        decode_event(raw)


def test_naive_timestamp_is_rejected() -> None:
    with pytest.raises(Exception, match="timezone"):
        Envelope.new(
            CallCenterCall(
                direction="inbound", duration_seconds=1, agent="a", outcome="resolved", topic="t"
            ),
            customer=CustomerRef(customer_id="c"),
            occurred_at=datetime(2026, 1, 1),
        )


def test_customer_reference_needs_an_identifier() -> None:
    with pytest.raises(Exception, match="needs customer_id or at least one identifier"):
        CustomerRef()


def test_partition_key_prefers_customer_id_then_strongest_identifier() -> None:
    assert CustomerRef(customer_id="c-9", email="a@b.c").partition_key == "c-9"
    assert CustomerRef(email="A@B.c", anonymous_id="x").partition_key == "email:a@b.c"


def test_new_assigns_type_version_and_fresh_ids() -> None:
    first, second = a_call(), a_call()
    assert first.type == "call_center.call" and first.schema_version == 1
    assert isinstance(first.event_id, uuid.UUID) and first.event_id != second.event_id
