"""Change a view, rebuild it from history without downtime, prove it, swap it in.

The sequence of docs/replay.md on the real broker and database: a live version built by
the worker through duplicates, late events, an invalid record and a crash; a verify that
finds the rebuild identical; a "code change" (a new RFM weight) whose rebuild differs in
exactly the scores; the swap; and a reader that keeps querying throughout.
"""

from __future__ import annotations

import signal
import threading
import time

import pytest
import sqlalchemy as sa
from kafka import KafkaProducer

from infra.settings import Settings
from producers import Publisher
from projections.postgres import queries
from projections.postgres.store import make_engine
from tests.integration.projection_snapshot import positions_total, projected_count, snapshot
from tests.support import rapport, running_worker, wait_for
from tests.workload import mixed_events

pytestmark = pytest.mark.integration


class Reader(threading.Thread):
    """An analyst who never stops querying; records every failure."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.engine = make_engine(url)
        self.stop = threading.Event()
        self.queries = 0
        self.failures: list[str] = []

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                with self.engine.connect() as conn:
                    page = queries.customer_timeline(conn, "cust-00003", limit=1000)
                    assert page.rows, "empty timeline"
                    queries.customer_profile(conn, "cust-00003")
                    queries.top_customers(conn, by="rfm", n=5)
                self.queries += 1
            except Exception as exc:
                self.failures.append(repr(exc))
            time.sleep(0.02)


def test_replay_verify_change_and_swap_while_serving(rapport_settings: Settings) -> None:
    s = rapport_settings
    events = mixed_events(customers=40, per_customer=30, seed=21)
    engine = make_engine(s.db_url)
    with Publisher(s.bootstrap, s.topic) as publisher:
        publisher.publish_all(events[:600])
        raw = KafkaProducer(bootstrap_servers=s.bootstrap)
        raw.send(s.topic, key=b"cust-00001", value=b'{"type": "call_center.call"}')
        raw.flush()
        raw.close()
        with running_worker(s, "--batch-size", "100") as worker:
            wait_for(lambda: projected_count(engine, "core_v1") >= 200, what="first batches")
            worker.send_signal(signal.SIGKILL)
            worker.wait()
        publisher.publish_all(events[600:] + events[::10])  # the rest, and duplicates

    with running_worker(s, "--batch-size", "100"):  # live, following the active version
        total_records = len(events) + 1 + len(events[::10])
        wait_for(
            lambda: positions_total(engine, "core_v1") >= total_records,
            timeout=120,
            what="live caught up",
        )
        assert rapport(s, "refresh-scores").returncode == 0  # the scorer's day, as replay's

        reader = Reader(s.db_url)
        reader.start()
        try:
            same = rapport(s, "replay", "--verify", "--version", "2", timeout=300)
            assert same.returncode == 0, same.stdout + same.stderr
            assert "identical" in same.stdout

            changed = rapport(
                s,
                "replay",
                "--verify",
                "--version",
                "3",
                timeout=300,
                RAPPORT_SCORE_RFM_WEIGHT_RECENCY="3",
            )
            assert changed.returncode == 2, changed.stdout + changed.stderr
            reported = [line for line in changed.stdout.splitlines() if line.startswith("- ")]
            assert reported and all(line.startswith("- scores, customer") for line in reported)

            more = mixed_events(customers=5, per_customer=10, seed=22)
            with Publisher(s.bootstrap, s.topic) as publisher:
                publisher.publish_all(more)
            swapped = rapport(
                s, "projections", "activate", "3", timeout=300, RAPPORT_SCORE_RFM_WEIGHT_RECENCY="3"
            )
            assert swapped.returncode == 0, swapped.stderr
            assert "v3 is live (was core_v1)" in swapped.stdout

            latest = mixed_events(customers=3, per_customer=5, seed=23)
            with Publisher(s.bootstrap, s.topic) as publisher:
                publisher.publish_all(latest)
            unique = len({e.event_id for e in events + more + latest})
            wait_for(
                lambda: projected_count(engine, "core_v3") == unique,
                timeout=120,
                what="the live worker writes into v3 after the swap",
            )
        finally:
            reader.stop.set()
            reader.join(10)

    assert reader.failures == [] and reader.queries > 10, (reader.queries, reader.failures[:3])
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM rapport.timeline")).scalar_one() == unique
    v1, v3 = snapshot(engine, "core_v1"), snapshot(engine, "core_v3")
    # v1 stopped at the swap; v3 has the events that came after it and nothing else new.
    assert len(v3["timeline"]) - len(v1["timeline"]) == len(latest)
    listed = rapport(s, "projections", "list", "--json")
    statuses = {row["version"]: row["status"] for row in __import__("json").loads(listed.stdout)}
    assert statuses == {1: "retired", 2: "verified", 3: "active"}
    assert rapport(s, "projections", "drop", "2").returncode == 0
    refused = rapport(s, "projections", "drop", "3")
    assert refused.returncode == 1 and "is active" in refused.stderr
