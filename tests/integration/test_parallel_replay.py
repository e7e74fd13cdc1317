"""A replay split over several processes builds exactly what one process builds, also
when it resumes from an interruption with a different number of processes."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from kafka import KafkaProducer

from infra.settings import Settings
from producers import Publisher
from projections.postgres.store import create_schema, make_engine
from projections.postgres.verify import checksums, compare
from projections.postgres.versions import PostgresVersions
from streams.pipeline import RetryPolicy
from streams.rebuild import Rebuilder
from streams.redrive import read_parked
from streams.replay import ReplayError
from tests.workload import mixed_events

pytestmark = pytest.mark.integration


def test_parallel_replay_equals_one_process_and_resumes(rapport_settings: Settings) -> None:
    s = rapport_settings
    events = mixed_events(customers=30, per_customer=25, seed=31)
    with Publisher(s.bootstrap, s.topic) as publisher:
        publisher.publish_all(events + events[::5])  # with duplicates
    raw = KafkaProducer(bootstrap_servers=s.bootstrap)
    raw.send(s.topic, key=b"cust-00002", value=b'{"type": "not.a.type"}')
    raw.flush()
    raw.close()
    engine = make_engine(s.db_url)

    single = Rebuilder(PostgresVersions(engine), s.bootstrap, s.topic, batch_size=50, jobs=1).build(
        1
    )

    parallel = Rebuilder(PostgresVersions(engine), s.bootstrap, s.topic, batch_size=50, jobs=3)
    head = parallel._replayer("core_v1").head()
    halfway = {p: offset // 2 for p, offset in head.items()}
    first = parallel.build(2, until=halfway)  # "interrupted" halfway
    rest = Rebuilder(PostgresVersions(engine), s.bootstrap, s.topic, batch_size=50, jobs=2).build(2)

    assert first.records + rest.records == single.records == sum(head.values())
    assert first.parked + rest.parked == single.parked == 1
    assert first.projected + rest.projected == single.projected == len(events)
    with engine.connect() as conn:
        one, split = checksums(conn, "core_v1"), checksums(conn, "core_v2")
        assert one.rows["timeline"] == len(events)
        assert compare(conn, one, split, "core_v1", "core_v2") == []


def test_a_failing_replay_process_fails_the_replay_naming_why(
    rapport_settings: Settings,
) -> None:
    s = rapport_settings
    with Publisher(s.bootstrap, s.topic) as publisher:
        publisher.publish_all(mixed_events(customers=9, per_customer=5, seed=32))
    engine = make_engine(s.db_url)
    create_schema(engine, "core_v1")  # the live version
    create_schema(engine, "core_v2", with_indexes=False)
    with engine.begin() as conn:  # every write is refused, as a revoked privilege would be
        conn.execute(
            sa.text(
                """CREATE FUNCTION core_v2.refuse() RETURNS trigger AS $$ BEGIN
                RAISE EXCEPTION 'refuse' USING ERRCODE = 'insufficient_privilege';
                END $$ LANGUAGE plpgsql;
                CREATE TRIGGER refuse BEFORE INSERT ON core_v2.timeline
                FOR EACH STATEMENT EXECUTE FUNCTION core_v2.refuse();"""
            )
        )
    rebuilder = Rebuilder(
        PostgresVersions(engine), s.bootstrap, s.topic, jobs=3, retry=RetryPolicy(give_up_after_s=2)
    )
    with pytest.raises(
        ReplayError, match=r"replay-[\d-]+ failed: GaveUp: .*InsufficientPrivilege: refuse"
    ):
        rebuilder.build(2)


def test_a_replay_gets_past_records_the_projection_refuses(rapport_settings: Settings) -> None:
    """The record the live worker parked is found in the dead-letter topic, not parked
    again; a record only the new version refuses is parked by the replay, naming it."""
    s = rapport_settings
    events = mixed_events(customers=9, per_customer=20, seed=33)
    with Publisher(s.bootstrap, s.topic) as publisher:
        publisher.publish_all(events)
    raw = KafkaProducer(bootstrap_servers=s.bootstrap)
    raw.send(s.topic, key=b"cust-00002", value=b'{"type": "not.a.type"}')
    raw.flush()
    raw.close()
    engine = make_engine(s.db_url)
    first = Rebuilder(PostgresVersions(engine), s.bootstrap, s.topic, jobs=2).build(1)
    refused = events[77]
    create_schema(engine, "core_v2", with_indexes=False)
    with engine.begin() as conn:  # the new version refuses one row its predecessor took
        conn.execute(
            sa.text(
                f"""CREATE FUNCTION core_v2.refuse() RETURNS trigger AS $$ BEGIN
                IF NEW.event_id = '{refused.event_id}' THEN
                  RAISE EXCEPTION 'no' USING ERRCODE = 'check_violation'; END IF;
                RETURN NEW; END $$ LANGUAGE plpgsql;
                CREATE TRIGGER refuse BEFORE INSERT ON core_v2.timeline
                FOR EACH ROW EXECUTE FUNCTION core_v2.refuse();"""
            )
        )
    second = Rebuilder(PostgresVersions(engine), s.bootstrap, s.topic, jobs=2).build(2)

    assert first.parked == 1 and second.parked == 2
    assert first.projected == len(events) and second.projected == len(events) - 1
    parked = list(read_parked(s.bootstrap, s.dlq_topic))
    assert [p.stage for p in parked] == ["decode", "database"]  # each parked once
    assert parked[1].event_id == str(refused.event_id)
