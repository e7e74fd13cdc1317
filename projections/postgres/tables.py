"""PostgreSQL tables of the read models, and of what makes redelivery harmless.

Each projection version lives in its own PostgreSQL schema (`core_v1`, `core_v2`, …) so a
new version can be built from offset 0 while the live one serves. Analysts and the API
read the views in schema `rapport`, which point at the active version.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

ANALYST_SCHEMA = "rapport"


@dataclass(frozen=True)
class Tables:
    metadata: sa.MetaData
    schema: str
    timeline: sa.Table
    customers: sa.Table
    purchases: sa.Table
    channel_daily: sa.Table
    positions: sa.Table
    scores: sa.Table
    score_state: sa.Table
    score_orders: sa.Table
    identity_nodes: sa.Table
    identity_keys: sa.Table
    identity_edges: sa.Table
    score_bases: sa.Table
    score_segments: sa.Table
    population: sa.Table
    score_checkpoints: sa.Table
    contact_violations: sa.Table
    erased_events: sa.Table


# A row's writer stamps its transaction id here (`txid_current()`, the default, also on
# upsert: bulk.upsert_all_columns takes EXCLUDED's default): what the population scorer
# reads to find the keys changed since it last looked (projections/postgres/population.py).
def _changed_xid() -> sa.Column[int]:
    return sa.Column("changed_xid", sa.BigInteger, server_default=sa.text("txid_current()"))


def build_tables(schema: str) -> Tables:
    """The tables of one projection version, in PostgreSQL schema `schema`."""
    md = sa.MetaData(schema=schema)
    timeline = sa.Table(
        "timeline",
        md,
        # event_id is the dedupe ledger too: a redelivered event inserts nothing and,
        # because the batch folds only what was inserted, counts nothing twice.
        sa.Column("event_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("customer_id", sa.Text, nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True)),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("campaign_id", sa.Text),
        sa.Column("payload", JSONB, nullable=False),
        # What the event gives the scores (projections/score_ledger.py); null in rows
        # projected before the ledger existed, which are read from the payload instead.
        sa.Column("score_inputs", JSONB),
        sa.Column("source", sa.Text),  # source.system: an event id belongs to one source
        sa.Index(f"{schema}_timeline_by_customer", "customer_id", "occurred_at", "event_id"),
        # The consent and preference events alone (a few per customer): a contact-policy
        # decision reads them without walking a long timeline.
        sa.Index(
            f"{schema}_timeline_policy",
            "customer_id",
            "occurred_at",
            postgresql_where=sa.text("type IN ('consent.changed', 'consent.preferences_set')"),
        ),
    )
    customers = sa.Table(
        "customers",
        md,
        sa.Column("customer_id", sa.Text, primary_key=True),
        sa.Column("identifiers", ARRAY(sa.Text), nullable=False),
        sa.Column("traits", JSONB, nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True)),
        sa.Column("last_seen", sa.DateTime(timezone=True)),
        sa.Column("events", sa.Integer, nullable=False),
        sa.Column("channel_counts", JSONB, nullable=False),
        sa.Column("last_contact", JSONB, nullable=False),
        sa.Column("preferences", JSONB),
        sa.Column("consent", JSONB, nullable=False),
        sa.Column("survey", JSONB),
        _changed_xid(),
    )
    purchases = sa.Table(
        "purchases",
        md,
        sa.Column("event_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("customer_id", sa.Text, nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("order_id", sa.Text, nullable=False),
        sa.Column("amount", sa.Numeric(18, 4), nullable=False),
        sa.Column("margin", sa.Numeric(18, 4)),
        sa.Column("currency", sa.Text, nullable=False),
        sa.Column("category", sa.Text),
        sa.Index(f"{schema}_purchases_by_customer", "customer_id", "occurred_at"),
    )
    channel_daily = sa.Table(
        "channel_daily",
        md,
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("channel", sa.Text, primary_key=True),
        sa.Column("type", sa.Text, primary_key=True),
        sa.Column("events", sa.BigInteger, nullable=False),
    )
    # Per partition, the next offset to project, committed with the rows of the batch.
    positions = sa.Table(
        "positions",
        md,
        sa.Column("topic", sa.Text, primary_key=True),
        sa.Column("partition", sa.Integer, primary_key=True),
        sa.Column("next_offset", sa.BigInteger, nullable=False),
        # For `rapport status` and the freshness alerts: when the partition last advanced,
        # and the newest arrival (received_at) among the events it has projected.
        sa.Column("stored_at", sa.DateTime(timezone=True), server_default=sa.text("now()")),
        sa.Column("last_received_at", sa.DateTime(timezone=True)),
    )
    # Every customer's scores as of the population's day (its end, inclusive), kept
    # current by the population scorer: a customer is rescored when one of its keys
    # changes and when the day turns; RFM and tiers are ranked across these rows.
    scores = sa.Table(
        "scores",
        md,
        sa.Column("customer_id", sa.Text, primary_key=True),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.Column("frequency", sa.Integer),
        sa.Column("recency", sa.Integer),
        sa.Column("t", sa.Integer),
        sa.Column("monetary_value", sa.Float),
        sa.Column("p_active", sa.Float),
        sa.Column("past_value", sa.Float, nullable=False),
        sa.Column("clv", sa.Float, nullable=False),
        sa.Column("net_contribution", sa.Numeric(18, 4), nullable=False),
        sa.Column("share_of_wallet", sa.Float),
        sa.Column("engagement", sa.Float, nullable=False),
        sa.Column("rfm_recency", sa.SmallInteger),
        sa.Column("rfm_frequency", sa.SmallInteger),
        sa.Column("rfm_monetary", sa.SmallInteger),
        sa.Column("rfm_score", sa.Float),
        sa.Column("tier", sa.Text),
        sa.Column("tier_reason", sa.Text),
        # Money columns are in `currency` (projections/scores.py: currencies); the
        # customer's other currencies are scored apart, here.
        sa.Column("currency", sa.Text),
        sa.Column("other_currencies", JSONB),
        # The keys the customer's rows are filed under (a key that changes finds its row).
        sa.Column("keys", ARRAY(sa.Text)),
        # What RFM and the tiers rank by, besides the scores above: the last purchase,
        # purchase count and spend in the primary currency, and the yearly wallet headroom.
        sa.Column("rfm_last_purchase", sa.DateTime(timezone=True)),
        sa.Column("rfm_purchases", sa.Integer),
        sa.Column("rfm_spend", sa.Numeric),
        sa.Column("annual_headroom", sa.Float),
        sa.Index(f"{schema}_scores_by_key", "keys", postgresql_using="gin"),
        *(
            sa.Index(f"{schema}_scores_by_{c}", sa.text(f"{c} DESC NULLS LAST"), "customer_id")
            for c in ("clv", "p_active", "rfm_score", "engagement", "past_value")
        ),
    )
    # Per key (timeline.customer_id), what every score needs (projections/score_state.py),
    # folded with each batch: scores as of now without reading the customer's history.
    score_state = sa.Table(
        "score_state",
        md,
        sa.Column("customer_id", sa.Text, primary_key=True),
        sa.Column("state", JSONB, nullable=False),
    )
    # Per key, the latest purchase of each order (a refund takes back its order's share):
    # apart from the state, which they would make grow with every purchase.
    score_orders = sa.Table(
        "score_orders",
        md,
        sa.Column("customer_id", sa.Text, primary_key=True),
        sa.Column("currency", sa.Text, primary_key=True),
        sa.Column("order_id", sa.Text, primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_id", UUID(as_uuid=True), nullable=False),
        sa.Column("amount", sa.Numeric, nullable=False),
        sa.Column("contribution", sa.Numeric, nullable=False),
    )
    # The identity graph (projections/identity.py): every identifier with the customer it
    # resolves to, the partition keys rows are filed under, and the edges with evidence.
    identity_nodes = sa.Table(
        "identity_nodes",
        md,
        sa.Column("node", sa.Text, primary_key=True),
        sa.Column("customer_id", sa.Text, nullable=False),  # the component's id
        sa.Column("blocked_customers", sa.Integer),  # set: shared by this many customers
        _changed_xid(),
        sa.Index(f"{schema}_identity_nodes_by_customer", "customer_id"),
    )
    identity_keys = sa.Table(
        "identity_keys",
        md,
        sa.Column("key", sa.Text, primary_key=True),  # timeline.customer_id and the like
        sa.Column("node", sa.Text, nullable=False),
        sa.Index(f"{schema}_identity_keys_by_node", "node"),
    )
    identity_edges = sa.Table(
        "identity_edges",
        md,
        sa.Column("a", sa.Text, primary_key=True),  # a < b
        sa.Column("b", sa.Text, primary_key=True),
        sa.Column("first_at", sa.DateTime(timezone=True)),  # the earliest link
        sa.Column("first_event_id", UUID(as_uuid=True)),
        sa.Column("first_source", sa.Text),
        sa.Column("cooccurs", sa.Boolean, nullable=False),
        sa.Column("link_at", sa.DateTime(timezone=True)),  # the latest identity.linked
        sa.Column("link_event_id", UUID(as_uuid=True)),
        sa.Column("forced", sa.Boolean, nullable=False),
        sa.Column("unlinked_at", sa.DateTime(timezone=True)),
        sa.Column("unlink_event_id", UUID(as_uuid=True)),
        sa.Column("unlink_reason", sa.Text),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("reason", sa.Text),
        sa.Index(f"{schema}_identity_edges_by_b", "b"),
    )
    # What the population was last ranked by (lineage of RFM and tiers):
    # RFM's quintile boundaries per currency (RFM ranks within one), the tiers' cut-offs.
    score_bases = sa.Table(
        "score_bases",
        md,
        sa.Column("kind", sa.Text, primary_key=True),  # 'rfm' or 'tiers'
        sa.Column("currency", sa.Text, primary_key=True),  # '' for tiers
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lineage", JSONB, nullable=False),
    )
    # Customers per tier and per RFM band with their averages, rewritten with every
    # ranking of the population (segments over a million customers without a scan).
    score_segments = sa.Table(
        "score_segments",
        md,
        sa.Column("kind", sa.Text, primary_key=True),  # 'tier' or 'rfm_band'
        sa.Column("segment", sa.Text, primary_key=True),
        sa.Column("customers", sa.BigInteger, nullable=False),
        sa.Column("avg_clv", sa.Float),
        sa.Column("avg_p_active", sa.Float),
        sa.Column("total_past_value", sa.Float),
        sa.Column("avg_engagement", sa.Float),
    )
    # The population scorer's own row: how far it has read and what it has ranked.
    population = sa.Table(
        "population",
        md,
        sa.Column("id", sa.Integer, primary_key=True),  # always 1
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        # Every key changed by a transaction below this id has been rescored.
        sa.Column("changed_below_xid", sa.BigInteger, nullable=False),
        sa.Column("ranked_at", sa.DateTime(timezone=True)),
        sa.Column("customers", sa.BigInteger),
        sa.Column("unscorable", JSONB),
    )
    # A long history's score state as of points in it (every CHECKPOINT_EVERY events), so
    # scores as of an earlier time fold only what came after the point before it. Written
    # by the population scorer; valid while the events up to `at` still number `events`
    # (a late event before `at` makes it stale, and readers then fold from the start).
    score_checkpoints = sa.Table(
        "score_checkpoints",
        md,
        sa.Column("customer_id", sa.Text, primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("keys", ARRAY(sa.Text), nullable=False),
        sa.Column("events", sa.Integer, nullable=False),
        sa.Column("state", JSONB, nullable=False),
    )
    # Outbound touchpoints that broke the contact policy in force when they happened
    # (projections/contact_policy.py), one row per rule broken. Rewritten per customer by
    # the population scorer whenever one of the customer's keys changes (a late opt-out
    # changes the verdict on what followed it).
    contact_violations = sa.Table(
        "contact_violations",
        md,
        sa.Column("customer_id", sa.Text, primary_key=True),
        sa.Column("event_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("rule", sa.Text, primary_key=True),
        sa.Column("key", sa.Text, nullable=False),  # the key the touchpoint is filed under
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("purpose", sa.Text, nullable=False),
        sa.Column("topic", sa.Text),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("policy_event_id", UUID(as_uuid=True)),  # the event the rule comes from
        sa.Column("policy_at", sa.DateTime(timezone=True)),
        sa.Index(f"{schema}_contact_violations_by_key", "key"),
    )
    # Events of erased customers: counted once in channel_daily, never folded again (a
    # redelivered copy, or a rebuild, finds its id here).
    erased_events = sa.Table(
        "erased_events", md, sa.Column("event_id", UUID(as_uuid=True), primary_key=True)
    )
    return Tables(
        md,
        schema,
        timeline,
        customers,
        purchases,
        channel_daily,
        positions,
        scores,
        score_state,
        score_orders,
        identity_nodes,
        identity_keys,
        identity_edges,
        score_bases,
        score_segments,
        population,
        score_checkpoints,
        contact_violations,
        erased_events,
    )
