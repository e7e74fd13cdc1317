"""An invalid event is refused before it could reach Kafka, with the field it breaks."""

from __future__ import annotations

import copy
import gc
import pickle
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from schemas import ContractError, CustomerRef, Envelope, EventValidationError, codec, decode_event
from schemas.codec import encode_verified
from schemas.errors import MISSING
from schemas.payloads.call_center import CallCenterCall
from schemas.provenance import as_validated, unvalidated_models


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


# -- what the encoder need not decode (schemas.provenance) --------------------------------
def test_a_payload_changed_without_validation_is_refused_inside_a_new_event() -> None:
    event = a_call()
    broken = event.payload.model_copy(update={"duration_seconds": -1})
    rebuilt = Envelope.new(broken, customer=event.customer, occurred_at=event.occurred_at)
    with pytest.raises(EventValidationError, match="duration_seconds"):
        encode_verified(rebuilt)


@pytest.mark.parametrize(
    "clone",
    [copy.copy, copy.deepcopy, lambda model: pickle.loads(pickle.dumps(model))],
    ids=["copy", "deepcopy", "pickle"],
)
def test_a_copy_of_a_model_changed_without_validation_is_refused(
    clone: Callable[[Any], Any],
) -> None:
    event = a_call()
    cloned = clone(event.model_copy(update={"occurred_at": datetime(2026, 3, 1, 9, 30)}))
    gc.collect()  # the original is gone: only the copy says what it is
    with pytest.raises(EventValidationError, match="occurred_at"):
        encode_verified(cloned)


def test_a_valid_copy_or_pickle_is_vouched_for() -> None:
    event = a_call()
    for cloned in (copy.copy(event), copy.deepcopy(event), pickle.loads(pickle.dumps(event))):
        assert cloned == event and as_validated(cloned)


def test_a_subclass_of_a_contract_model_is_decoded_not_trusted() -> None:
    class LaxCall(CallCenterCall):
        duration_seconds: int  # type: ignore[assignment]  # no lower bound

    event = a_call()
    lax = LaxCall.model_validate({**event.payload.model_dump(), "duration_seconds": -1})
    smuggled = type(event)(**{**dict(event), "payload": lax})  # validation takes it as it is
    assert not as_validated(smuggled)
    with pytest.raises(EventValidationError, match="duration_seconds"):
        encode_verified(smuggled)


def test_valid_events_are_decoded_only_while_an_unvalidated_model_lives(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    decoded: list[bytes] = []
    real_decode = codec.decode_event

    def counted(data: bytes) -> Envelope:
        decoded.append(data)
        return real_decode(data)

    monkeypatch.setattr(codec, "decode_event", counted)
    gc.collect()
    valid = a_call()
    encode_verified(valid)
    assert decoded == []
    hollow = type(valid).model_construct(type="call_center.call")
    encode_verified(valid)
    assert len(decoded) == 1 and unvalidated_models() >= 1
    del hollow
    gc.collect()
    encode_verified(valid)
    assert len(decoded) == 1 and unvalidated_models() == 0
