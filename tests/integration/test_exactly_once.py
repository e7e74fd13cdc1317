"""Exactly-once effect on the real broker: duplicates, late events, SIGKILL, two workers.

The reference is always a clean rebuild: the pure folds applied in memory, or a fresh
projection version built from offset 0 by another worker.
"""

from __future__ import annotations

import re
import signal

import pytest
import sqlalchemy as sa

from infra.settings import Settings
from producers import Publisher
from projections import profile as profile_projector
from projections.profile_rows import to_row
from tests.integration.projection_snapshot import positions_total, projected_count, snapshot
from tests.support import running_worker, wait_for
from tests.workload import mixed_events

pytestmark = pytest.mark.integration


def _publish(settings: Settings, events) -> None:  # type: ignore[no-untyped-def]
    with Publisher(settings.bootstrap, settings.topic) as publisher:
        publisher.publish_all(events)


def _caught_up(engine: sa.Engine, schema: str, records: int) -> bool:
    return positions_total(engine, schema) >= records


def test_duplicates_and_late_events_match_the_pure_fold(rapport_settings: Settings) -> None:
    events = mixed_events(customers=20, per_customer=30, seed=1)
    duplicates = events[::7]  # re-sent later with the same event_ids
    _publish(rapport_settings, events + duplicates)
    engine = sa.create_engine(rapport_settings.db_url)
    with running_worker(rapport_settings):
        wait_for(
            lambda: _caught_up(engine, "core_v1", len(events) + len(duplicates)),
            what="worker caught up",
            timeout=120,
        )

    got = snapshot(engine, "core_v1")
    assert len(got["timeline"]) == len(events)
    expected_profiles = {}
    for event in events:
        key = event.customer.partition_key
        expected_profiles[key] = profile_projector.apply(expected_profiles.get(key), event)
    with engine.connect() as conn:
        rows = {r.customer_id: r for r in conn.execute(sa.text("SELECT * FROM core_v1.customers"))}
    for customer_id, state in expected_profiles.items():
        row = rows[customer_id]
        expected = to_row(state)
        assert row.events == expected["events"]
        assert row.channel_counts == expected["channel_counts"]
        assert row.traits == _json_roundtrip(expected["traits"])
        assert row.consent == _json_roundtrip(expected["consent"])
        assert row.first_seen == expected["first_seen"] and row.last_seen == expected["last_seen"]
    purchases = [e for e in events if e.type in ("commerce.purchased", "commerce.refunded")]
    assert len(got["purchases"]) == len(purchases)
    assert sum(n for *_, n in got["channel_daily"]) == len(events)


def test_sigkill_mid_stream_then_restart_equals_a_clean_rebuild(rapport_settings: Settings) -> None:
    events = mixed_events(customers=200, per_customer=40, seed=2)  # 8,000 events
    _publish(rapport_settings, events)
    engine = sa.create_engine(rapport_settings.db_url)
    with running_worker(rapport_settings, "--batch-size", "200") as worker:
        wait_for(
            lambda: projected_count(engine, "core_v1") > 1000, what="some batches in", timeout=120
        )
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    assert projected_count(engine, "core_v1") < len(events), "killed too late to prove anything"
    with running_worker(rapport_settings, "--batch-size", "200"):
        wait_for(
            lambda: _caught_up(engine, "core_v1", len(events)),
            what="restart caught up",
            timeout=180,
        )

    rebuild = rapport_settings.model_copy(
        update={
            "consumer_group": rapport_settings.consumer_group + "-rebuild",
            "projection_schema": "core_check",
        }
    )
    with running_worker(rebuild):
        wait_for(
            lambda: _caught_up(engine, "core_check", len(events)), what="rebuild done", timeout=180
        )
    assert snapshot(engine, "core_v1") == snapshot(engine, "core_check")


def test_two_workers_split_the_partitions_with_a_correct_result(rapport_settings: Settings) -> None:
    events = mixed_events(customers=300, per_customer=20, seed=3)  # 6,000 events, 3 partitions
    engine = sa.create_engine(rapport_settings.db_url)
    logs = [rapport_settings.state_dir / f"w{i}.log" for i in (1, 2)]
    with (
        running_worker(rapport_settings, "--loglevel", "info", "--batch-size", "100", log=logs[0]),
        running_worker(rapport_settings, "--loglevel", "info", "--batch-size", "100", log=logs[1]),
    ):
        wait_for(
            lambda: all(_latest_assignment(p) not in (None, "(none)") for p in logs),
            what="both workers hold partitions",
            timeout=90,
        )
        _publish(rapport_settings, events)
        wait_for(lambda: _caught_up(engine, "core_v1", len(events)), what="caught up", timeout=180)

    per_worker = [
        sum(int(n) for n in re.findall(r"projected (\d+) new events", p.read_text())) for p in logs
    ]
    assert all(n > 0 for n in per_worker), per_worker
    assert sum(per_worker) == len(events)
    rebuild = rapport_settings.model_copy(
        update={
            "consumer_group": rapport_settings.consumer_group + "-rebuild",
            "projection_schema": "core_check",
        }
    )
    with running_worker(rebuild):
        wait_for(lambda: _caught_up(engine, "core_check", len(events)), what="rebuild", timeout=180)
    assert snapshot(engine, "core_v1") == snapshot(engine, "core_check")


def _json_roundtrip(value):  # type: ignore[no-untyped-def]
    import orjson

    return orjson.loads(orjson.dumps(value, default=str))


def _latest_assignment(log) -> str | None:  # type: ignore[no-untyped-def]
    found = re.findall(r"assigned partitions: (\S+)", log.read_text()) if log.exists() else []
    return found[-1] if found else None
