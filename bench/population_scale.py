"""Figure P: `top` and `segments` over a large population, and the ranking that keeps it.

A population of N customers is written straight into a fresh version's scores table
(projecting N customers' histories through the worker would take hours on this machine):
spread scores, a currency in twenty paying in EUR, a customer in four without a purchase.
Then the scorer's ranking runs over it (RFM per currency, tiers, segments: what every
cycle with a change does), and `top` by each score and `segments` are timed as readers
ask them, through projections.postgres.queries.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from bench.stats import latency_ms
from projections.postgres import queries
from projections.postgres.population import rank_population
from projections.postgres.store import create_schema, make_engine

SCHEMA = "core_v1"
AS_OF = datetime(2026, 1, 31, 23, 59, 59, 999999, tzinfo=UTC)

_FILL = """
INSERT INTO "{schema}".scores (
    customer_id, as_of, frequency, recency, t, monetary_value, p_active, past_value, clv,
    net_contribution, share_of_wallet, engagement, currency, keys,
    rfm_last_purchase, rfm_purchases, rfm_spend, annual_headroom)
SELECT id, :as_of, f, r, t, m, pa, pv, pv * pa * 1.7, pv * 0.25 - CASE WHEN i % 41 = 0
       THEN 200 ELSE 0 END, CASE WHEN i % 9 = 0 THEN random() END, random() * 12,
       CASE WHEN i % 20 = 0 THEN 'EUR' ELSE 'USD' END, ARRAY[id],
       CASE WHEN bought THEN :as_of - (random() * 700) * interval '1 day' END,
       CASE WHEN bought THEN f + 1 END,
       CASE WHEN bought THEN round((pv * 4)::numeric, 2) END,
       CASE WHEN i % 9 = 0 THEN random() * 3000 ELSE 0 END
  FROM (SELECT i, 'pop-' || lpad(i::text, 8, '0') AS id, i % 4 <> 0 AS bought,
               (random() * 30)::int AS f, (random() * 400)::int AS r,
               400 + (random() * 300)::int AS t, random() * 200 AS m, random() AS pa,
               exp(random() * 8) AS pv
          FROM generate_series(1, :n) i) g
"""


def _top(conn: sa.Connection, *, by: str) -> object:
    return queries.top_customers(conn, by=by, n=100)


def population_at_scale(database_url: str, customers: int, samples: int) -> dict[str, Any]:
    engine = make_engine(database_url)
    try:
        create_schema(engine, SCHEMA)
        began = time.perf_counter()
        with engine.begin() as conn:
            conn.execute(sa.text(_FILL.format(schema=SCHEMA)), {"n": customers, "as_of": AS_OF})
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(
                sa.text(f'VACUUM ANALYZE "{SCHEMA}".scores')
            )
        filled_s = time.perf_counter() - began
        ranks = []
        for _ in range(2):  # the first ranks every row; the second, a cycle's usual work
            began = time.perf_counter()
            with engine.begin() as conn:
                rank_population(conn, SCHEMA, as_of=AS_OF)
            ranks.append(time.perf_counter() - began)
        timings: dict[str, list[float]] = {}
        asks: dict[str, Callable[[sa.Connection], object]] = {
            f"top100_{by}": functools.partial(_top, by=by) for by in ("clv", "rfm", "p_active")
        }
        asks["segments"] = queries.segments
        with engine.connect() as conn:
            for _ in range(samples):
                for name, ask in asks.items():
                    began = time.perf_counter()
                    answer = ask(conn)
                    timings.setdefault(name, []).append(time.perf_counter() - began)
                    if not answer:
                        raise RuntimeError(f"{name} came back empty over {customers:,}")
        return {
            "customers": customers,
            "fill_s": round(filled_s, 1),
            "rank_all_s": round(ranks[0], 2),
            "rank_again_s": round(ranks[1], 2),
            "queries": {name: latency_ms(values) for name, values in timings.items()},
        }
    finally:
        engine.dispose()
