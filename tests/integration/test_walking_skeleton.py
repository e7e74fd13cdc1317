"""One kind of touchpoint, producer → real Kafka → real faust worker → PostgreSQL."""

from __future__ import annotations

import signal
from dataclasses import asdict
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from infra.settings import Settings
from producers import Publisher
from producers.sample import sample_calls
from projections.postgres.tables import build_tables
from projections.timeline import timeline_entry
from schemas import Envelope
from tests.support import running_worker, wait_for

pytestmark = pytest.mark.integration


def _rows(engine: sa.Engine) -> list[dict]:
    timeline = build_tables("core_v1").timeline
    try:
        with engine.connect() as conn:
            return [
                dict(r)
                for r in conn.execute(sa.select(timeline).order_by(timeline.c.event_id)).mappings()
            ]
    except sa.exc.ProgrammingError:
        return []  # the worker has not created the schema yet


def _expected(events) -> list[dict]:
    return sorted((asdict(timeline_entry(e)) for e in events), key=lambda r: r["event_id"])


def test_calls_travel_to_the_timeline_exactly(rapport_settings: Settings) -> None:
    events = list(sample_calls(customers=4, calls=40, seed=11))
    with Publisher(rapport_settings.bootstrap, rapport_settings.topic) as publisher:
        events = [_received(e) for e in events]
        publisher.publish_all(events)

    engine = sa.create_engine(rapport_settings.db_url)
    with running_worker(rapport_settings):
        rows = wait_for(
            lambda: (r := _rows(engine)) and len(r) >= len(events) and r, what="all calls projected"
        )
    assert rows == _expected(events)


def test_redelivery_and_a_killed_worker_change_nothing(rapport_settings: Settings) -> None:
    events = [_received(e) for e in sample_calls(customers=3, calls=30, seed=12)]
    engine = sa.create_engine(rapport_settings.db_url)
    with Publisher(rapport_settings.bootstrap, rapport_settings.topic) as publisher:
        publisher.publish_all(events)
        with running_worker(rapport_settings) as worker:
            wait_for(lambda: len(_rows(engine)) >= len(events), what="first pass projected")
            worker.send_signal(
                signal.SIGKILL
            )  # offsets may be uncommitted: all will be redelivered
            worker.wait()
        publisher.publish_all(events)  # the same events again: same event_ids
    with running_worker(rapport_settings):
        from tests.support import wait_for as _wait

        def caught_up() -> bool:
            with engine.connect() as conn:
                done = conn.execute(
                    sa.text("SELECT coalesce(sum(next_offset), 0) FROM core_v1.positions")
                )
                return done.scalar_one() >= 2 * len(events)

        _wait(caught_up, what="worker caught up with the duplicates")
    assert _rows(engine) == _expected(events)


def test_worker_starts_on_a_fresh_state_directory(rapport_settings: Settings, tmp_path) -> None:
    """With external services and no `infra up`, nothing has created the state directory."""
    fresh = rapport_settings.model_copy(update={"state_dir": tmp_path / "never" / "made"})
    event = next(sample_calls(customers=1, calls=1, seed=13))
    with Publisher(fresh.bootstrap, fresh.topic) as publisher:
        publisher.publish_all([event])
    engine = sa.create_engine(fresh.db_url)
    with running_worker(fresh, log=tmp_path / "worker.log"):
        wait_for(lambda: len(_rows(engine)) == 1, what="the event projected")


def _received(event: Envelope) -> Envelope:
    """The event as the collector stamps it: received now."""
    return event.model_copy(update={"received_at": datetime.now(UTC)})
