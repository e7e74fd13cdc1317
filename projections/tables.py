"""PostgreSQL tables of the read models, and of what makes redelivery harmless."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, UUID

metadata = sa.MetaData()

timeline = sa.Table(
    "timeline",
    metadata,
    sa.Column("event_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("customer_id", sa.Text, nullable=False),
    sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("channel", sa.Text, nullable=False),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("payload", JSONB, nullable=False),
    sa.Index("timeline_by_customer_time", "customer_id", "occurred_at", "event_id"),
)

# Per partition, the next offset to project. Written in the same transaction as the rows a
# batch produced, so a redelivered record (offset below it) is recognised and skipped.
positions = sa.Table(
    "positions",
    metadata,
    sa.Column("consumer", sa.Text, primary_key=True),
    sa.Column("topic", sa.Text, primary_key=True),
    sa.Column("partition", sa.Integer, primary_key=True),
    sa.Column("next_offset", sa.BigInteger, nullable=False),
)
