"""Parity check between two projection versions: checksums per table and per customer.

Rows are hashed as PostgreSQL renders them (jsonb and numeric have canonical text), in
primary-key order, so two versions built from the same events compare equal byte for byte.
Per-customer checksums point at exactly which customers differ; for those, the differing
rows are fetched and shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from projections.postgres.tables import Tables, build_tables
from projections.store import Difference

# `rec` as the row alias: a bare `t` would be the scores table's column T, not the row.
_PER_CUSTOMER = (
    "timeline",
    "customers",
    "purchases",
    "scores",
    "score_state",
    "score_orders",
    "contact_violations",
)
_WHOLE = (
    "channel_daily",
    "identity_nodes",
    "identity_keys",
    "identity_edges",
    "erased_events",
)
# Bookkeeping, not projected content: which transaction last wrote the row.
_NOT_COMPARED = {"changed_xid"}


def _compared(table: sa.Table) -> str:
    """The row as compared: its projected columns (a ROW of them, as text)."""
    return (
        "ROW("
        + ", ".join(f"rec.{c.name}" for c in table.columns if c.name not in _NOT_COMPARED)
        + ")"
    )


@dataclass(frozen=True)
class Checksums:
    per_customer: dict[str, dict[str, str]]  # table -> customer_id -> md5
    whole: dict[str, str]  # table -> md5
    rows: dict[str, int]


def checksums(conn: sa.Connection, schema: str) -> Checksums:
    tables = build_tables(schema)
    per_customer: dict[str, dict[str, str]] = {}
    whole: dict[str, str] = {}
    rows: dict[str, int] = {}
    for name in _PER_CUSTOMER:
        table = getattr(tables, name)
        pk = ", ".join(f"rec.{c.name}" for c in table.primary_key.columns)
        result = conn.execute(
            sa.text(
                f"SELECT rec.customer_id, "
                f"md5(string_agg(md5({_compared(table)}::text), '' ORDER BY {pk})), "
                f'count(*) FROM "{schema}".{name} rec GROUP BY rec.customer_id'
            )
        )
        per_customer[name] = {}
        rows[name] = 0
        for customer_id, digest, count in result:
            per_customer[name][customer_id] = digest
            rows[name] += count
    for name in _WHOLE:
        table = getattr(tables, name)
        pk = ", ".join(f"rec.{c.name}" for c in table.primary_key.columns)
        digest, count = conn.execute(
            sa.text(
                "SELECT md5(coalesce(string_agg("
                f"md5({_compared(table)}::text), '' ORDER BY {pk}), '')), count(*) "
                f'FROM "{schema}".{name} rec'
            )
        ).one()
        whole[name], rows[name] = digest, count
    return Checksums(per_customer, whole, rows)


def compare(
    conn: sa.Connection,
    live: Checksums,
    rebuild: Checksums,
    live_schema: str,
    rebuild_schema: str,
    *,
    detail_limit: int = 20,
) -> list[Difference]:
    """Every difference between the two versions; rows shown for the first few customers."""
    differences: list[Difference] = []
    live_t, rebuild_t = build_tables(live_schema), build_tables(rebuild_schema)
    for name in _PER_CUSTOMER:
        a, b = live.per_customer[name], rebuild.per_customer[name]
        differing = sorted(c for c in a.keys() | b.keys() if a.get(c) != b.get(c))
        for n, customer_id in enumerate(differing):
            diff = Difference(name, customer_id)
            if n < detail_limit:
                _fill_rows(conn, diff, getattr(live_t, name), getattr(rebuild_t, name))
            differences.append(diff)
    for name in _WHOLE:
        if live.whole[name] != rebuild.whole[name]:
            diff = Difference(name, None)
            _fill_rows(conn, diff, getattr(live_t, name), getattr(rebuild_t, name))
            differences.append(diff)
    return differences


def _fill_rows(conn: sa.Connection, diff: Difference, live: sa.Table, rebuild: sa.Table) -> None:
    key_columns = [c.name for c in live.primary_key.columns]

    def rows(table: sa.Table) -> dict[str, dict[str, Any]]:
        query = sa.select(table)
        if diff.customer_id is not None:
            query = query.where(table.c.customer_id == diff.customer_id)
        return {
            "/".join(str(row[k]) for k in key_columns): {
                str(k): v for k, v in row.items() if k not in _NOT_COMPARED
            }
            for row in conn.execute(query).mappings()
        }

    a, b = rows(live), rows(rebuild)
    diff.only_in_live = [a[k] for k in sorted(a.keys() - b.keys())]
    diff.only_in_rebuild = [b[k] for k in sorted(b.keys() - a.keys())]
    for key in sorted(a.keys() & b.keys()):
        columns = {c: (a[key][c], b[key][c]) for c in a[key] if a[key][c] != b[key].get(c)}
        if columns:
            diff.changed[key] = columns


def scores_as_of(conn: sa.Connection, tables: Tables) -> Any:
    return conn.execute(sa.select(sa.func.max(tables.scores.c.as_of))).scalar_one()
