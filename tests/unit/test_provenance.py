"""What a request body may not say about its events: their source, arrival, a future time."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from collector.errors import Problem
from collector.provenance import RECEIVED_AT_RULE, Provenance, span
from collector.rapport_events import parse_events

RECEIVED = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
KEYS = Provenance("web-shop", RECEIVED, timedelta(minutes=5))


def wire(**changes: Any) -> dict[str, Any]:
    """A valid Rapport event as a client of the 'web-shop' key posts it."""
    event = {
        "event_id": str(uuid.uuid4()),
        "type": "web.page_viewed",
        "schema_version": 1,
        "occurred_at": "2026-11-30T08:00:00Z",
        "source": {"system": "web-shop", "channel": "web"},
        "customer": {"anonymous_id": "anon-1"},
        "payload": {"url": "https://shop.example.com/pricing"},
    }
    return {**event, **changes}


def test_the_source_system_comes_from_the_write_key() -> None:
    event, problems = KEYS.claim(wire(source={"channel": "email"}))
    assert problems == []
    assert event["source"] == {"system": "web-shop", "channel": "email"}  # channel as sent
    event, problems = KEYS.claim(wire(source={"system": None, "channel": "web"}))
    assert (problems, event["source"]["system"]) == ([], "web-shop")
    event, problems = KEYS.claim(wire(source={"system": " web-shop ", "channel": "web"}))
    assert problems == []


def test_without_a_source_the_channel_is_the_types() -> None:
    raw = wire()
    del raw["source"]
    event, problems = KEYS.claim(raw)
    assert problems == []
    assert event["source"] == {"system": "web-shop", "channel": "web"}
    event, _ = KEYS.claim({**raw, "type": "call_center.call"})
    assert event["source"] == {"system": "web-shop", "channel": "call_center"}


def test_another_system_is_refused_naming_path_and_rule() -> None:
    _, problems = KEYS.claim(wire(source={"system": "shopify", "channel": "web"}), "[3].")
    assert problems == [
        Problem(
            "[3].source.system",
            "shopify",
            "source.system 'shopify' is not this write key's source 'web-shop'; "
            "the system is taken from the write key",
        )
    ]


def test_received_at_is_stamped_and_refused_in_the_body() -> None:
    event, problems = KEYS.claim(wire())
    assert (problems, event["received_at"]) == ([], RECEIVED)
    event, problems = KEYS.claim(wire(received_at=None))  # said nothing
    assert (problems, event["received_at"]) == ([], RECEIVED)
    event, problems = KEYS.claim(wire(received_at="2026-11-30T08:00:01Z"))
    assert problems == [Problem("received_at", "2026-11-30T08:00:01Z", RECEIVED_AT_RULE)]
    assert event["received_at"] == RECEIVED


@pytest.mark.parametrize(
    ("ahead", "refused"),
    [
        (timedelta(days=-400), False),  # the past is fine, however far
        (timedelta(0), False),
        (timedelta(minutes=5), False),  # exactly the allowed skew
        (timedelta(minutes=5, milliseconds=1), True),
        (timedelta(days=31), True),
    ],
)
def test_occurred_at_may_run_ahead_by_the_allowed_skew_only(
    ahead: timedelta, refused: bool
) -> None:
    problem = KEYS.future(RECEIVED + ahead, "occurred_at", "sent")
    assert (problem is not None) == refused


def test_a_future_occurred_at_says_how_far_and_which_setting() -> None:
    problem = KEYS.future(datetime(2027, 1, 1, tzinfo=UTC), "[0].occurred_at", "2027-01-01")
    assert problem == Problem(
        "[0].occurred_at",
        "2027-01-01",
        "occurred_at 2027-01-01T00:00:00Z is 30d 12h in the future; at most 5m of clock skew "
        "is accepted (RAPPORT_COLLECTOR_MAX_FUTURE_SKEW_S)",
    )


def test_spans_read_as_people_say_them() -> None:
    assert span(timedelta(days=31)) == "31d"
    assert span(timedelta(hours=1, minutes=5, seconds=9)) == "1h 5m"
    assert span(timedelta(seconds=300)) == "5m"
    assert span(timedelta(milliseconds=250)) == "250ms"


def test_a_batch_reports_every_event_by_its_index() -> None:
    good = wire()
    problems: list[Problem] = []
    events = parse_events(
        [
            good,
            wire(source={"system": "shopify", "channel": "web"}),
            wire(received_at="2026-11-30T08:00:01Z"),
            wire(occurred_at="2027-01-01T00:00:00+07:00"),
            wire(payload={"nonsense": True}, received_at="2026-11-30T08:00:01Z"),
        ],
        problems,
        KEYS,
    )
    paths = [p.path for p in problems]
    assert paths[:3] == ["[1].source.system", "[2].received_at", "[3].occurred_at"]
    assert "[4].received_at" in paths and any(p.startswith("[4].payload") for p in paths)
    assert problems[2].value == "2027-01-01T00:00:00+07:00"
    assert "2026-12-31T17:00:00Z is 30d 5h in the future" in problems[2].rule
    # Only the good event survives; the request as a whole is refused (InvalidEvents).
    [event] = events
    assert str(event.event_id) == good["event_id"]
    assert event.source.system == "web-shop" and event.received_at == RECEIVED


def test_one_event_paths_have_no_index() -> None:
    problems: list[Problem] = []
    parse_events(wire(source={"system": "shopify", "channel": "web"}), problems, KEYS)
    assert [p.path for p in problems] == ["source.system"]


def test_a_source_cannot_post_an_erasure() -> None:
    from collector.provenance import RAPPORT_ONLY_RULE

    claim = Provenance(source="webshop", received_at=datetime(2026, 1, 1, tzinfo=UTC))
    _, problems = claim.claim({"type": "privacy.erased", "source": {"channel": "privacy"}}, "[0].")
    assert [(p.path, p.rule) for p in problems] == [("[0].type", RAPPORT_ONLY_RULE)]
