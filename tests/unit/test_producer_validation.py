"""An invalid event is refused before it could reach Kafka, with the field it breaks."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from schemas import ContractError, CustomerRef, Envelope, EventValidationError, decode_event
from schemas.codec import encode_verified
from schemas.errors import MISSING
from schemas.payloads.call_center import CallCenterCall


def a_call() -> Envelope:
    return Envelope.new(
        CallCenterCall.model_validate(CallCenterCall.examples()[0]),
        customer=CustomerRef(customer_id="c-1"),
        occurred_at=datetime(2026, 3, 1, 9, 30, tzinfo=UTC),
    )


def test_a_valid_event_is_encoded_as_usual() -> None:
    event = a_call()
    assert decode_event(encode_verified(event)) == event


def test_an_event_changed_without_validation_is_refused() -> None:
    naive = a_call().model_copy(update={"occurred_at": datetime(2026, 3, 1, 9, 30)})
    with pytest.raises(EventValidationError, match=r"occurred_at=.*timezone info"):
        encode_verified(naive)


def test_a_payload_changed_without_validation_is_refused() -> None:
    event = a_call()
    broken = event.model_copy(
        update={"payload": event.payload.model_copy(update={"duration_seconds": -1})}
    )
    with pytest.raises(EventValidationError) as caught:
        encode_verified(broken)
    assert caught.value.problems == [
        ("payload.duration_seconds", -1, "Input should be greater than or equal to 0")
    ]


def test_an_event_constructed_without_fields_is_refused() -> None:
    hollow = type(a_call()).model_construct(type="call_center.call")
    with pytest.raises(EventValidationError) as caught:
        encode_verified(hollow)
    assert ("event_id", MISSING, "Field required") in caught.value.problems


def test_only_events_are_published() -> None:
    with pytest.raises(ContractError, match="only events"):
        encode_verified({"type": "call_center.call"})  # type: ignore[arg-type]
