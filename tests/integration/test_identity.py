"""The identity graph on the real services: PostgreSQL resolves region by region exactly as
the pure rules resolve the whole graph, and the reads a user makes follow it, through the
real worker, the CLI and the read API."""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from infra.settings import Settings
from producers import Publisher
from producers.identity import unlink_event
from projections.identity import IdentityRules, evidence_of, fold_evidence, resolve
from projections.postgres.store import make_engine
from projections.postgres.versions import PostgresVersions
from projections.store import PositionedEvent
from schemas import CustomerRef, Envelope
from schemas.payloads.call_center import CallCenterCall
from schemas.payloads.commerce import Purchased
from schemas.payloads.email import EmailOpened
from schemas.payloads.profile import IdentityLinked, IdentityUnlinked
from schemas.payloads.web import PageViewed
from tests.integration.accounting import wait_drained
from tests.support import rapport, running_worker, serving_api

pytestmark = pytest.mark.integration

T0 = datetime(2026, 1, 1, tzinfo=UTC)
_IDS = [
    *(f"customer:c{n}" for n in range(6)),
    *(f"email:u{n}@x.com" for n in range(5)),
    *(f"phone:09000000{n:02d}" for n in range(5)),
    *(f"anon:k{n}" for n in range(6)),
    "email:support@shop.com",
]


def _ref(*identifiers: str) -> CustomerRef:
    fields: dict[str, object] = {}
    for identifier in identifiers:
        kind, _, value = identifier.partition(":")
        key = {"customer": "customer_id", "anon": "anonymous_id"}.get(kind, kind)
        fields.setdefault(key, value)
    return CustomerRef.model_validate(fields)


def _random_history(rng: random.Random, count: int, ids: list[str]) -> list[Envelope]:
    events = []
    for n in range(count):
        a, b = rng.sample(ids, 2)
        at = T0 + timedelta(minutes=rng.randrange(10_000))
        kind = rng.choices(["carry", "link", "unlink", "forced"], [6, 3, 2, 1])[0]
        if kind == "carry":
            payload: object = EmailOpened(message_id=f"m{n}")
            ref = _ref(a, b)
        elif kind == "unlink":
            payload = IdentityUnlinked(identifier=a, unlinked_from=b, reason="wrong")
            ref = _ref(a)
        else:
            payload = IdentityLinked(identifier=a, linked_to=b, forced=kind == "forced")
            ref = _ref(a)
        events.append(
            Envelope.new(payload, customer=ref, occurred_at=at, event_id=uuid.UUID(int=n + 1))  # type: ignore[arg-type]
        )
    return events


# Few identifiers: dense graphs, conflicts, unlinks. Many: mostly new identifiers joining
# one customer each, the case the batch resolves without walking the graph.
_MANY = [
    *(f"customer:c{n}" for n in range(40)),
    *(f"email:u{n}@x.com" for n in range(80)),
    *(f"anon:k{n}" for n in range(200)),
]


@pytest.mark.parametrize(("seed", "ids"), [(1, _IDS), (2, _IDS), (3, _IDS), (4, _MANY), (5, _MANY)])
def test_postgres_resolves_region_by_region_as_the_rules_resolve_the_whole(
    rapport_settings: Settings, seed: int, ids: list[str]
) -> None:
    rng = random.Random(seed)
    rules = IdentityRules(max_customers_per_identifier=2)
    events = _random_history(rng, 300, ids)
    engine = make_engine(rapport_settings.db_url)
    versions = PostgresVersions(engine, rules)
    versions.prepare("core_v1")
    store = versions.store("core_v1")
    arrival = list(events)
    rng.shuffle(arrival)  # late events everywhere
    records = [PositionedEvent("t", 0, n, e) for n, e in enumerate(arrival)]
    start = 0
    while start < len(records):
        size = rng.randint(1, 40)
        store.apply_batch(records[start : start + size])
        start += size

    evidence = [evidence_of(e, rules) for e in events]
    expected = resolve(
        {n for e in evidence for n in e.nodes}, fold_evidence({}, evidence).values(), rules
    )
    with engine.connect() as conn:
        nodes = {
            r.node: (r.customer_id, r.blocked_customers)
            for r in conn.execute(sa.text("SELECT * FROM core_v1.identity_nodes"))
        }
        states = {
            (r.a, r.b): (r.state, r.reason)
            for r in conn.execute(sa.text("SELECT a, b, state, reason FROM core_v1.identity_edges"))
        }
    assert nodes == {n: (c, expected.blocked.get(n)) for n, c in expected.components.items()}
    assert states == {k: (s.value, why) for k, (s, why) in expected.states.items()}
    engine.dispose()


