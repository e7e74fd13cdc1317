"""Remove every row of one customer from one projection version.

Called for each version by `rapport erase`, and by the worker (or a replay) when it
reaches the customer's `privacy.erased` event, so a rebuild ends with nothing of them
either. The customer is found through the version's own identity graph: every identifier
of their component and every key filed under one. Their timeline event ids move to
`erased_events`, so a redelivered copy of one is neither folded nor counted again; the
channel counters keep them (they hold no personal data, and a rebuild counts them too).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from projections.postgres.tables import Tables


@dataclass(frozen=True)
class Scrubbed:
    customer_id: str
    identifiers: list[str]  # the graph's nodes of the customer (personal: for the caller only)
    keys: list[str]
    events: int  # timeline rows removed


def customer_group(conn: sa.Connection, t: Tables, customer_id: str) -> tuple[list[str], list[str]]:
    """(identifiers, keys) of `customer_id` in version `t`; identifiers shared by too many
    customers (blocked) are not the customer's alone and are left out."""
    n, k = t.identity_nodes, t.identity_keys
    nodes = list(
        conn.execute(
            sa.select(n.c.node)
            .where(n.c.customer_id == customer_id, n.c.blocked_customers.is_(None))
            .order_by(n.c.node)
        ).scalars()
    )
    keys = set(conn.execute(sa.select(k.c.key).where(k.c.node.in_(nodes))).scalars())
    keys.add(customer_id)
    return nodes, sorted(keys)


def scrub_customer(conn: sa.Connection, t: Tables, customer_id: str) -> Scrubbed:
    nodes, keys = customer_group(conn, t, customer_id)
    owners = sorted({customer_id, *keys})
    s = t.schema
    events = conn.execute(
        sa.text(
            f"""WITH gone AS (DELETE FROM {s}.timeline WHERE customer_id = ANY(:keys)
                              RETURNING event_id),
                     kept AS (INSERT INTO {s}.erased_events SELECT event_id FROM gone
                              ON CONFLICT DO NOTHING)
                SELECT count(*) FROM gone"""
        ),
        {"keys": keys},
    ).scalar_one()
    for table in (t.customers, t.purchases, t.score_state, t.score_orders):
        conn.execute(table.delete().where(table.c.customer_id.in_(keys)))
    for table in (t.scores, t.score_checkpoints):
        conn.execute(table.delete().where(table.c.customer_id.in_(owners)))
    # The others' base-relative scores (RFM quintiles, tiers) were ranked with this customer
    # among them: the population scorer ranks again at its next cycle.
    conn.execute(t.population.update().values(ranked_at=None))
    v = t.contact_violations
    conn.execute(v.delete().where(sa.or_(v.c.customer_id.in_(owners), v.c.key.in_(keys))))
    e, ik, n = t.identity_edges, t.identity_keys, t.identity_nodes
    conn.execute(e.delete().where(sa.or_(e.c.a.in_(nodes), e.c.b.in_(nodes))))
    conn.execute(ik.delete().where(sa.or_(ik.c.key.in_(keys), ik.c.node.in_(nodes))))
    conn.execute(n.delete().where(n.c.node.in_(nodes)))
    return Scrubbed(customer_id, nodes, keys, int(events))
