"""The envelope and the call-center payload: what producers and the worker rely on."""

from __future__ import annotations

import copy
import pickle
import uuid
from datetime import UTC, datetime

import orjson
import pytest

from schemas import (
    REGISTRY,
    CustomerRef,
    Envelope,
    EventValidationError,
    Source,
    UnknownEventType,
    build_event,
    decode_event,
    encode_event,
)
from schemas.errors import MISSING
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
    assert caught.value.problems == [
        ("payload.duration_seconds", -5, "Input should be greater than or equal to 0")
    ]
    assert "invalid call_center.call event: payload.duration_seconds=-5" in str(caught.value)


def test_unknown_type_lists_known_types() -> None:
    raw = encode_event(a_call()).replace(b"call_center.call", b"fax.sent")
    with pytest.raises(UnknownEventType, match=r"known types: call_center\.call, commerce"):
        decode_event(raw)


def test_a_missing_schema_version_is_an_error_not_version_1() -> None:
    raw = orjson.loads(encode_event(a_call()))
    del raw["schema_version"]
    with pytest.raises(EventValidationError) as caught:
        decode_event(orjson.dumps(raw))
    assert caught.value.problems == [("schema_version", MISSING, "Field required")]


def test_an_unknown_version_lists_the_known_ones() -> None:
    raw = encode_event(a_call()).replace(b'"schema_version":2', b'"schema_version":3')
    with pytest.raises(UnknownEventType, match="known versions: 1, 2"):
        decode_event(raw)


def test_naive_timestamp_is_rejected() -> None:
    with pytest.raises(EventValidationError, match=r"occurred_at=.*timezone"):
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
    assert first.type == "call_center.call" and first.schema_version == 2
    assert isinstance(first.event_id, uuid.UUID) and first.event_id != second.event_id


def test_every_way_of_building_an_event_gives_the_decoded_class() -> None:
    built = a_call()
    direct = Envelope(**dict(built))
    assert type(direct) is type(built) is REGISTRY.event_model("call_center.call")
    assert isinstance(built, Envelope)
    assert direct == built == decode_event(encode_event(built))


def test_events_hash_by_their_idempotency_key() -> None:
    event = a_call()
    assert {event, decode_event(encode_event(event))} == {event}


def test_build_event_validates_plain_data_and_names_every_problem() -> None:
    with pytest.raises(EventValidationError) as caught:
        build_event(
            "call_center.call",
            {"direction": "sideways", "duration_seconds": 5, "agent": "  ", "topic": "t"},
            customer={},
            occurred_at="2026-03-01T09:30:00",
        )
    assert caught.value.problems == [
        ("occurred_at", "2026-03-01T09:30:00", "Input should have timezone info"),
        (
            "customer",
            {},
            "a customer reference needs customer_id or at least one identifier "
            "(email, phone, external_ids, social_handles, anonymous_id)",
        ),
        ("payload.direction", "sideways", "Input should be 'inbound' or 'outbound'"),
        ("payload.agent", "  ", "String should have at least 1 character"),
        ("payload.outcome", MISSING, "Field required"),
    ]


def test_build_event_gives_the_same_event_as_new() -> None:
    event = a_call()
    built = build_event(
        event.type,
        event.payload.model_dump(),
        customer={"customer_id": "c-1"},
        occurred_at="2026-03-01T09:30:00Z",
        event_id=event.event_id,
    )
    assert built == event


def test_build_event_refuses_an_unknown_type_listing_the_known_ones() -> None:
    with pytest.raises(UnknownEventType, match=r"unknown event type 'fax\.sent'; known types: "):
        build_event(
            "fax.sent", {}, customer={"customer_id": "c"}, occurred_at="2026-01-01T00:00:00Z"
        )


def test_nul_and_overlong_text_are_refused_with_a_plain_rule() -> None:
    payload = {**a_call().payload.model_dump(), "notes_summary": "ok\x00", "topic": "x" * 201}
    with pytest.raises(EventValidationError) as caught:
        build_event(
            "call_center.call",
            payload,
            customer={"customer_id": "c"},
            occurred_at="2026-01-01T00:00:00Z",
        )
    assert [(path, rule) for path, _, rule in caught.value.problems] == [
        ("payload.topic", "String should have at most 200 characters"),
        ("payload.notes_summary", "must not contain a NUL character (PostgreSQL cannot store one)"),
    ]


def test_list_positions_are_shown_as_indexes() -> None:
    with pytest.raises(EventValidationError, match=r"payload\.items\[1\]\.quantity=0"):
        build_event(
            "commerce.purchased",
            {
                "order_id": "o",
                "amount": "3",
                "currency": "EUR",
                "items": [
                    {"sku": "a", "quantity": 1, "unit_price": "1"},
                    {"sku": "b", "quantity": 0, "unit_price": "1"},
                ],
            },
            customer={"customer_id": "c"},
            occurred_at="2026-01-01T00:00:00Z",
        )


def test_source_channel_defaults_to_the_type_channel() -> None:
    assert a_call().source == Source(system="rapport", channel=CallCenterCall.channel)


def test_envelope_validates_plain_data_as_the_event_model_of_its_type() -> None:
    event = a_call()
    wire = encode_event(event)
    assert Envelope.model_validate(orjson.loads(wire)) == event
    assert Envelope.model_validate_json(wire) == event


def test_events_survive_pickle_and_deep_copy() -> None:
    event = a_call()
    assert pickle.loads(pickle.dumps(event)) == event
    assert copy.deepcopy(event) == event


@pytest.mark.parametrize(
    ("occurred_at", "rule"),
    [
        ("2026-03-01T10:00:00+18:00", "the UTC offset must be between -15:59 and +15:59"),
        ("2026-03-01T10:00:00-16:00", "the UTC offset must be between -15:59 and +15:59"),
        ("0001-01-01T00:00:00+05:00", "the time must fall within the years 1 to 9999 in UTC"),
        ("9999-12-31T23:30:00-05:00", "the time must fall within the years 1 to 9999 in UTC"),
    ],
)
def test_times_postgresql_cannot_store_are_refused_at_the_edge(occurred_at: str, rule: str) -> None:
    raw = orjson.loads(encode_event(a_call()))
    raw["occurred_at"] = occurred_at
    with pytest.raises(EventValidationError) as caught:
        decode_event(orjson.dumps(raw))
    assert caught.value.problems == [("occurred_at", occurred_at, rule)]


def test_offsets_postgresql_accepts_and_years_at_the_edges_in_utc_are_kept() -> None:
    for occurred_at in ("2026-03-01T10:00:00+15:59", "0001-01-01T00:00:00Z", "9999-12-31T23:59Z"):
        raw = orjson.loads(encode_event(a_call()))
        raw["occurred_at"] = occurred_at
        assert decode_event(orjson.dumps(raw)).occurred_at == datetime.fromisoformat(occurred_at)


def test_an_integer_beyond_64_bits_is_refused_not_turned_into_a_float() -> None:
    event = build_event(
        "custom.event",
        {"name": "visit", "properties": {"n": 2**63 - 1}},
        customer={"customer_id": "c-1"},
        occurred_at="2026-03-01T10:00:00Z",
    )
    assert event.payload.properties["n"] == 2**63 - 1  # type: ignore[attr-defined]
    wire = encode_event(event).replace(b'"n":9223372036854775807', b'"n":9223372036854775808')
    with pytest.raises(EventValidationError, match="'n' is an integer beyond 64 bits"):
        decode_event(wire)
