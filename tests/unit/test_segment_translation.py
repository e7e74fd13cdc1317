"""Segment messages → Rapport events, without HTTP or Kafka."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from collector.segment import SEGMENT_NAMESPACE, MappingError, SegmentTranslator, TrackMapping

RECEIVED = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def translator(mapping: TrackMapping | None = None) -> SegmentTranslator:
    return SegmentTranslator("shop", RECEIVED, mapping or TrackMapping.load())


def test_clock_skew_is_taken_out_of_event_time() -> None:
    t = translator()
    [event] = t.message(
        {
            "type": "track",
            "userId": "u",
            "event": "X",
            "timestamp": "2020-01-01T00:00:00Z",  # the device clock is years off…
            "sentAt": "2020-01-01T00:05:00Z",  # …but consistently so
        }
    )
    assert event.occurred_at == RECEIVED - timedelta(minutes=5)
    assert event.received_at == RECEIVED


def test_message_ids_become_stable_event_ids() -> None:
    given = uuid.uuid4()
    [a] = translator().message(
        {"type": "track", "userId": "u", "event": "X", "messageId": str(given)}
    )
    [b] = translator().message({"type": "track", "userId": "u", "event": "X", "messageId": "m-1"})
    [c] = translator().message({"type": "track", "userId": "u", "event": "X", "messageId": "m-1"})
    [d] = translator().message({"type": "track", "userId": "u", "event": "X"})
    [e] = translator().message({"type": "track", "userId": "u", "event": "X"})
    assert a.event_id == given
    assert b.event_id == c.event_id == uuid.uuid5(SEGMENT_NAMESPACE, "shop/m-1")
    assert d.event_id == e.event_id  # no messageId: derived from the content


def test_identify_updates_the_profile_and_links_identities() -> None:
    profile, link = translator().message(
        {
            "type": "identify",
            "userId": "u1",
            "anonymousId": "a1",
            "traits": {"address": {"city": "Hue"}, "tags": ["a"]},
        }
    )
    assert profile.type == "profile.updated"
    assert profile.payload.traits == {"address.city": "Hue", "tags": '["a"]'}
    assert link.type == "identity.linked" and link.event_id != profile.event_id
    assert (link.payload.identifier, link.payload.linked_to) == ("anon:a1", "customer:u1")


def test_identify_traits_in_context_are_kept_and_their_email_and_phone_join_the_customer() -> None:
    [profile] = translator().message(
        {
            "type": "identify",
            "userId": "u1",
            # Where analytics.js-compatible mobile libraries put them:
            "context": {
                "traits": {"email": "An@Example.com", "phone": "0900 000 016", "vip": True}
            },
        }
    )
    assert profile.payload.traits == {
        "email": "An@Example.com",
        "phone": "0900 000 016",
        "vip": True,
    }
    assert profile.customer.identifiers() == [
        "customer:u1",
        "email:an@example.com",
        "phone:0900 000 016",
    ]
    [both] = translator().message(
        {
            "type": "identify",
            "userId": "u1",
            "traits": {"vip": False, "email": "not an address"},
            "context": {"traits": {"vip": True, "city": "Hue"}},
        }
    )
    assert both.payload.traits == {"vip": False, "city": "Hue", "email": "not an address"}
    assert both.customer.identifiers() == ["customer:u1"]  # a malformed e-mail stays a trait


def test_mapped_track_keeps_unused_properties_in_context() -> None:
    [event] = translator().message(
        {
            "type": "track",
            "userId": "u",
            "event": "Order Completed",
            "properties": {"order_id": "o", "revenue": "9.5", "tax": 1, "products": []},
            "context": {"locale": "vi-VN"},
        }
    )
    assert event.type == "commerce.purchased"
    assert (event.payload.amount, event.payload.currency) == (9.5, "USD")  # spec default
    assert event.context == {"locale": "vi-VN", "properties": {"tax": 1}}


def test_problems_name_the_path_in_the_request_body() -> None:
    t = translator()
    t.batch(
        {
            "batch": [
                {"type": "track", "event": "X"},
                {"type": "page", "userId": "u"},
                {
                    "type": "track",
                    "userId": "u",
                    "event": "Order Completed",
                    "properties": {
                        "order_id": "o",
                        "total": 1,
                        "products": [{"sku": "s", "price": "free"}],
                    },
                },
                {"type": "track", "userId": "u", "event": "X", "timestamp": "yesterday"},
            ]
        }
    )
    paths = {p.path for p in t.problems}
    assert paths == {
        "batch[0].userId",
        "batch[1].properties.url",
        "batch[2].properties.products[0].price",
        "batch[3].timestamp",
    }


def test_a_mapping_file_extends_the_builtin_one(tmp_path: Path) -> None:
    path = tmp_path / "mapping.toml"
    path.write_text(
        '[track."Ticket Opened"]\ntype = "support.ticket_opened"\n'
        'fields.ticket_id = "properties.id"\nfields.subject = "properties.title"\n'
    )
    mapping = TrackMapping.load(path)
    assert {"Order Completed", "Ticket Opened"} <= set(mapping.rules)
    [event] = translator(mapping).message(
        {
            "type": "track",
            "userId": "u",
            "event": "Ticket Opened",
            "properties": {"id": "T1", "title": "help"},
        }
    )
    assert event.type == "support.ticket_opened" and event.payload.ticket_id == "T1"

    path.write_text('[track."X"]\ntype = "support.ticket_opened"\nfields.nope = "properties.id"\n')
    with pytest.raises(MappingError, match="has no field"):
        TrackMapping.load(path)


def test_the_source_system_is_the_write_keys_whatever_the_message_says() -> None:
    [event] = translator().message(
        {
            "type": "track",
            "userId": "u",
            "event": "X",
            "context": {"library": {"name": "shopify"}},
            "source": {"system": "shopify"},  # not part of Segment's spec: ignored
        }
    )
    assert (event.source.system, event.source.channel) == ("shop", "web")


def test_a_received_at_in_the_message_is_ignored_as_segment_ignores_it() -> None:
    [event] = translator().message(
        {"type": "track", "userId": "u", "event": "X", "receivedAt": "2020-01-01T00:00:00Z"}
    )
    assert event.received_at == RECEIVED == event.occurred_at  # no timestamp: when received


def test_an_occurred_at_far_in_the_future_is_refused_at_its_timestamp() -> None:
    t = translator()
    events = t.batch(
        {
            "batch": [
                # the device clock says 1 minute ahead of now: within the allowed skew
                {"type": "track", "userId": "u", "event": "X", "timestamp": "2026-05-01T12:01Z"},
                {"type": "track", "userId": "u", "event": "X", "timestamp": "2026-06-01T12:00Z"},
                # a device clock a year off, consistently: taken out, not refused
                {
                    "type": "track",
                    "userId": "u",
                    "event": "X",
                    "timestamp": "2027-05-01T12:00Z",
                    "sentAt": "2027-05-01T12:00:10Z",
                },
                # the event said to happen an hour after it was sent
                {
                    "type": "track",
                    "userId": "u",
                    "event": "X",
                    "originalTimestamp": "2026-05-01T13:00Z",
                    "sentAt": "2026-05-01T12:00Z",
                },
            ]
        }
    )
    assert len(events) == 2
    assert [(p.path, p.value) for p in t.problems] == [
        ("batch[1].timestamp", "2026-06-01T12:00Z"),
        ("batch[3].originalTimestamp", "2026-05-01T13:00Z"),
    ]
    assert t.problems[0].rule == (
        "occurred_at 2026-06-01T12:00:00Z is 31d in the future; at most 5m of clock skew is "
        "accepted (RAPPORT_COLLECTOR_MAX_FUTURE_SKEW_S)"
    )
    strict = SegmentTranslator("shop", RECEIVED, TrackMapping.load(), timedelta(seconds=30))
    strict.message({"type": "track", "userId": "u", "event": "X", "timestamp": "2026-05-01T12:01Z"})
    assert [p.path for p in strict.problems] == ["timestamp"]
