"""A version built by an earlier release gets the columns this one added, and still reads."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from infra.settings import Settings
from projections.postgres import queries
from projections.postgres.store import PostgresStore, create_schema, make_engine
from projections.store import PositionedEvent
from tests.workload import mixed_events

pytestmark = pytest.mark.integration


def test_an_older_version_gains_the_new_columns_and_score_state_and_still_scores(
    rapport_settings: Settings,
) -> None:
    engine = make_engine(rapport_settings.db_url)
    create_schema(engine, "core_v1")
    events = mixed_events(customers=2, per_customer=40, seed=3)
    PostgresStore(engine, "core_v1").apply_batch(
        [PositionedEvent("t", 0, n, e) for n, e in enumerate(events)]
    )
    customer = events[0].customer.partition_key
    with engine.connect() as conn:
        as_of = datetime(2100, 1, 1, tzinfo=UTC)
        expected = queries.customer_scores(conn, customer, as_of=as_of)
    with engine.begin() as conn:  # what the previous release built
        conn.execute(sa.text("DROP SCHEMA rapport_analyst CASCADE"))  # it had no masked views
        conn.execute(sa.text("DROP VIEW rapport.timeline, rapport.scores, rapport.score_state"))
        conn.execute(sa.text("DROP VIEW rapport.score_orders"))
        conn.execute(sa.text("DROP TABLE core_v1.score_state, core_v1.score_orders"))
        conn.execute(sa.text("ALTER TABLE core_v1.timeline DROP COLUMN score_inputs"))
        conn.execute(sa.text("ALTER TABLE core_v1.scores DROP COLUMN other_currencies"))

    create_schema(engine)  # this release starting on it

    with engine.connect() as conn:
        columns = set(
            conn.execute(
                sa.text(
                    "SELECT table_name || '.' || column_name FROM information_schema.columns "
                    "WHERE table_schema = 'core_v1'"
                )
            ).scalars()
        )
        assert {"timeline.score_inputs", "scores.other_currencies"} <= columns
        # Its rows have no ledger entries: read from their payloads, the same scores; and
        # the score state it lacked is folded from them, so scores as of now still come
        # from the state.
        assert expected["computed_from"] == "score_state"
        assert queries.customer_scores(conn, customer, as_of=as_of) == expected
        explained = queries.customer_scores(conn, customer, as_of=as_of, explain=True)
        assert explained["computed_from"] == "ledger"
        for column in ("p_active", "past_value", "clv", "engagement", "frequency"):
            assert explained[column] == pytest.approx(expected[column], rel=1e-9), column
    engine.dispose()
