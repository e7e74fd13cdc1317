"""Account for every published event after a fault: projected once, or parked with a reason.

The reference for "counted once" is a clean rebuild: `Rebuilder.verify` replays the whole
topic into a fresh version up to the live version's positions and compares every table,
per customer (timeline, profile counters, purchases, score state, the population's
scores) and whole (channel counters).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa

from infra import bootstrap
from infra.settings import Settings
from projections.postgres.population import PopulationScorer
from projections.postgres.store import make_engine
from schemas import Envelope
from streams.redrive import ParkedRecord, read_parked
from tests.integration.projection_snapshot import positions_total
from tests.support import topic_size, wait_for


@dataclass
class Ledger:
    projected: set[uuid.UUID]
    parked: list[ParkedRecord]

    @property
    def parked_ids(self) -> set[uuid.UUID]:
        return {uuid.UUID(p.event_id) for p in self.parked if p.event_id}


def publish_sealed(settings: Settings, events: Iterable[Envelope]) -> set[uuid.UUID]:
    """As producers publish: personal fields sealed (the worker opens them, faults or not)."""
    events = list(events)
    with bootstrap.publisher(settings) as publisher:
        publisher.publish_all(events)
    return {e.event_id for e in events}


def stored_total(settings: Settings, schema: str = "core_v1") -> int:
    """How many records the worker has stored (the sum of its positions)."""
    engine = make_engine(settings.db_url)
    try:
        return positions_total(engine, schema)
    finally:
        engine.dispose()


def ledger(settings: Settings, schema: str = "core_v1") -> Ledger:
    engine = make_engine(settings.db_url)
    try:
        with engine.connect() as conn:
            projected = set(
                conn.execute(sa.text(f'SELECT event_id FROM "{schema}".timeline')).scalars()
            )
    finally:
        engine.dispose()
    return Ledger(projected, list(read_parked(settings.bootstrap, settings.dlq_topic)))


def wait_drained(settings: Settings, *, timeout: float = 240, schema: str = "core_v1") -> float:
    """Wait until the worker has stored a position for every record; return the seconds."""
    engine = make_engine(settings.db_url)
    began = time.monotonic()
    try:
        total = topic_size(settings)
        wait_for(
            lambda: positions_total(engine, schema) >= total,
            timeout=timeout,
            what=f"the worker to reach the head ({total} records)",
            interval=0.25,
        )
    finally:
        engine.dispose()
    return time.monotonic() - began


def assert_accounted(
    settings: Settings, published: Iterable[uuid.UUID], *, parked: Iterable[uuid.UUID] = ()
) -> Ledger:
    """Every published event is in the timeline or parked, never both; exactly `parked`
    are parked; the counters agree with the timeline; the live version equals a rebuild."""
    published, expected_parked = set(published), set(parked)
    book = ledger(settings)
    both = book.projected & book.parked_ids
    assert not both, f"{len(both)} events both projected and parked, e.g. {sorted(both)[:3]}"
    lost = published - book.projected - book.parked_ids
    assert not lost, f"{len(lost)} of {len(published)} events lost, e.g. {sorted(lost)[:3]}"
    assert book.parked_ids == expected_parked, (book.parked_ids ^ expected_parked, book.parked)
    assert len({p.source for p in book.parked}) == len(book.parked), "a record parked twice"

    engine = make_engine(settings.db_url)
    try:
        with engine.connect() as conn:
            timeline, events, channels = conn.execute(
                sa.text(
                    "SELECT (SELECT count(*) FROM core_v1.timeline), "
                    "(SELECT coalesce(sum(events), 0) FROM core_v1.customers), "
                    "(SELECT coalesce(sum(events), 0) FROM core_v1.channel_daily)"
                )
            ).one()
        assert timeline == events == channels, (timeline, events, channels)
        # The population the worker's scorer left, brought current from its own mark as a
        # next cycle would: nothing it had not scored may be missing from the rebuild's.
        scorer = PopulationScorer(engine, "core_v1", as_of_day=settings.scores_as_of)
        while True:
            cycle = scorer.run_once()
            assert cycle.skipped is None, cycle.skipped
            if not cycle.stale:
                break
        # As `rapport replay --verify` builds it: opening sealed fields, gated by suppression.
        report = bootstrap.rebuilder(settings, jobs=1).verify(99)
        assert report.identical, report.differences[:3]
    finally:
        engine.dispose()
    return book
