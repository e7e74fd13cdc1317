"""Bad records from a third-party client are parked with their reason; the rest flows on."""

from __future__ import annotations

import json
import uuid

import orjson
import pytest
import sqlalchemy as sa
from kafka import KafkaProducer

from infra.settings import Settings
from producers.sample import sample_calls
from projections.postgres.tables import build_tables
from schemas import encode_event
from tests.support import rapport, running_worker, wait_for

pytestmark = pytest.mark.integration


def _projected_ids(engine: sa.Engine) -> set[uuid.UUID]:
    timeline = build_tables("core_v1").timeline
    try:
        with engine.connect() as conn:
            return set(conn.execute(sa.select(timeline.c.event_id)).scalars())
    except sa.exc.ProgrammingError:
        return set()


def test_invalid_records_are_parked_and_can_be_redriven(
    rapport_settings: Settings, tmp_path
) -> None:
    good_before, good_after = list(sample_calls(customers=1, calls=2, seed=5))
    bad_event = orjson.loads(encode_event(next(sample_calls(customers=1, calls=1, seed=6))))
    bad_event["payload"]["duration_seconds"] = -30
    third_party = KafkaProducer(bootstrap_servers=rapport_settings.bootstrap, acks="all")
    for value in (
        encode_event(good_before),
        b"\x00not json at all",
        orjson.dumps(bad_event),
        encode_event(good_after),
    ):
        third_party.send(
            rapport_settings.topic,
            key=b"cust-001",
            value=value,
            headers=[("origin", b"legacy-crm")],
        )
    third_party.flush()
    third_party.close()

    engine = sa.create_engine(rapport_settings.db_url)
    with running_worker(rapport_settings):
        wait_for(
            lambda: {good_before.event_id, good_after.event_id} <= _projected_ids(engine),
            what="valid records projected",
        )

        listed = wait_for(
            lambda: (
                (r := rapport(rapport_settings, "dlq", "list", "--json")).returncode == 0
                and len(json.loads(r.stdout)) == 2
                and r
            ),
            what="2 parked",
        )
        parked = {p["error_type"]: p for p in json.loads(listed.stdout)}
        assert set(parked) == {"DecodeError", "EventValidationError"}
        invalid = parked["EventValidationError"]
        assert invalid["event_id"] == bad_event["event_id"]
        assert "payload.duration_seconds=-30" in invalid["error"]
        assert invalid["source"].startswith(f"{rapport_settings.topic}/")

        shown = json.loads(rapport(rapport_settings, "dlq", "show", invalid["ref"]).stdout)
        assert shown["headers"]["origin"] == "legacy-crm"
        assert orjson.loads(shown["value"]) == bad_event

        # Still invalid: refused, nothing sent.
        again = rapport(rapport_settings, "dlq", "redrive", invalid["ref"])
        assert again.returncode == 1 and "still fails validation" in again.stderr

        # A corrected event must keep the original event_id.
        fixed = {**bad_event, "payload": {**bad_event["payload"], "duration_seconds": 30}}
        wrong_id = tmp_path / "wrong.json"
        wrong_id.write_bytes(orjson.dumps({**fixed, "event_id": str(uuid.uuid4())}))
        refused = rapport(
            rapport_settings, "dlq", "redrive", invalid["ref"], "--from-file", str(wrong_id)
        )
        assert refused.returncode == 1 and "keep the original event_id" in refused.stderr

        corrected = tmp_path / "fixed.json"
        corrected.write_bytes(orjson.dumps(fixed))
        done = rapport(
            rapport_settings, "dlq", "redrive", invalid["ref"], "--from-file", str(corrected)
        )
        assert done.returncode == 0, done.stderr
        wait_for(
            lambda: uuid.UUID(bad_event["event_id"]) in _projected_ids(engine),
            what="re-driven event projected",
        )

    assert _projected_ids(engine) == {
        good_before.event_id,
        good_after.event_id,
        uuid.UUID(bad_event["event_id"]),
    }
