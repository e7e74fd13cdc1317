"""Scores read from the folded state (as of now) and from the ledger folded up to an
earlier as-of equal the pure functions over the ledger, customer by customer."""

from __future__ import annotations

import itertools
import math
import random
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from infra.settings import Settings
from producers.simulator import simulate
from projections.postgres import queries
from projections.postgres.store import PostgresStore, create_schema, make_engine
from projections.store import PositionedEvent

pytestmark = pytest.mark.integration

_COMPARED = (
    "frequency",
    "recency",
    "t",
    "monetary_value",
    "p_active",
    "past_value",
    "clv",
    "net_contribution",
    "share_of_wallet",
    "engagement",
    "currency",
)


def _same(got: Any, expected: Any) -> bool:
    if isinstance(expected, float) and got is not None:
        return math.isclose(got, expected, rel_tol=1e-9, abs_tol=1e-7)
    if isinstance(expected, Decimal):
        return abs(Decimal(got) - expected) <= Decimal("1e-9")
    return bool(got == expected)


def test_state_and_ledger_fold_answer_as_the_pure_functions(rapport_settings: Settings) -> None:
    engine = make_engine(rapport_settings.db_url)
    create_schema(engine, "core_v1")
    events = list(itertools.islice(simulate(120, seed=23), 4000))
    random.Random(5).shuffle(events)  # any arrival order
    store = PostgresStore(engine, "core_v1")
    resent = 0
    for start in range(0, len(events), 500):
        chunk = events[start : start + 500]
        again = chunk[:50]  # and some sent twice, on another partition
        store.apply_batch(
            [PositionedEvent("t", 0, start + n, e) for n, e in enumerate(chunk)]
            + [PositionedEvent("t", 1, resent + n, e) for n, e in enumerate(again)]
        )
        resent += len(again)
    first = min(e.occurred_at for e in events)
    last = max(e.occurred_at for e in events)
    with engine.connect() as conn:
        customers = conn.execute(
            sa.text("SELECT DISTINCT customer_id FROM rapport.customers ORDER BY 1")
        ).scalars()
        sources: dict[str, int] = {}
        compared = 0
        for customer in customers:
            for as_of in (last + timedelta(seconds=1), first + (last - first) / 2):
                fast = queries.customer_scores(conn, customer, as_of=as_of)
                pure = queries.customer_scores(conn, customer, as_of=as_of, explain=True)
                sources[fast["computed_from"]] = sources.get(fast["computed_from"], 0) + 1
                for column in _COMPARED:
                    assert _same(fast[column], pure[column]), (customer, as_of, column)
                compared += 1
    assert compared > 150
    assert sources.get("score_state", 0) > 50 and sources.get("ledger", 0) > 50, sources
    engine.dispose()
