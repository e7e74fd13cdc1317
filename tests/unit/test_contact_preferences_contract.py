"""consent.preferences_set version 2: partial updates, explicit clears, coherent fields,
real time zones, and version 1 read as what it meant."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from jsonschema import Draft202012Validator

from schemas import CustomerRef, Envelope
from schemas.codec import decode_event, encode_event
from schemas.errors import EventValidationError
from schemas.json_schema import event_schema
from schemas.payloads.profile import ContactPreferencesSet

AT = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def wire(payload: dict[str, object], version: int = 2) -> bytes:
    return orjson.dumps(
        {
            "event_id": "31fda21e-39f0-4996-81f0-1e9a83bb633f",
            "type": "consent.preferences_set",
            "schema_version": version,
            "occurred_at": "2026-03-01T09:30:00Z",
            "source": {"system": "preference-centre", "channel": "consent"},
            "customer": {"customer_id": "cust-1"},
            "payload": payload,
        }
    )


def test_an_update_carries_only_what_it_sets_and_a_null_travels_as_cleared() -> None:
    update = ContactPreferencesSet(quiet_hours={"start": "22:00", "end": "07:00"}, topics=None)
    event = Envelope.new(update, customer=CustomerRef(customer_id="cust-1"), occurred_at=AT)
    payload = orjson.loads(encode_event(event))["payload"]
    assert payload == {
        "quiet_hours": {"start": "22:00:00", "end": "07:00:00", "timezone": "UTC"},
        "cleared": ["topics"],
    }
    decoded = decode_event(encode_event(event)).payload
    assert isinstance(decoded, ContactPreferencesSet)
    assert decoded.allowed_channels is None and decoded.cleared == ("topics",)
    assert decoded.stated() == {"quiet_hours": payload["quiet_hours"]}


@pytest.mark.parametrize(
    ("payload", "named"),
    [
        ({}, "sets or clears no preference"),
        ({"allowed_channels": [], "max_contacts_per_week": 2}, "weekly cap says nothing"),
        ({"topics": ["a"], "unwanted_topics": ["a", "b"]}, "both wanted and unwanted: a"),
        ({"topics": ["a"], "cleared": ["topics"]}, "topics: both set and cleared"),
        ({"quiet_hours": {"start": "21:00", "end": "21:00"}}, "quiet hours need a window"),
        (
            {"quiet_hours": {"start": "21:00", "end": "08:00", "timezone": "Europe/Berlln"}},
            "'Europe/Berlln' is not an IANA time zone",
        ),
        ({"max_contacts_per_week": 0}, "greater than or equal to 1"),
    ],
)
def test_incoherent_preferences_are_refused_naming_the_rule(
    payload: dict[str, object], named: str
) -> None:
    with pytest.raises(EventValidationError, match=named):
        decode_event(wire(payload))


def test_the_json_schema_says_the_cross_field_rules_it_can() -> None:
    validator = Draft202012Validator(event_schema("consent.preferences_set"))
    assert validator.is_valid(orjson.loads(wire({"allowed_channels": ["email"]})))
    assert not validator.is_valid(orjson.loads(wire({})))
    assert not validator.is_valid(
        orjson.loads(wire({"allowed_channels": [], "max_contacts_per_week": 2}))
    )
    zone = {"quiet_hours": {"start": "21:00:00", "end": "08:00:00", "timezone": "Mars/Base"}}
    assert not validator.is_valid(orjson.loads(wire(zone)))


@pytest.mark.parametrize(
    ("v1", "stated", "cleared"),
    [
        # v1's empty list was its default: not stated. Its only "no contact" was a cap of 0.
        (
            {"allowed_channels": [], "max_contacts_per_week": 3, "topics": []},
            {"max_contacts_per_week": 3},
            {"allowed_channels", "topics", "unwanted_topics", "quiet_hours"},
        ),
        (
            {"allowed_channels": ["email"], "max_contacts_per_week": 0, "topics": ["x"]},
            {"allowed_channels": [], "topics": ["x"]},
            {"max_contacts_per_week", "unwanted_topics", "quiet_hours"},
        ),
        (
            {"allowed_channels": ["email", "sales"], "topics": []},
            {"allowed_channels": ["email", "sales"]},
            {"max_contacts_per_week", "topics", "unwanted_topics", "quiet_hours"},
        ),
    ],
)
def test_a_version_1_event_is_read_as_the_whole_set_it_stated(
    v1: dict[str, object], stated: dict[str, object], cleared: set[str]
) -> None:
    payload = decode_event(wire(v1, version=1)).payload
    assert isinstance(payload, ContactPreferencesSet)
    assert payload.stated() == stated
    assert set(payload.cleared) == cleared
