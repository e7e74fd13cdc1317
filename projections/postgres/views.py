"""Analyst-facing views in schema `rapport`, pointing at the active projection version.

Switching versions replaces every view in one transaction, so a reader sees either the old
version or the new one, never a mix. The analysts' masked views (schema `rapport_analyst`,
projections/postgres/roles.py) are built over these and replaced with them.
"""

from __future__ import annotations

import random
import time

import sqlalchemy as sa

from projections.errors import ProjectionError
from projections.postgres import roles
from projections.postgres.tables import ANALYST_SCHEMA

# A swap takes every view at once, waiting at most this long for any one of them. A reader
# whose transaction holds one view while it waits for another (resolve, then timeline) is
# then never part of a deadlock: the swap lets go well before PostgreSQL's deadlock check
# (deadlock_timeout, 1 s by default) would abort either side, and tries again.
VIEW_LOCK_WAIT_MS = 100
VIEW_LOCK_GIVE_UP_S = 60.0
LOCK_NOT_AVAILABLE = "55P03"

VERSIONS_TABLE = f"{ANALYST_SCHEMA}.projection_versions"


def _view_sql(schema: str) -> dict[str, str]:
    s = f'"{schema}"'
    # Rows are filed under the key their event carried (a customer id, or an identifier of
    # someone not yet known by one); `customer_id` here is the customer that key resolves
    # to through the identity graph, `key` the key itself.
    resolved = (
        f"LEFT JOIN {s}.identity_keys k ON k.key = {{row}}.customer_id "
        f"LEFT JOIN {s}.identity_nodes n ON n.node = k.node"
    )
    customer = "coalesce(n.customer_id, {row}.customer_id) AS customer_id, {row}.customer_id AS key"
    return {
        "timeline": f"""
            SELECT {customer.format(row="t")}, t.event_id, t.occurred_at, t.received_at,
                   t.channel, t.type, t.summary, t.campaign_id, t.payload, t.score_inputs,
                   t.source
              FROM {s}.timeline t {resolved.format(row="t")}""",
        "customers": f"""
            SELECT {customer.format(row="c")}, c.identifiers, c.traits, c.first_seen,
                   c.last_seen, c.events, c.channel_counts, c.last_contact, c.preferences,
                   c.consent, c.survey
              FROM {s}.customers c {resolved.format(row="c")}""",
        "purchases": f"""
            SELECT {customer.format(row="p")}, p.event_id, p.occurred_at, p.kind, p.order_id,
                   p.amount, p.margin, p.currency, p.category
              FROM {s}.purchases p {resolved.format(row="p")}""",
        "purchases_by_month": f"""
            SELECT coalesce(n.customer_id, p.customer_id) AS customer_id,
                   date_trunc('month', p.occurred_at AT TIME ZONE 'UTC')::date AS period,
                   p.currency,
                   count(*) FILTER (WHERE p.kind = 'purchase') AS purchases,
                   count(*) FILTER (WHERE p.kind = 'refund') AS refunds,
                   sum(p.amount) FILTER (WHERE p.kind = 'purchase') AS gross_amount,
                   sum(p.amount) AS net_amount,
                   sum(p.margin) AS margin
              FROM {s}.purchases p {resolved.format(row="p")}
             GROUP BY 1, period, p.currency""",
        "channel_daily": f"SELECT * FROM {s}.channel_daily",
        "scores": f"SELECT * FROM {s}.scores",
        "score_bases": f"SELECT * FROM {s}.score_bases",
        "score_segments": f"SELECT * FROM {s}.score_segments",
        "score_checkpoints": f"SELECT * FROM {s}.score_checkpoints",
        "population": f"SELECT as_of, ranked_at, customers, unscorable FROM {s}.population",
        "score_state": f"SELECT customer_id AS key, state FROM {s}.score_state",
        "score_orders": f"""
            SELECT customer_id AS key, currency, order_id, at, event_id, amount, contribution
              FROM {s}.score_orders""",
        "customer_channels": f"""
            SELECT coalesce(n.customer_id, c.customer_id) AS customer_id, kv.key AS channel,
                   sum(kv.value::int)::int AS events,
                   max((c.last_contact ->> kv.key)::timestamptz) AS last_contact
              FROM {s}.customers c {resolved.format(row="c")},
                   jsonb_each_text(c.channel_counts) kv
             GROUP BY 1, 2""",
        "customer_consent": f"""
            SELECT DISTINCT ON (1, 2, 3)
                   coalesce(n.customer_id, c.customer_id) AS customer_id,
                   split_part(kv.key, ':', 1) AS channel,
                   split_part(kv.key, ':', 2) AS purpose,
                   (kv.value ->> 'value')::boolean AS opted_in,
                   (kv.value ->> 'at')::timestamptz AS changed_at
              FROM {s}.customers c {resolved.format(row="c")}, jsonb_each(c.consent) kv
             ORDER BY 1, 2, 3, (kv.value ->> 'at')::timestamptz DESC,
                      kv.value ->> 'event_id' DESC""",
        "contact_violations": f"""
            SELECT customer_id, occurred_at, event_id, type, channel, purpose, topic, rule,
                   reason, policy_event_id, policy_at, key
              FROM {s}.contact_violations""",
        "identities": f"""
            SELECT node AS identifier, customer_id, blocked_customers
              FROM {s}.identity_nodes""",
        "identity_keys": f"SELECT * FROM {s}.identity_keys",
        "identity_links": f"""
            SELECT a, b, state, reason, first_at, first_event_id, first_source, cooccurs,
                   link_at, link_event_id, forced, unlinked_at, unlink_event_id, unlink_reason
              FROM {s}.identity_edges""",
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


def active_schema_if_any(conn: sa.Connection) -> str | None:
    """The active version's schema, or None also where no version was ever registered (a
    database the worker has not set up yet)."""
    if conn.execute(sa.text("SELECT to_regclass(:t)"), {"t": VERSIONS_TABLE}).scalar() is None:
        return None
    return active_schema(conn)


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


def lock_views(conn: sa.Connection, *, give_up_s: float = VIEW_LOCK_GIVE_UP_S) -> None:
    """Hold every existing analyst view exclusively until the caller's transaction ends.

    Each attempt runs in a savepoint, so a timed-out one releases what it took and leaves
    the caller's other locks (the registry row) in place."""
    names = [f"{ANALYST_SCHEMA}.{name}" for name in VIEW_NAMES] + [
        f"{roles.MASKED_SCHEMA}.{name}" for name in roles.MASKED_VIEWS
    ]
    existing = list(
        conn.execute(
            sa.text(
                "SELECT v FROM unnest(CAST(:names AS text[])) v WHERE to_regclass(v) IS NOT NULL"
            ),
            {"names": names},
        ).scalars()
    )
    if not existing:
        return
    deadline = time.monotonic() + give_up_s
    while True:
        attempt = conn.begin_nested()
        try:
            conn.execute(sa.text(f"SET LOCAL lock_timeout = '{VIEW_LOCK_WAIT_MS}ms'"))
            conn.execute(sa.text(f"LOCK TABLE {', '.join(existing)} IN ACCESS EXCLUSIVE MODE"))
            conn.execute(sa.text("SET LOCAL lock_timeout TO DEFAULT"))
            attempt.commit()
            return
        except sa.exc.OperationalError as error:
            if getattr(error.orig, "pgcode", None) != LOCK_NOT_AVAILABLE:
                raise
            attempt.rollback()
            if time.monotonic() > deadline:
                raise ProjectionError(
                    f"could not take the analyst views for {give_up_s:.0f} s: readers hold "
                    "them continuously; try the swap again when they are quieter"
                ) from error
            time.sleep(random.uniform(0.05, 0.25))


def point_views_at(conn: sa.Connection, schema: str) -> None:
    """(Re)create every analyst view over `schema`, and the masked views over those (with
    the roles' grants), inside the caller's transaction."""
    lock_views(conn)
    roles.drop_masked_views(conn)
    for name in VIEW_NAMES:
        conn.execute(sa.text(f"DROP VIEW IF EXISTS {ANALYST_SCHEMA}.{name}"))
    for name, sql in _view_sql(schema).items():
        conn.execute(sa.text(f"CREATE VIEW {ANALYST_SCHEMA}.{name} AS {sql}"))
    roles.create_masked_views(conn, schema)


def activate(conn: sa.Connection, schema: str) -> None:
    """Point every analyst view at `schema`, inside the caller's transaction."""
    point_views_at(conn, schema)
    conn.execute(
        sa.text(
            f"UPDATE {VERSIONS_TABLE} SET active = (schema_name = :s), "
            "status = CASE WHEN schema_name = :s THEN 'active' "
            "WHEN active THEN 'retired' ELSE status END, "
            "activated_at = CASE WHEN schema_name = :s THEN now() ELSE activated_at END"
        ),
        {"s": schema},
    )
