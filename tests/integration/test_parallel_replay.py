"""A replay split over several processes builds exactly what one process builds, also
when it resumes from an interruption with a different number of processes."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from kafka import KafkaProducer

from infra.settings import Settings
from producers import Publisher
from projections.store import create_schema, make_engine
from projections.verify import checksums, compare
from streams.rebuild import Rebuilder
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

    single = Rebuilder(engine, s.bootstrap, s.topic, batch_size=50, jobs=1).build(1)

    parallel = Rebuilder(engine, s.bootstrap, s.topic, batch_size=50, jobs=3)
    head = parallel._replayer("core_v1").head()
    halfway = {p: offset // 2 for p, offset in head.items()}
    first = parallel.build(2, until=halfway)  # "interrupted" halfway
    rest = Rebuilder(engine, s.bootstrap, s.topic, batch_size=50, jobs=2).build(2)

    assert first.records + rest.records == single.records == sum(head.values())
    assert first.invalid + rest.invalid == single.invalid == 1
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
    with engine.begin() as conn:  # every process's first insert will be refused
        conn.execute(
            sa.text("ALTER TABLE core_v2.timeline ADD CONSTRAINT refuse CHECK (false) NOT VALID")
        )
    with pytest.raises(ReplayError, match=r'replay-[\d-]+ failed: CheckViolation.*"refuse"'):
        Rebuilder(engine, s.bootstrap, s.topic, jobs=3).build(2)
