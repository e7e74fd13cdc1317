"""The contact policy through the real worker, PostgreSQL, HTTP and the CLI: decisions a
sending system asks for, and the violations view, including a late opt-out and a customer
whose preferences were given under an e-mail address before it was linked."""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from infra.bootstrap import engine as make_engine
from infra.settings import Settings
from producers import Publisher
from producers.simulator import simulate
from projections.contact_policy import Fact, violations
from projections.postgres.population import population_status
from schemas import CustomerRef, Envelope, Source
from schemas.envelope import Payload
from schemas.payloads.email import EmailSent
from schemas.payloads.profile import ConsentChanged, ContactPreferencesSet
from tests.integration.projection_snapshot import positions_total
from tests.support import rapport, running_worker, serving_api, wait_for

pytestmark = pytest.mark.integration

DAY = datetime(2026, 6, 10, tzinfo=UTC)  # Berlin is on CEST (UTC+2) all month


def _utc(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 6, day, hour, minute, tzinfo=UTC)


WHO = CustomerRef(customer_id="cust-policy", email="policy@example.com")
BY_EMAIL = CustomerRef(email="policy@example.com")


def _event(payload: Payload, at: datetime, who: CustomerRef = WHO) -> Envelope:
    return Envelope.new(
        payload, customer=who, occurred_at=at, source=Source(system="crm", channel=payload.channel)
    )


def _sent(at: datetime, campaign: str) -> Envelope:
    return _event(EmailSent(message_id=f"m-{at:%d%H}", campaign=campaign, subject="hi"), at)


def _scene() -> dict[str, Envelope]:
    """One customer's story; its preferences were given under the e-mail address alone."""
    return {
        "linked": _event(
            ConsentChanged(contact_channel="email", opted_in=True), DAY - timedelta(days=20)
        ),
        "prefs": _event(
            ContactPreferencesSet(
                allowed_channels=["email"],
                max_contacts_per_week=2,
                unwanted_topics=["win-back"],
                quiet_hours={"start": "21:00", "end": "08:00", "timezone": "Europe/Berlin"},
            ),
            DAY - timedelta(days=19),
            BY_EMAIL,
        ),
        "ok_1": _sent(_utc(4, 10), "spring-sale"),  # 12:00 in Berlin
        "ok_2": _sent(_utc(5, 10), "newsletter-weekly"),
        "over_cap": _sent(_utc(6, 10), "newsletter-weekly"),  # the third in 7 days, cap 2
        "at_night": _sent(_utc(12, 20, 30), "spring-sale"),  # 22:30 in Berlin
        "unwanted": _sent(_utc(18, 10), "win-back"),
    }


def _live_violations(engine: sa.Engine) -> dict[str, set[tuple[str, str]]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT customer_id, event_id, rule FROM rapport.contact_violations")
        ).all()
    found: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for customer_id, event_id, rule in rows:
        found[customer_id].add((str(event_id), rule))
    return dict(found)


