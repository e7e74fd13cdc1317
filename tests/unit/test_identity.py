"""The identity graph's rules, pure: normalisation, merges, unmerges, guard rails, and the
same graph whatever order the evidence arrives in."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from projections.identity import (
    DEFAULT_RULES,
    EdgeState,
    IdentityRules,
    evidence_of,
    fold_evidence,
    normalize,
    resolve,
)
from projections.memory import InMemoryStore
from projections.store import PositionedEvent
from schemas import CustomerRef, Envelope
from schemas.payloads.email import EmailOpened
from schemas.payloads.profile import IdentityLinked, IdentityUnlinked

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _event(n: int, ref: CustomerRef, payload: object = None) -> Envelope:
    return Envelope.new(
        payload or EmailOpened(message_id=f"m-{n}"),  # type: ignore[arg-type]
        customer=ref,
        occurred_at=T0 + timedelta(minutes=n),
        event_id=uuid.UUID(int=n + 1),
    )


def _link(n: int, a: str, b: str, *, forced: bool = False) -> Envelope:
    return _event(n, _ref(a), IdentityLinked(identifier=a, linked_to=b, forced=forced))


def _unlink(n: int, a: str, b: str) -> Envelope:
    reason = "not the same person"
    return _event(n, _ref(a), IdentityUnlinked(identifier=a, unlinked_from=b, reason=reason))


def _graph(events: list[Envelope], rules: IdentityRules = DEFAULT_RULES) -> dict[str, str]:
    evidence = [evidence_of(e, rules) for e in events]
    edges = fold_evidence({}, evidence)
    nodes = {n for e in evidence for n in e.nodes}
    return resolve(nodes, edges.values(), rules).components


def test_one_address_or_number_written_two_ways_is_one_identifier() -> None:
    assert (
        normalize("phone:+84 900 000 016") == normalize("phone:0900000016") == "phone:+84900000016"
    )
    assert normalize("phone:(090) 000-0016") == "phone:+84900000016"
    assert normalize("phone:+1 415 555 0100") == "phone:+14155550100"
    assert normalize("phone:12", IdentityRules(default_region=None)) == "phone:12"
    assert normalize("email: An.Tran@Example.COM ") == "email:an.tran@example.com"
    assert normalize("social:x:@An") == "social:x:@An"  # handles are case-sensitive as given


def test_identifiers_an_event_carries_together_join_its_customer() -> None:
    graph = _graph(
        [
            _event(1, CustomerRef(customer_id="c1", email="An@Example.com")),
            _event(2, CustomerRef(phone="0900000016")),  # a call from a number
            _event(3, CustomerRef(customer_id="c1", phone="+84 900 000 016")),
            _event(4, CustomerRef(anonymous_id="cookie-1")),
            _event(5, CustomerRef(email="an@example.com", anonymous_id="cookie-1")),
        ]
    )
    assert {
        graph[n]
        for n in ("customer:c1", "email:an@example.com", "phone:+84900000016", "anon:cookie-1")
    } == {"c1"}


def test_a_component_without_a_customer_id_is_named_by_its_strongest_identifier() -> None:
    graph = _graph(
        [_event(1, CustomerRef(anonymous_id="zz", email="b@x.com", social_handles={"x": "@b"}))]
    )
    assert set(graph.values()) == {"email:b@x.com"}


def test_a_link_that_would_join_two_customers_is_refused_unless_forced() -> None:
    events = [
        _event(1, CustomerRef(customer_id="c1", email="shared@x.com")),
        _event(2, CustomerRef(customer_id="c2", email="shared@x.com")),  # later: refused
    ]
    evidence = [evidence_of(e) for e in events]
    edges = fold_evidence({}, evidence)
    result = resolve({n for e in evidence for n in e.nodes}, edges.values())
    assert result.components["email:shared@x.com"] == "c1"
    assert result.components["customer:c2"] == "c2"
    state, why = result.states[("customer:c2", "email:shared@x.com")]
    assert state is EdgeState.REFUSED and why == "would join customer c2 and customer c1"

    forced = _graph([*events, _link(3, "customer:c1", "customer:c2", forced=True)])
    assert forced["customer:c2"] == forced["customer:c1"] == "c1"


def test_an_identifier_shared_by_too_many_customers_stops_merging() -> None:
    rules = IdentityRules(max_customers_per_identifier=3)
    events = [
        _event(n, CustomerRef(customer_id=f"c{n}", email="support@shop.com")) for n in range(5)
    ]
    events.append(_event(9, CustomerRef(email="support@shop.com", anonymous_id="kiosk")))
    evidence = [evidence_of(e, rules) for e in events]
    edges = fold_evidence({}, evidence)
    result = resolve({n for e in evidence for n in e.nodes}, edges.values(), rules)
    assert result.blocked == {"email:support@shop.com": 5}
    assert {result.components[f"customer:c{n}"] for n in range(5)} == {f"c{n}" for n in range(5)}
    assert result.components["email:support@shop.com"] == "email:support@shop.com"
    assert result.components["anon:kiosk"] == "anon:kiosk"


def test_link_then_unlink_is_as_if_never_linked() -> None:
    base = [
        _event(1, CustomerRef(customer_id="c1")),
        _event(2, CustomerRef(anonymous_id="a1")),
        _event(3, CustomerRef(customer_id="c1", phone="0900000016")),
    ]
    linked = [*base, _link(4, "anon:a1", "customer:c1")]
    assert _graph(linked)["anon:a1"] == "c1"
    undone = [
        *linked,
        _unlink(5, "anon:a1", "customer:c1"),
        _unlink(6, "phone:+84900000016", "customer:c1"),
    ]
    never = _graph([*base[:2], _event(3, CustomerRef(customer_id="c1"))]) | {
        "phone:+84900000016": "phone:+84900000016"
    }
    assert _graph(undone) == never
    # An event carrying both later does not join them again; a later explicit link does.
    again = [*undone, _event(7, CustomerRef(customer_id="c1", phone="0900000016"))]
    assert _graph(again)["phone:+84900000016"] == "phone:+84900000016"
    relinked = [*again, _link(8, "phone:0900000016", "customer:c1")]
    assert _graph(relinked)["phone:+84900000016"] == "c1"


_IDS = [
    "customer:c1",
    "customer:c2",
    "customer:c3",
    "email:a@x.com",
    "email:b@x.com",
    "phone:0900000001",
    "anon:k1",
    "anon:k2",
    "social:x:@a",
]


@st.composite
def _histories(draw: st.DrawFn) -> list[Envelope]:
    events = []
    for n in range(draw(st.integers(1, 25))):
        kind = draw(st.sampled_from(["carry", "link", "unlink", "forced"]))
        a, b = draw(st.lists(st.sampled_from(_IDS), min_size=2, max_size=2, unique=True))
        if kind == "carry":
            events.append(_event(n, _ref(a, b)))
        elif kind == "unlink":
            events.append(_unlink(n, a, b))
        else:
            events.append(_link(n, a, b, forced=kind == "forced"))
    return events


def _ref(*identifiers: str) -> CustomerRef:
    """The customer reference an event carrying `identifiers` has."""
    fields: dict[str, object] = {}
    for identifier in identifiers:
        kind, _, value = identifier.partition(":")
        if kind == "customer":
            fields.setdefault("customer_id", value)
        elif kind == "email":
            fields["email"] = value
        elif kind == "phone":
            fields["phone"] = value
        elif kind == "anon":
            fields["anonymous_id"] = value
        else:
            fields["social_handles"] = {"x": value.partition(":")[2]}
    return CustomerRef.model_validate(fields)


@settings(max_examples=200, deadline=None)
@given(_histories(), st.randoms(use_true_random=False))
def test_any_arrival_order_gives_the_same_graph(events: list[Envelope], rng: random.Random) -> None:
    rules = IdentityRules(max_customers_per_identifier=2)
    shuffled = list(events)
    rng.shuffle(shuffled)
    assert _graph(shuffled, rules) == _graph(events, rules)


@settings(max_examples=100, deadline=None)
@given(_histories(), st.integers(1, 7))
def test_the_twin_resolves_batch_by_batch_as_all_at_once(events: list[Envelope], size: int) -> None:
    rules = IdentityRules(max_customers_per_identifier=2)
    store = InMemoryStore(identity_rules=rules)
    records = [PositionedEvent("t", 0, n, e) for n, e in enumerate(events)]
    for start in range(0, len(records), size):
        store.apply_batch(records[start : start + size])
    assert store.resolution.components == _graph(events, rules)


def test_reads_find_a_customer_by_any_identifier_and_every_key_it_was_known_by() -> None:
    store = InMemoryStore()
    events = [
        _event(1, CustomerRef(anonymous_id="cookie")),  # browsing before sign-up
        _event(2, CustomerRef(phone="0900000016")),  # a call before the number was known
        _event(3, CustomerRef(customer_id="c1", anonymous_id="cookie")),  # signs up
        _event(4, CustomerRef(customer_id="c1", phone="+84 900 000 016")),
    ]
    store.apply_batch([PositionedEvent("t", 0, n, e) for n, e in enumerate(events)])
    assert store.customer_of("phone:+84900000016") == store.customer_of("anon:cookie") == "c1"
    assert store.keys_of("c1") == ["anon:cookie", "c1", "phone:0900000016"]
