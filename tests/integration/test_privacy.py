"""Privacy with the real broker, worker, PostgreSQL, collector and CLI: personal fields are
sealed before Kafka, erasure leaves no row holding them (also after a full replay) while
the channel counters still equal a rebuild's, and an erased customer's identifiers are
refused from then on."""

from __future__ import annotations

import itertools
import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from kafka import KafkaConsumer

from infra import bootstrap
from infra.settings import Settings
from producers import Publisher
from producers.simulator import simulate
from schemas import CustomerRef, Envelope, Source
from schemas.envelope import Payload
from schemas.errors import SubjectErased
from schemas.payloads.call_center import CallCenterCall
from schemas.payloads.commerce import Purchased
from schemas.payloads.email import EmailSent
from schemas.payloads.privacy import CustomerErased
from schemas.payloads.profile import ProfileUpdated
from schemas.payloads.social import SocialCommented
from schemas.payloads.web import PageViewed
from streams.redrive import read_parked
from tests.integration.projection_snapshot import positions_total
from tests.support import (
    rapport,
    running_collector,
    running_worker,
    serving_api,
    wait_for,
)

pytestmark = pytest.mark.integration

AT = datetime(2026, 5, 4, 9, 30, tzinfo=UTC)
ANNA = CustomerRef(
    customer_id="cust-anna",
    email="anna.erasmus@example.com",
    phone="+84 900 111 222",
    anonymous_id="anon-anna-7f3",
    social_handles={"x": "@anna_erasmus"},
)
BEN = CustomerRef(customer_id="cust-ben", email="ben.bauer@example.com")
# Every personal value of Anna's that the events carry: none may survive her erasure.
ANNA_SECRETS = (
    "anna.erasmus@example.com",
    "900 111 222",
    "84900111222",
    "@anna_erasmus",
    "Anna Erasmus",
    "refund for the blue kettle",
    "Anna, your kettle",
    "kettle is lovely",
)


def _event(payload: Payload, who: CustomerRef, minutes: int) -> Envelope:
    return Envelope.new(
        payload,
        customer=who,
        occurred_at=AT + timedelta(minutes=minutes),
        source=Source(system="crm", channel=payload.channel),
    )


def _story() -> list[Envelope]:
    anna_id = CustomerRef(customer_id="cust-anna")
    return [
        _event(ProfileUpdated(traits={"name": "Anna Erasmus", "tier": "gold"}), ANNA, 0),
        _event(PageViewed(url="https://shop.example/kettles"), ANNA, 1),
        _event(
            CallCenterCall(
                direction="inbound",
                duration_seconds=300,
                agent="Bui",
                outcome="resolved",
                topic="refund",
                notes_summary="Wants a refund for the blue kettle",
            ),
            anna_id,
            2,
        ),
        _event(EmailSent(message_id="m-1", subject="Anna, your kettle"), anna_id, 3),
        _event(Purchased(order_id="o-1", amount=Decimal("39.90"), currency="EUR"), anna_id, 4),
        _event(
            SocialCommented(platform="x", text="The kettle is lovely"),
            CustomerRef(social_handles={"x": "@anna_erasmus"}),
            5,
        ),
        _event(ProfileUpdated(traits={"name": "Ben Bauer"}), BEN, 6),
        _event(Purchased(order_id="o-2", amount=Decimal("12.00"), currency="EUR"), BEN, 7),
    ]


def _holding(engine: sa.Engine, needles: tuple[str, ...]) -> dict[str, int]:
    """Rows of any table of ours, in any schema, whose text holds one of `needles`."""
    found: dict[str, int] = {}
    with engine.connect() as conn:
        tables = conn.execute(
            sa.text(
                "SELECT table_schema, table_name FROM information_schema.tables "
                "WHERE table_type = 'BASE TABLE' "
                "AND table_schema NOT IN ('pg_catalog', 'information_schema')"
            )
        ).all()
        for schema, table in tables:
            for needle in needles:
                n = conn.execute(
                    sa.text(f'SELECT count(*) FROM "{schema}"."{table}" t WHERE t::text ILIKE :n'),
                    {"n": f"%{needle}%"},
                ).scalar_one()
                if n:
                    found[f"{schema}.{table} ~ {needle}"] = n
    return found


def _channel_counts(engine: sa.Engine, schema: str) -> dict[tuple[str, str, str], int]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(f"SELECT day, channel, type, events FROM {schema}.channel_daily")
        )
        return {(str(r.day), r.channel, r.type): r.events for r in rows}


def _timeline_rows(engine: sa.Engine, customer_id: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.text("SELECT count(*) FROM rapport.timeline WHERE customer_id = :c"),
                {"c": customer_id},
            ).scalar_one()
        )