def _pure_violations(engine: sa.Engine) -> dict[str, set[tuple[str, str]]]:
    """The pure rules over every customer's resolved timeline, in one go."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT customer_id, event_id, occurred_at, type, campaign_id, payload "
                "FROM rapport.timeline "
                "WHERE customer_id IN (SELECT customer_id FROM rapport.scores)"
            )
        ).all()
    facts: dict[str, list[Fact]] = defaultdict(list)
    for r in rows:
        facts[r.customer_id].append(
            Fact(r.occurred_at, str(r.event_id), r.type, r.payload, r.campaign_id)
        )
    found = {
        c: {(v.contact.event_id, v.check.rule) for v in violations(f)} for c, f in facts.items()
    }
    return {c: v for c, v in found.items() if v}


def _scored(engine: sa.Engine) -> bool:
    with engine.connect() as conn:
        status = population_status(conn, "core_v1")
    return status is not None and not status["pending_keys"] and not status["stale"]


def test_decisions_and_violations_through_the_worker(rapport_settings: Settings) -> None:
    scene = _scene()
    crowd = list(itertools.islice(simulate(60, seed=11, violation_rate=0.3), 5000))
    with Publisher(rapport_settings.bootstrap, rapport_settings.topic) as publisher:
        publisher.publish_all([*crowd, *scene.values()])
    engine = make_engine(rapport_settings)
    total = len(crowd) + len(scene)

    def drained_and_scored(expected: int) -> bool:
        return positions_total(engine, "core_v1") >= expected and _scored(engine)

    with running_worker(rapport_settings):
        wait_for(lambda: drained_and_scored(total), timeout=180, what="drained and scored")
        live = _live_violations(engine)
        assert live == _pure_violations(engine)
        assert sum(map(len, live.values())) > 10  # the crowd's senders broke rules too
        mine = live["cust-policy"]
        ids = {name: str(e.event_id) for name, e in scene.items()}
        assert mine == {
            (ids["over_cap"], "weekly_cap"),
            (ids["at_night"], "quiet_hours"),
            (ids["unwanted"], "unwanted_topics"),
        }

        # A late opt-out: it happened before `over_cap`, and arrives after everything.
        opt_out = _event(
            ConsentChanged(contact_channel="email", opted_in=False),
            _utc(5, 12),  # after ok_2, before over_cap
        )
        with Publisher(rapport_settings.bootstrap, rapport_settings.topic) as publisher:
            publisher.publish_all([opt_out])
        wait_for(lambda: drained_and_scored(total + 1), timeout=60, what="the opt-out scored")
        wait_for(
            lambda: (ids["over_cap"], "consent") in _live_violations(engine).get("cust-policy", ()),
            timeout=30,
            what="the late opt-out judged",
        )
        after = _live_violations(engine)["cust-policy"]
        for later in ("over_cap", "at_night", "unwanted"):
            assert (ids[later], "consent") in after
        assert (ids["ok_2"], "consent") not in after  # it came before the opt-out
        assert _live_violations(engine) == _pure_violations(engine)

    with serving_api(engine) as api:
        url = "/v1/customers/policy@example.com/contact-policy"
        answer = api.agent.get(url, params={"channel": "email", "at": DAY.isoformat()})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["customer_id"] == "cust-policy" and body["decision"] == "deny"
        checks = {c["rule"]: c for c in body["checks"]}
        assert checks["consent"]["verdict"] == "deny"
        assert checks["consent"]["event_id"] == str(opt_out.event_id)
        assert checks["allowed_channels"]["verdict"] == "allow"
        assert checks["weekly_cap"]["verdict"] == "deny"  # three in the week before DAY
        # Before the opt-out and the first e-mail, at 10:00 in Berlin.
        early = _utc(4, 8).isoformat()
        answer = api.agent.get(url, params={"channel": "email", "at": early}).json()
        assert answer["decision"] == "allow", answer
        assert api.agent.get(url, params={"channel": "fax"}).status_code == 400
        missing = "/v1/customers/nobody@example.com/contact-policy"
        assert api.agent.get(missing, params={"channel": "email"}).status_code == 404
        listed = api.agent.get(
            "/v1/contact-violations", params={"customer": "policy@example.com"}
        ).json()
        assert listed["by_rule"] == {
            "consent": 3,
            "quiet_hours": 1,
            "unwanted_topics": 1,
            "weekly_cap": 1,
        }
        assert listed["violations"][0]["event_id"] == ids["unwanted"]  # the latest first
        bad_rule = api.agent.get("/v1/contact-violations", params={"rule": "volume"})
        assert bad_rule.status_code == 400 and "known: consent" in bad_rule.text

    denied = rapport(
        rapport_settings,
        "can-contact", "cust-policy", "--channel", "call_center", "--purpose", "service",
        "--at", _utc(4, 8).isoformat(), "--json",
    )  # fmt: skip
    assert denied.returncode == 3, denied.stdout + denied.stderr
    decision: dict[str, Any] = json.loads(denied.stdout)
    assert [c["rule"] for c in decision["checks"] if c["verdict"] == "deny"] == ["allowed_channels"]
    allowed = rapport(
        rapport_settings,
        "can-contact", "policy@example.com", "--channel", "email",
        "--at", _utc(4, 8).isoformat(),
    )  # fmt: skip
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    assert "ALLOW" in allowed.stdout
    shown = rapport(rapport_settings, "contact-violations", "--rule", "quiet_hours")
    assert shown.returncode == 0, shown.stderr
    assert "quiet_hours" in shown.stdout and "cust-policy" in shown.stdout
