"""The contact policy's rules, their combinations, clocks around DST and midnight, and
event time: each test is a question a sending system asks, with the answer it relies on."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from projections.contact_policy import (
    DEFAULT_CONTACT_RULES,
    ContactRules,
    Decision,
    Fact,
    Request,
    contacts_before,
    decide,
    outbound_contact,
    policy_at,
    violations,
)

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # a Monday, noon UTC
_ids = itertools.count(1)


def fact(event_type: str, at: datetime, event_id: str | None = None, **payload: Any) -> Fact:
    return Fact(at, event_id or f"e{next(_ids):04d}", event_type, payload)


def consent(at: datetime, channel: str, opted_in: bool, purpose: str = "marketing") -> Fact:
    return fact("consent.changed", at, contact_channel=channel, purpose=purpose, opted_in=opted_in)


def prefs(at: datetime, event_id: str | None = None, **fields: Any) -> Fact:
    """A preferences event as the timeline stores it: None values are cleared fields."""
    cleared = [k for k, v in fields.items() if v is None]
    wire = {k: v for k, v in fields.items() if v is not None}
    return fact("consent.preferences_set", at, event_id, **wire, cleared=cleared)


def email(at: datetime, campaign: str | None = "spring-sale") -> Fact:
    return fact("email.sent", at, message_id="m", **({"campaign": campaign} if campaign else {}))


def ask(
    facts: list[Fact],
    at: datetime,
    channel: str = "email",
    purpose: str = "marketing",
    topic: str | None = None,
    rules: ContactRules = DEFAULT_CONTACT_RULES,
) -> Decision:
    policy = policy_at([f for f in facts if f.type.startswith("consent.")], at)
    contacts = sorted((c for f in facts if (c := outbound_contact(f))), key=lambda c: c.stamp)
    return decide(
        policy, Request(channel, purpose, at, topic), contacts_before(contacts, at), rules
    )


def denied_by(decision: Decision) -> set[str]:
    return {c.rule for c in decision.denials}


QUIET_BERLIN = {"start": "21:00:00", "end": "08:00:00", "timezone": "Europe/Berlin"}


# -- each rule ----------------------------------------------------------------------------


def test_nothing_stated_allows_and_says_so_for_every_rule() -> None:
    decision = ask([], T0)
    assert decision.allowed
    assert [c.rule for c in decision.checks] == [
        "consent",
        "allowed_channels",
        "quiet_hours",
        "weekly_cap",
        "unwanted_topics",
    ]
    assert all(c.reason for c in decision.checks)


def test_an_opt_out_denies_that_channel_and_purpose_only_naming_its_event() -> None:
    out = consent(T0 - timedelta(days=1), "email", False)
    decision = ask([out], T0)
    assert denied_by(decision) == {"consent"}
    (check,) = decision.denials
    assert check.event_id == out.event_id and check.at == out.at
    assert "opted out of marketing via email" in check.reason
    assert ask([out], T0, purpose="service").allowed
    assert ask([out], T0, channel="call_center").allowed


def test_a_purpose_that_needs_an_opt_in_is_denied_until_one_is_given() -> None:
    gdpr = ContactRules(opt_in_purposes=frozenset({"marketing"}))
    assert denied_by(ask([], T0, rules=gdpr)) == {"consent"}
    assert ask([], T0, purpose="service", rules=gdpr).allowed
    opt_in = consent(T0 - timedelta(hours=1), "email", True)
    assert ask([opt_in], T0, rules=gdpr).allowed


def test_allowed_channels_deny_other_channels_and_an_empty_list_denies_all() -> None:
    only_email = prefs(T0 - timedelta(days=1), allowed_channels=["email", "sales"])
    assert ask([only_email], T0).allowed
    decision = ask([only_email], T0, channel="call_center")
    assert denied_by(decision) == {"allowed_channels"}
    assert "allows only email, sales" in decision.denials[0].reason
    nothing = prefs(T0 - timedelta(hours=1), allowed_channels=[])
    assert denied_by(ask([only_email, nothing], T0)) == {"allowed_channels"}


@pytest.mark.parametrize(
    ("utc", "allowed"),
    [
        (datetime(2026, 1, 15, 19, 59, tzinfo=UTC), True),  # 20:59 CET
        (datetime(2026, 1, 15, 20, 0, tzinfo=UTC), False),  # 21:00 CET: the window starts
        (datetime(2026, 1, 15, 22, 59, tzinfo=UTC), False),  # 23:59 CET
        (datetime(2026, 1, 15, 23, 0, tzinfo=UTC), False),  # 00:00 CET, past midnight
        (datetime(2026, 1, 16, 6, 59, tzinfo=UTC), False),  # 07:59 CET
        (datetime(2026, 1, 16, 7, 0, tzinfo=UTC), True),  # 08:00 CET: the window has ended
    ],
)
def test_quiet_hours_pass_midnight_on_the_customers_own_clock(utc: datetime, allowed: bool) -> None:
    quiet = prefs(datetime(2026, 1, 1, tzinfo=UTC), quiet_hours=QUIET_BERLIN)
    decision = ask([quiet], utc)
    assert decision.allowed is allowed
    assert "CET" in decision.checks[2].reason


@pytest.mark.parametrize(
    ("utc", "allowed", "zone"),
    [
        # Spring forward (29 March 2026): 06:30 UTC is 07:30 CET the day before, 08:30 CEST.
        (datetime(2026, 3, 28, 6, 30, tzinfo=UTC), False, "CET"),
        (datetime(2026, 3, 29, 6, 30, tzinfo=UTC), True, "CEST"),
        # Fall back (25 October 2026): 06:30 UTC is 08:30 CEST the day before, 07:30 CET.
        (datetime(2026, 10, 24, 6, 30, tzinfo=UTC), True, "CEST"),
        (datetime(2026, 10, 25, 6, 30, tzinfo=UTC), False, "CET"),
        # 19:30 UTC is 21:30 CEST (quiet) in summer, 20:30 CET (not yet) in winter.
        (datetime(2026, 10, 24, 19, 30, tzinfo=UTC), False, "CEST"),
        (datetime(2026, 10, 25, 19, 30, tzinfo=UTC), True, "CET"),
    ],
)
def test_quiet_hours_follow_daylight_saving_changes(
    utc: datetime, allowed: bool, zone: str
) -> None:
    quiet = prefs(datetime(2026, 1, 1, tzinfo=UTC), quiet_hours=QUIET_BERLIN)
    decision = ask([quiet], utc)
    assert decision.allowed is allowed
    assert f"({zone})" in decision.checks[2].reason


def test_a_quiet_window_within_one_day() -> None:
    lunch = prefs(T0 - timedelta(days=1), quiet_hours={"start": "12:00", "end": "13:30"})
    assert not ask([lunch], T0.replace(hour=12, minute=45)).allowed
    assert ask([lunch], T0.replace(hour=13, minute=30)).allowed
    assert ask([lunch], T0.replace(hour=11, minute=59)).allowed


def test_the_weekly_cap_counts_outbound_touchpoints_of_the_seven_days_before() -> None:
    cap = prefs(T0 - timedelta(days=30), max_contacts_per_week=2)
    old = email(T0 - timedelta(days=7))  # exactly a week ago: outside the window
    sent = [email(T0 - timedelta(days=3)), email(T0 - timedelta(hours=1))]
    inbound = fact("call_center.call", T0 - timedelta(hours=2), direction="inbound")
    assert ask([cap, old, sent[0], inbound], T0).allowed
    decision = ask([cap, old, *sent, inbound], T0)
    assert denied_by(decision) == {"weekly_cap"}
    assert decision.denials[0].reason.startswith("2 outbound contacts in the 7 days before, cap 2")
    assert ask([cap, *sent], T0 + timedelta(days=4, hours=1)).allowed  # the first aged out


def test_unwanted_topics_deny_only_the_topic_named() -> None:
    stated = prefs(T0 - timedelta(days=1), topics=["spring-sale"], unwanted_topics=["win-back"])
    assert denied_by(ask([stated], T0, topic="win-back")) == {"unwanted_topics"}
    assert ask([stated], T0, topic="spring-sale").allowed
    no_topic = ask([stated], T0)
    assert no_topic.allowed and "no topic given" in no_topic.checks[4].reason


def test_every_broken_rule_is_reported_not_only_the_first() -> None:
    facts = [
        consent(T0 - timedelta(days=9), "call_center", False),
        prefs(
            T0 - timedelta(days=8),
            allowed_channels=["email"],
            max_contacts_per_week=1,
            unwanted_topics=["upgrade"],
            quiet_hours={"start": "11:00", "end": "13:00", "timezone": "UTC"},
        ),
        email(T0 - timedelta(days=1)),
    ]
    decision = ask(facts, T0, channel="call_center", topic="upgrade")
    assert denied_by(decision) == {
        "consent",
        "allowed_channels",
        "quiet_hours",
        "weekly_cap",
        "unwanted_topics",
    }
    assert decision.to_json()["decision"] == "deny"
    assert {c["verdict"] for c in decision.to_json()["checks"]} == {"deny"}


# -- event time and partial updates ---------------------------------------------------------


def test_a_late_opt_out_governs_from_its_event_time_whatever_the_arrival_order() -> None:
    opt_in = consent(T0 - timedelta(days=10), "email", True)
    late_opt_out = consent(T0 - timedelta(days=5), "email", False)
    arrived = [late_opt_out, opt_in]  # the opt-out arrived first, the opt-in later
    assert not ask(arrived, T0).allowed
    assert ask(arrived, T0 - timedelta(days=6)).allowed  # before the opt-out happened
    assert ask(list(reversed(arrived)), T0) == ask(arrived, T0)


def test_a_preferences_update_changes_only_the_fields_it_names_and_null_clears() -> None:
    whole = prefs(T0 - timedelta(days=5), allowed_channels=["email"], max_contacts_per_week=1)
    quiet_only = prefs(T0 - timedelta(days=4), quiet_hours={"start": "01:00", "end": "02:00"})
    policy = policy_at([whole, quiet_only], T0)
    assert policy.stated("allowed_channels").value == ["email"]  # type: ignore[union-attr]
    assert policy.stated("max_contacts_per_week").value == 1  # type: ignore[union-attr]
    cleared = prefs(T0 - timedelta(days=3), max_contacts_per_week=None)
    policy = policy_at([whole, quiet_only, cleared], T0)
    assert policy.stated("max_contacts_per_week") is None
    assert policy.stated("quiet_hours") is not None and policy.stated("allowed_channels")
    # An older clear that arrives late does not undo a newer value.
    stale_clear = prefs(T0 - timedelta(days=6), allowed_channels=None)
    assert policy_at([whole, stale_clear], T0).stated("allowed_channels") is not None


def test_preferences_stored_before_version_2_are_read_as_they_meant() -> None:
    """A timeline projected before partial updates holds v1 payloads (no `cleared`)."""
    at = T0 - timedelta(days=1)
    no_contact = fact(
        "consent.preferences_set",
        at,
        allowed_channels=["email"],
        topics=[],
        max_contacts_per_week=0,
    )
    assert denied_by(ask([no_contact], T0)) == {"allowed_channels"}  # a cap of 0: none
    default_list = fact(
        "consent.preferences_set", at, allowed_channels=[], topics=[], max_contacts_per_week=3
    )
    decision = ask([default_list], T0)
    assert decision.allowed and decision.checks[1].reason == "no allowed channels stated"
    assert "cap 3" in decision.checks[3].reason


def test_what_counts_as_an_outbound_touchpoint_and_its_purpose() -> None:
    assert outbound_contact(email(T0)).purpose == "marketing"  # type: ignore[union-attr]
    assert outbound_contact(email(T0, campaign=None)).purpose == "service"  # type: ignore[union-attr]
    call = fact("call_center.call", T0, direction="outbound", topic="upgrade")
    assert outbound_contact(call) is not None and outbound_contact(call).topic == "upgrade"  # type: ignore[union-attr]
    assert outbound_contact(fact("call_center.call", T0, direction="inbound")) is None
    assert outbound_contact(fact("email.opened", T0, message_id="m")) is None
    assert outbound_contact(fact("sales.approached", T0)).channel == "sales"  # type: ignore[union-attr]


# -- the violations sweep -------------------------------------------------------------------


def test_violations_judge_each_touchpoint_by_the_policy_of_its_own_time() -> None:
    before = email(T0 - timedelta(days=2))
    opt_out = consent(T0 - timedelta(days=1), "email", False)
    after = email(T0)
    found = violations([after, opt_out, before])
    assert [(v.contact.event_id, v.check.rule) for v in found] == [(after.event_id, "consent")]
    assert found[0].check.event_id == opt_out.event_id


_DAYS = st.integers(min_value=0, max_value=20 * 24).map(lambda h: T0 + timedelta(hours=h))
_FACTS = st.one_of(
    st.builds(
        lambda at, ch, yes: consent(at, ch, yes),
        _DAYS,
        st.sampled_from(["email", "sales"]),
        st.booleans(),
    ),
    st.builds(
        lambda at, channels, cap, quiet: prefs(
            at,
            allowed_channels=channels,
            max_contacts_per_week=cap if channels != [] else None,
            quiet_hours=quiet,
        ),
        _DAYS,
        st.one_of(
            st.none(), st.lists(st.sampled_from(["email", "sales", "call_center"]), unique=True)
        ),
        st.one_of(st.none(), st.integers(1, 3)),
        st.one_of(st.none(), st.just({"start": "22:00", "end": "06:00", "timezone": "Asia/Seoul"})),
    ),
    st.builds(email, _DAYS, st.sampled_from(["spring-sale", "win-back", None])),
    st.builds(lambda at: fact("sales.approached", at), _DAYS),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(_FACTS, max_size=25), st.randoms(use_true_random=False))
def test_violations_are_the_decisions_one_by_one_and_ignore_arrival_order(
    facts: list[Fact], shuffle: Any
) -> None:
    found = violations(facts)
    arrived = list(facts)
    shuffle.shuffle(arrived)
    assert violations(arrived) == found
    # The sweep equals the definition: each touchpoint asked about on its own.
    policy_facts = [f for f in facts if f.type.startswith("consent.")]
    contacts = sorted((c for f in facts if (c := outbound_contact(f))), key=lambda c: c.stamp)
    expected = []
    for c in contacts:
        decision = decide(
            policy_at(policy_facts, c.at),
            Request(c.channel, c.purpose, c.at, c.topic),
            contacts_before(contacts, c.at, before=c.stamp),
        )
        expected += [(c.event_id, d.rule) for d in decision.denials]
    assert [(v.contact.event_id, v.check.rule) for v in found] == expected