def test_a_customer_is_one_customer_however_known_and_an_unlink_splits_it_exactly(
    rapport_settings: Settings,
) -> None:
    s = rapport_settings

    def event(payload: object, ref: CustomerRef, minutes: int) -> Envelope:
        return Envelope.new(payload, customer=ref, occurred_at=T0 + timedelta(minutes=minutes))  # type: ignore[arg-type]

    story = [
        event(
            PageViewed(url="https://shop.example.com/", title="home"),
            CustomerRef(anonymous_id="cookie-9"),
            1,
        ),
        event(
            CallCenterCall(
                direction="inbound",
                duration_seconds=60,
                outcome="resolved",
                agent="Linh",
                topic="billing",
            ),
            CustomerRef(phone="0900 000 016"),
            2,
        ),
        event(EmailOpened(message_id="m1"), CustomerRef(email="An@Example.com"), 3),
        # Signs up on the web: the session becomes hers; support notes her number and address.
        event(
            IdentityLinked(identifier="anon:cookie-9", linked_to="customer:c-an"),
            CustomerRef(customer_id="c-an"),
            4,
        ),
        event(
            Purchased(order_id="o1", amount="20.00", currency="EUR"),
            CustomerRef(customer_id="c-an", phone="+84 900 000 016", email="an@example.com"),
            5,
        ),
        # Another customer, who gave the shop's own address at the till:
        event(
            EmailOpened(message_id="m2"), CustomerRef(customer_id="c-bo", email="an@example.com"), 6
        ),
    ]
    with Publisher(s.bootstrap, s.topic) as publisher:
        publisher.publish_all(story)
    with running_worker(s):
        wait_drained(s)

        for name in ("c-an", "an@example.com", "0900000016", "+84 900 000 016", "anon:cookie-9"):
            shown = rapport(s, "timeline", name, "--json")
            assert shown.returncode == 0, shown.stderr
            page = json.loads(shown.stdout)
            assert page["customer_id"] == "c-an"
            assert len(page["events"]) == 5  # all but Bo's
        profile = json.loads(rapport(s, "profile", "0900000016", "--json").stdout)
        assert profile["events"] == 5 and profile["channel_counts"]["web"] == 1
        identity = json.loads(rapport(s, "identity", "show", "c-bo", "--json").stdout)
        refused = [x for x in identity["links"] if x["state"] == "refused"]
        assert [(x["a"], x["b"]) for x in refused] == [("customer:c-bo", "email:an@example.com")]
        assert refused[0]["reason"] == "would join customer c-bo and customer c-an"

        # The number was her brother's: undo the link, and her reads are as if never linked.
        with Publisher(s.bootstrap, s.topic) as publisher:
            publisher.publish_and_wait(
                unlink_event("phone:+84900000016", "customer:c-an", reason="her brother's phone")
            )
        wait_drained(s)
        page = json.loads(rapport(s, "timeline", "c-an", "--json").stdout)
        assert len(page["events"]) == 4  # the call by that number is not hers any more
        alone = json.loads(rapport(s, "timeline", "0900000016", "--json").stdout)
        assert alone["customer_id"] == "phone:+84900000016"
        assert [e["type"] for e in alone["events"]] == ["call_center.call", "identity.unlinked"]

        engine = make_engine(s.db_url)
        with serving_api(engine) as api:
            got = api.agent.get("/v1/customers/an@example.com/identity").json()
            assert got["customer_id"] == "c-an"
            states = {(x["a"], x["b"]): x["state"] for x in got["links"]}
            assert states[("customer:c-an", "phone:+84900000016")] == "unlinked"
            timeline = api.agent.get("/v1/customers/anon:cookie-9/timeline").json()
            assert timeline["customer_id"] == "c-an" and len(timeline["events"]) == 4
        with engine.connect() as conn:
            resolved = conn.execute(
                sa.text("SELECT customer_id, count(*) FROM rapport.timeline GROUP BY 1 ORDER BY 1")
            ).all()
        assert resolved == [("c-an", 4), ("c-bo", 1), ("phone:+84900000016", 2)]

        # Forcing the two customers together, as an operator who knows they are one:
        link = rapport(
            s,
            "identity",
            "link",
            "customer:c-bo",
            "customer:c-an",
            "--force",
            "--evidence",
            "one person, two accounts",
        )
        assert link.returncode == 0, link.stderr
        wait_drained(s)
        assert json.loads(rapport(s, "timeline", "c-bo", "--json").stdout)["customer_id"] == "c-an"
        engine.dispose()
