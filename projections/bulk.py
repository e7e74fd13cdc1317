"""Bulk writes through psycopg2's execute_values: one statement per table per batch.

SQLAlchemy's executemany sends one statement per row for upserts; a multi-row VALUES
statement is an order of magnitude faster and keeps ON CONFLICT and RETURNING.
Table and column names come from our own table definitions, never from a caller.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
import sqlalchemy as sa
from psycopg2.extras import execute_values  # type: ignore[import-untyped]


def json_text(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def insert_rows(
    conn: sa.Connection,
    table: sa.Table,
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    *,
    on_conflict: str = "DO NOTHING",
    returning: str | None = None,
) -> list[tuple[Any, ...]]:
    """INSERT rows (tuples in `columns` order); jsonb/uuid columns take text."""
    if not rows:
        return []
    casts = _casts(table)
    template = "(" + ", ".join(f"%s::{casts[c]}" if c in casts else "%s" for c in columns) + ")"
    sql = (
        f'INSERT INTO "{table.schema}"."{table.name}" ({", ".join(columns)}) VALUES %s '
        f"ON CONFLICT {on_conflict}" + (f" RETURNING {returning}" if returning else "")
    )
    cursor = conn.connection.cursor()
    try:
        result = execute_values(
            cursor, sql, rows, template=template, page_size=len(rows), fetch=returning is not None
        )
    finally:
        cursor.close()
    return list(result or [])


def upsert_all_columns(table: sa.Table) -> str:
    """The ON CONFLICT clause that overwrites every non-key column."""
    keys = ", ".join(c.name for c in table.primary_key.columns)
    sets = ", ".join(f"{c.name} = EXCLUDED.{c.name}" for c in table.columns if not c.primary_key)
    return f"({keys}) DO UPDATE SET {sets}"


_CAST_BY_TYPE: Mapping[str, str] = {"JSONB": "jsonb", "UUID": "uuid"}


def _casts(table: sa.Table) -> dict[str, str]:
    return {
        c.name: _CAST_BY_TYPE[type(c.type).__name__]
        for c in table.columns
        if type(c.type).__name__ in _CAST_BY_TYPE
    }