def _ranked(engine: sa.Engine) -> bool:
    with engine.connect() as conn:
        ranked_at = conn.execute(sa.text("SELECT ranked_at FROM core_v1.population")).scalar()
    return ranked_at is not None


def _raw_records(settings: Settings) -> list[tuple[bytes | None, bytes]]:
    consumer = KafkaConsumer(
        settings.topic,
        bootstrap_servers=settings.bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=2000,
    )
    try:
        return [(m.key, m.value) for m in consumer]
    finally:
        consumer.close()


def test_erasure_survives_a_full_replay_and_suppresses_the_customer(
    rapport_settings: Settings, tmp_path: Path
) -> None:
    settings = rapport_settings
    story = _story()
    crowd = list(itertools.islice(simulate(40, seed=5, start=AT - timedelta(days=30)), 600))
    with bootstrap.publisher(settings) as publisher:
        publisher.publish_all([*crowd, *story])
    total = len(crowd) + len(story)

    # On the wire: no personal value in any key or value; Anna's are in sealed boxes.
    records = _raw_records(settings)
    assert len(records) == total
    wire = b"\n".join((k or b"") + b" " + v for k, v in records)
    for secret in ANNA_SECRETS:
        assert secret.encode() not in wire, secret
    assert sum(b'"sealed":{"key":' in v for _, v in records) >= 5

    engine = bootstrap.engine(settings)
    with running_worker(settings):
        wait_for(lambda: positions_total(engine, "core_v1") >= total, what="drained", timeout=120)
        # The read side opened them: an agent sees Anna's notes and address.
        exported = rapport(settings, "export-subject", "anna.erasmus@example.com")
        assert exported.returncode == 0, exported.stderr
        subject = json.loads(exported.stdout)
        assert subject["customer_id"] == "cust-anna"
        assert "email:anna.erasmus@example.com" in subject["profile"]["identifiers"]
        notes = [r["payload"].get("notes_summary") for r in subject["timeline"]]
        assert "Wants a refund for the blue kettle" in notes
        assert len(subject["timeline"]) == 6 and subject["key_store"]["erased"] is False
        counts_before = _channel_counts(engine, "core_v1")

        erased = rapport(settings, "erase", "cust-anna", "--reason", "DSR-2026-0113", "--json")
        assert erased.returncode == 0, erased.stderr
        report = json.loads(erased.stdout)
        assert report["customer"] == "cust-anna"
        assert report["timeline_rows_removed"] == {"core_v1": 6}
        assert report["keys_destroyed"] >= 2  # cust-anna's and the social handle's
        # The worker applies privacy.erased too (and counts it, as a rebuild will).
        wait_for(lambda: positions_total(engine, "core_v1") >= total + 1, what="erasure event")

        assert _holding(engine, ANNA_SECRETS) == {}
        counts_after = _channel_counts(engine, "core_v1")
        erasure_day = (str(datetime.now(UTC).date()), "privacy", "privacy.erased")
        assert counts_after.pop(erasure_day, 0) == 1
        assert counts_after == counts_before  # her events still count; nothing twice
        again = rapport(settings, "export-subject", "cust-anna")
        assert again.returncode != 0 and "cust-anna" in again.stdout + again.stderr
        assert _timeline_rows(engine, "cust-ben") == 2  # Ben is untouched

        # Suppression: the SDK and the collector refuse her identifiers, by any of them.
        late = _event(
            PageViewed(url="https://shop.example/again"), CustomerRef(phone="+84900111222"), 9
        )
        with pytest.raises(SubjectErased), bootstrap.publisher(settings) as publisher:
            publisher.publish(late)
        key = rapport(settings, "sources", "add", "webshop").stdout.strip().split()[-1]
        with running_collector(settings) as base:
            body = {
                "event_id": str(uuid.uuid4()),
                "type": "web.page_viewed",
                "schema_version": 1,
                "occurred_at": AT.isoformat(),
                "customer": {"email": "Anna.Erasmus@example.com"},
                "payload": {"url": "https://shop.example/x"},
            }
            answer = httpx.post(f"{base}/v1/events", json=body, auth=(key, ""), timeout=30)
            assert answer.status_code == 422, answer.text
            assert "erased" in answer.text and "anna" not in answer.text.lower()
        # A producer outside Rapport's key store sends her in clear: the worker's gate
        # folds nothing of it, and counts it once.
        with Publisher(settings.bootstrap, settings.topic) as clear:
            clear.publish_and_wait(
                _event(
                    CallCenterCall(
                        direction="inbound",
                        duration_seconds=60,
                        agent="Bui",
                        outcome="resolved",
                        topic="refund",
                        notes_summary="Anna Erasmus called again",
                    ),
                    CustomerRef(customer_id="cust-anna"),
                    10,
                )
            )
        wait_for(lambda: positions_total(engine, "core_v1") >= total + 2, what="clear event")
        # (the forged erasure below is the +3rd record)
        assert _holding(engine, ("Anna Erasmus called again", *ANNA_SECRETS)) == {}
        # Only `rapport erase` records an erasure: a forged one is parked, Ben untouched.
        forged = Envelope.new(
            CustomerErased(reason="spoof", identifiers=0),
            customer=CustomerRef(customer_id="cust-ben"),
            occurred_at=AT,
            source=Source(system="rapport-privacy", channel="privacy"),
        )
        with Publisher(settings.bootstrap, settings.topic) as clear:
            clear.publish_and_wait(forged)
        parked = wait_for(
            lambda: [
                r
                for r in read_parked(settings.bootstrap, settings.dlq_topic)
                if r.event_id == str(forged.event_id)
            ],
            what="the forged erasure parked",
        )
        assert "matches no erasure" in parked[0].error
        assert _timeline_rows(engine, "cust-ben") == 2
        # The others' base-relative scores are ranked again without her.
        wait_for(lambda: _ranked(engine), what="the population ranked again", timeout=60)

    # A full replay from offset 0 brings nothing of hers back, and counts what live counts.
    replayed = rapport(settings, "replay", "--no-swap", "--jobs", "1", timeout=300)
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert _holding(engine, ("Anna Erasmus called again", *ANNA_SECRETS)) == {}
    assert _channel_counts(engine, "core_v2") == _channel_counts(engine, "core_v1")
    verified = rapport(settings, "replay", "--verify", "--jobs", "1", timeout=300)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_admins_export_and_erase_over_http_and_nobody_else_may(
    rapport_settings: Settings,
) -> None:
    settings = rapport_settings
    story = _story()
    with bootstrap.publisher(settings) as publisher:
        publisher.publish_all(story)
    engine = bootstrap.engine(settings)
    with running_worker(settings):
        wait_for(lambda: positions_total(engine, "core_v1") >= len(story), what="drained")
        with serving_api(engine, subject_rights=bootstrap.subject_rights(settings)) as api:
            for client in (api.agent, api.analyst):
                assert client.get("/v1/admin/subjects/cust-anna").status_code == 403
                denied = client.post(
                    "/v1/admin/erasures", json={"customer": "cust-anna", "reason": "x"}
                )
                assert denied.status_code == 403
            subject = api.admin.get("/v1/admin/subjects/anna.erasmus@example.com")
            assert subject.status_code == 200, subject.text
            assert "Anna Erasmus" in subject.text and len(subject.json()["timeline"]) == 6
            no_reason = api.admin.post(
                "/v1/admin/erasures", json={"customer": "cust-anna", "reason": " "}
            )
            assert no_reason.status_code == 400
            erased = api.admin.post(
                "/v1/admin/erasures", json={"customer": "cust-anna", "reason": "DSR-7"}
            )
            assert erased.status_code == 200, erased.text
            assert erased.json()["timeline_rows_removed"] == {"core_v1": 6}
            assert api.agent.get("/v1/customers/cust-anna/profile").status_code == 404
            assert api.admin.get("/v1/admin/subjects/cust-anna").status_code == 404
            assert api.agent.get("/v1/customers/cust-ben/profile").status_code == 200
        wait_for(lambda: positions_total(engine, "core_v1") >= len(story) + 1, what="erasure")
    assert _holding(engine, ANNA_SECRETS) == {}


