"""Bulk writes: one statement per table per batch, keeping ON CONFLICT and RETURNING.

SQLAlchemy's executemany sends one statement per row for upserts. A batch of rows goes
instead through COPY into a temporary staging table shaped like the target, then one
INSERT … SELECT with the conflict rule: COPY's text format is cheaper to build here and
to parse in the server than a multi-row VALUES statement (1,000 timeline rows: 17 µs a
row against 30 µs with execute_values). A few rows go as one VALUES statement, which
needs no staging round trips. Table and column names come from our own table
definitions, never from a caller.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date
from typing import Any

import orjson
import sqlalchemy as sa
from psycopg2.extras import execute_values


def json_text(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


# Below this many rows the staging table's extra statements cost more than they save.
COPY_MIN_ROWS = 32
# Each COPY carries at most this much. A larger one can fill the server's TCP receive
# window faster than the backend drains it; on loopback (a 64 KiB MSS) the window then
# stays shut until the sender's 200 ms probe: a 275 KB COPY of 1,000 timeline rows
# stalled 200 ms in about one batch of ten (TcpExtTCPToZeroWindowAdv counted each one),
# 20 µs an event on average. At 64 KiB no window closed; the extra COPYs cost ~0.3 ms a
# batch of 1,000 rows.
COPY_CHUNK_BYTES = 64 * 1024


def insert_rows(
    conn: sa.Connection,
    table: sa.Table,
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    *,
    on_conflict: str = "DO NOTHING",
    returning: str | None = None,
) -> list[tuple[Any, ...]]:
    """INSERT rows (tuples in `columns` order); jsonb/uuid columns take text. At most
    one call per table per transaction: the staging table empties at commit."""
    if not rows:
        return []
    if len(rows) >= COPY_MIN_ROWS:
        return _copy_insert(conn, table, columns, rows, on_conflict, returning)
    return _values_insert(conn, table, columns, rows, on_conflict, returning)


def _copy_insert(
    conn: sa.Connection,
    table: sa.Table,
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    on_conflict: str,
    returning: str | None,
) -> list[tuple[Any, ...]]:
    target = _qualified(table)
    stage = f'"stage_{table.schema}_{table.name}"'
    names = ", ".join(columns)
    cursor = conn.connection.cursor()
    try:
        # Per session; created in this transaction if need be (and gone if it rolls back).
        cursor.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {stage} (LIKE {target} INCLUDING DEFAULTS) "
            "ON COMMIT DELETE ROWS"
        )
        for chunk in copy_chunks(copy_text(rows).encode(), COPY_CHUNK_BYTES):
            cursor.copy_expert(f"COPY {stage} ({names}) FROM STDIN", io.BytesIO(chunk))
        # In key order: concurrent writers (two live workers, the replay's processes) take
        # their row locks in one order and cannot deadlock.
        order = ", ".join(c.name for c in table.primary_key.columns)
        cursor.execute(
            f"INSERT INTO {target} ({names}) SELECT {names} FROM {stage} ORDER BY {order} "
            + _conflict_clause(on_conflict, returning)
        )
        return [tuple(row) for row in cursor.fetchall()] if returning else []
    finally:
        cursor.close()


def _values_insert(
    conn: sa.Connection,
    table: sa.Table,
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    on_conflict: str,
    returning: str | None,
) -> list[tuple[Any, ...]]:
    casts = _casts(table)
    template = "(" + ", ".join(f"%s::{casts[c]}" if c in casts else "%s" for c in columns) + ")"
    sql = f"INSERT INTO {_qualified(table)} ({', '.join(columns)}) VALUES %s " + _conflict_clause(
        on_conflict, returning
    )
    cursor = conn.connection.cursor()
    try:
        result = execute_values(
            cursor, sql, rows, template=template, page_size=len(rows), fetch=returning is not None
        )
    finally:
        cursor.close()
    return list(result or [])


def _qualified(table: sa.Table) -> str:
    return f'"{table.schema}"."{table.name}"'


def _conflict_clause(on_conflict: str, returning: str | None) -> str:
    return f"ON CONFLICT {on_conflict}" + (f" RETURNING {returning}" if returning else "")


def copy_text(rows: Iterable[tuple[Any, ...]]) -> str:
    """Rows in COPY's text format: tab-separated fields, \\N for NULL, one row a line."""
    return "".join("\t".join(map(_copy_field, row)) + "\n" for row in rows)


def copy_chunks(data: bytes, limit: int) -> Iterator[bytes]:
    """`data` (whole COPY lines) in pieces of at most `limit` bytes, cut at line ends; a
    line longer than `limit` is a piece of its own."""
    start = 0
    while start < len(data):
        if len(data) - start <= limit:
            end = len(data)
        else:
            cut = data.rfind(b"\n", start, start + limit)
            end = (cut if cut >= 0 else data.index(b"\n", start)) + 1
        yield data[start:end]
        start = end


def _copy_field(value: Any) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, str):
        return _escape(value)
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, date):  # and datetime: ISO 8601 with its offset
        return value.isoformat()
    if isinstance(value, list | tuple):
        return _escape(_array_literal(value))
    return str(value)  # int, float, Decimal, UUID


def _escape(text: str) -> str:
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        return (
            text.replace("\\", "\\\\")
            .replace("\t", "\\t")
            .replace("\n", "\\n")
            .replace("\r", "\\r")
        )
    return text


def _array_literal(items: Sequence[Any]) -> str:
    """A one-dimensional text[] literal, every element quoted."""
    quoted = (
        "NULL" if item is None else '"' + str(item).replace("\\", "\\\\").replace('"', '\\"') + '"'
        for item in items
    )
    return "{" + ",".join(quoted) + "}"


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
