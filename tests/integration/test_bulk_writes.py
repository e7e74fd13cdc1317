"""Bulk writes store exactly what they were given, whichever path a batch takes: COPY
through a staging table (many rows) or one VALUES statement (a few)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infra.settings import Settings
from projections.postgres import bulk
from projections.postgres.bulk import COPY_MIN_ROWS, insert_rows, json_text
from projections.postgres.store import create_schema, make_engine

pytestmark = pytest.mark.integration

# Everything COPY's text format must escape, plus what array literals must quote.
awkward_text = st.one_of(
    st.sampled_from(["\\N", "NULL", "", "{}", '"quoted"', "a,b"]),
    st.text(
        st.sampled_from(list("\\\t\n\r\"{},; é中'ab"))
        | st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
        max_size=12,
    ),
)
moment = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC)
)
customer = st.tuples(
    st.lists(awkward_text, max_size=4),
    st.dictionaries(awkward_text, awkward_text, max_size=3),
    moment,
    st.none() | st.integers(0, 10**6),
)
purchase = st.tuples(
    awkward_text, st.decimals(min_value=-(10**9), max_value=10**9, places=4), st.none() | moment
)


@pytest.fixture
def engine(rapport_settings: Settings) -> sa.Engine:
    engine = make_engine(rapport_settings.db_url)
    create_schema(engine, "core_v1")
    return engine


@pytest.mark.parametrize(
    ("rows", "copy_bytes"),
    [(COPY_MIN_ROWS + 5, bulk.COPY_CHUNK_BYTES), (COPY_MIN_ROWS + 5, 64), (3, None)],
    ids=["copy", "copy-in-pieces", "values"],
)
@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_rows_come_back_exactly_as_written(
    engine: sa.Engine, rows: int, copy_bytes: int | None, data: Any, monkeypatch: Any
) -> None:
    # 64 bytes: every batch spans many COPYs, and most rows are longer than a piece.
    monkeypatch.setattr(bulk, "COPY_CHUNK_BYTES", copy_bytes or bulk.COPY_CHUNK_BYTES)
    customers = data.draw(st.lists(customer, min_size=rows, max_size=rows))
    purchases = data.draw(st.lists(purchase, min_size=rows, max_size=rows))
    ids = [f"c-{uuid.uuid4()}" for _ in customers]
    with engine.begin() as conn:
        t = create_schema(engine, "core_v1")
        insert_rows(
            conn,
            t.customers,
            ("customer_id", "identifiers", "traits", "first_seen", "events",
             "channel_counts", "last_contact", "consent"),
            [
                (cid, idents, json_text(traits), at, events or 0, "{}", "{}", "{}")
                for cid, (idents, traits, at, events) in zip(ids, customers, strict=True)
            ],
        )  # fmt: skip
        event_ids = [uuid.uuid4() for _ in purchases]
        returned = insert_rows(
            conn,
            t.purchases,
            ("event_id", "customer_id", "occurred_at", "kind", "order_id", "amount", "margin",
             "currency", "category"),
            [
                (str(eid), cid, at or datetime(2025, 1, 1, tzinfo=UTC), "purchase", order, amount,
                 None, "EUR", order)
                for eid, cid, (order, amount, at) in zip(event_ids, ids, purchases, strict=True)
            ],
            returning="event_id",
        )  # fmt: skip
    assert sorted(str(r[0]) for r in returned) == sorted(map(str, event_ids))
    with engine.connect() as conn:
        stored = {
            r.customer_id: r
            for r in conn.execute(sa.select(t.customers).where(t.customers.c.customer_id.in_(ids)))
        }
        bought = {
            r.customer_id: r
            for r in conn.execute(sa.select(t.purchases).where(t.purchases.c.customer_id.in_(ids)))
        }
    for cid, (idents, traits, at, events) in zip(ids, customers, strict=True):
        row = stored[cid]
        assert (row.identifiers, row.traits, row.first_seen, row.events) == (
            idents, traits, at, events or 0
        )  # fmt: skip
    for cid, (order, amount, _at) in zip(ids, purchases, strict=True):
        assert (bought[cid].order_id, bought[cid].amount, bought[cid].category) == (
            order, Decimal(amount), order
        )  # fmt: skip


def test_an_upsert_through_copy_applies_its_conflict_rule(engine: sa.Engine) -> None:
    t = create_schema(engine, "core_v1")
    day = datetime(2025, 3, 1, tzinfo=UTC).date()
    counts = [(day + timedelta(days=n), "email", "email.opened", 1) for n in range(COPY_MIN_ROWS)]
    rule = "(day, channel, type) DO UPDATE SET events = channel_daily.events + EXCLUDED.events"
    for _ in range(3):  # one transaction each: the staging table empties at every commit
        with engine.begin() as conn:
            insert_rows(conn, t.channel_daily, ("day", "channel", "type", "events"), counts,
                        on_conflict=rule)  # fmt: skip
    with engine.connect() as conn:
        totals = conn.execute(sa.select(t.channel_daily.c.events)).scalars().all()
    assert totals == [3] * COPY_MIN_ROWS