def test_the_key_store_keeps_one_key_per_subject_and_none_for_an_erased_one(
    rapport_settings: Settings,
) -> None:
    keys = bootstrap.key_store(rapport_settings)
    first, erased = keys.keys_for_subjects(["s-anna", "s-ben"])
    assert set(first) == {"s-anna", "s-ben"} and not erased
    again, _ = keys.keys_for_subjects(["s-anna", "s-carl"])  # another producer, later
    assert again["s-anna"] == first["s-anna"] and set(again) == {"s-anna", "s-carl"}
    erasure = keys.erase("cust-anna", "DSR-9", ["t-anna-email", "s-anna"], ["s-anna"])
    assert erasure.keys_destroyed == 1 and erasure.identifiers == 2
    found, refused = keys.keys_for_subjects(["s-anna", "s-ben"])
    assert set(found) == {"s-ben"} and set(refused) == {"s-anna"}
    assert refused["s-anna"].erasure_id == erasure.erasure_id
    by_id, destroyed = keys.keys_by_id([first["s-anna"].key_id, first["s-ben"].key_id])
    assert destroyed == {first["s-anna"].key_id} and set(by_id) == {first["s-ben"].key_id}
    assert keys.erase("cust-anna", "DSR-9", ["t-anna-phone"], []).erasure_id == erasure.erasure_id
    keys.engine.dispose()
