"""Analyst-facing views in schema `rapport`, pointing at the active projection version.

Switching versions replaces every view in one transaction, so a reader sees either the old
version or the new one, never a mix.
"""

from __future__ import annotations

import sqlalchemy as sa

from projections.postgres.tables import ANALYST_SCHEMA

VERSIONS_TABLE = f"{ANALYST_SCHEMA}.projection_versions"


def _view_sql(schema: str) -> dict[str, str]:
    s = f'"{schema}"'
    return {
        "timeline": f"SELECT * FROM {s}.timeline",
        "customers": f"SELECT * FROM {s}.customers",
        "purchases": f"SELECT * FROM {s}.purchases",
        "purchases_by_month": f"""
            SELECT customer_id,
                   date_trunc('month', occurred_at AT TIME ZONE 'UTC')::date AS period,
                   currency,
                   count(*) FILTER (WHERE kind = 'purchase') AS purchases,
                   count(*) FILTER (WHERE kind = 'refund') AS refunds,
                   sum(amount) FILTER (WHERE kind = 'purchase') AS gross_amount,
                   sum(amount) AS net_amount,
                   sum(margin) AS margin
              FROM {s}.purchases
             GROUP BY customer_id, period, currency""",
        "channel_daily": f"SELECT * FROM {s}.channel_daily",
        "scores": f"SELECT * FROM {s}.scores",
        "customer_channels": f"""
            SELECT c.customer_id, kv.key AS channel, kv.value::int AS events,
                   (c.last_contact ->> kv.key)::timestamptz AS last_contact
              FROM {s}.customers c, jsonb_each_text(c.channel_counts) kv""",
        "customer_consent": f"""
            SELECT c.customer_id, split_part(kv.key, ':', 1) AS channel,
                   split_part(kv.key, ':', 2) AS purpose,
                   (kv.value ->> 'value')::boolean AS opted_in,
                   (kv.value ->> 'at')::timestamptz AS changed_at
              FROM {s}.customers c, jsonb_each(c.consent) kv""",
    }


VIEW_NAMES = tuple(_view_sql("x"))


def ensure_registry(conn: sa.Connection) -> None:
    conn.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {ANALYST_SCHEMA}"))
    conn.execute(
        sa.text(
            f"""CREATE TABLE IF NOT EXISTS {VERSIONS_TABLE} (
                schema_name text PRIMARY KEY,
                status text NOT NULL DEFAULT 'building',
                created_at timestamptz NOT NULL DEFAULT now(),
                activated_at timestamptz,
                active boolean NOT NULL DEFAULT false)"""
        )
    )


def active_schema(conn: sa.Connection, *, lock: str | None = None) -> str | None:
    """The active version's schema. lock='share' holds off a swap until this transaction
    ends (the worker's batches); lock='update' waits for in-flight batches (the swap)."""
    suffix = {None: "", "share": " FOR SHARE", "update": " FOR UPDATE"}[lock]
    return conn.execute(
        sa.text(f"SELECT schema_name FROM {VERSIONS_TABLE} WHERE active{suffix}")
    ).scalar_one_or_none()


def register(conn: sa.Connection, schema: str, *, status: str = "building") -> None:
    """Record a version; the first one registered becomes active."""
    ensure_registry(conn)
    conn.execute(
        sa.text(
            f"INSERT INTO {VERSIONS_TABLE} (schema_name, status) VALUES (:s, :st) "
            "ON CONFLICT DO NOTHING"
        ),
        {"s": schema, "st": status},
    )
    if active_schema(conn) is None:
        activate(conn, schema)


def set_status(conn: sa.Connection, schema: str, status: str) -> None:
    conn.execute(
        sa.text(f"UPDATE {VERSIONS_TABLE} SET status = :st WHERE schema_name = :s"),
        {"s": schema, "st": status},
    )


def activate(conn: sa.Connection, schema: str) -> None:
    """Point every analyst view at `schema`, inside the caller's transaction."""
    for name in VIEW_NAMES:
        conn.execute(sa.text(f"DROP VIEW IF EXISTS {ANALYST_SCHEMA}.{name}"))
    for name, sql in _view_sql(schema).items():
        conn.execute(sa.text(f"CREATE VIEW {ANALYST_SCHEMA}.{name} AS {sql}"))
    conn.execute(
        sa.text(
            f"UPDATE {VERSIONS_TABLE} SET active = (schema_name = :s), "
            "status = CASE WHEN schema_name = :s THEN 'active' "
            "WHEN active THEN 'retired' ELSE status END, "
            "activated_at = CASE WHEN schema_name = :s THEN now() ELSE activated_at END"
        ),
        {"s": schema},
    )
