"""`rapport scores refresh`: recompute the materialized scores of every customer as of T."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from projections.errors import ProjectionError
from projections.postgres import views
from projections.postgres.history import all_histories
from projections.postgres.tables import build_tables
from projections.scores import DEFAULT_PARAMETERS, ScoreParameters, base_lineage, score_base

_CHUNK = 5000


def refresh_scores(
    engine: sa.Engine,
    schema: str | None,
    *,
    as_of: datetime,
    params: ScoreParameters = DEFAULT_PARAMETERS,
) -> int:
    """Replace the scores table of `schema` (None: the active version) in one transaction;
    return the number of customers scored."""
    with engine.connect() as reader:
        schema = schema or views.active_schema(reader)
        if schema is None:
            raise ProjectionError("no projection version exists yet: run `rapport worker`")
        tables = build_tables(schema)
        scored = score_base(all_histories(reader, tables, as_of=as_of), as_of=as_of, params=params)
    rows = [s.to_row() for s in scored]
    bases = [
        {"kind": kind, "currency": currency, "as_of": as_of, "lineage": lineage}
        for kind, currency, lineage in base_lineage(scored)
    ]
    with engine.begin() as conn:
        conn.execute(tables.scores.delete())
        conn.execute(tables.score_bases.delete())
        for start in range(0, len(rows), _CHUNK):
            conn.execute(insert(tables.scores), rows[start : start + _CHUNK])
        if bases:
            conn.execute(insert(tables.score_bases), bases)
    return len(rows)
