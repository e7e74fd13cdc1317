"""The contact policy over PostgreSQL: decisions read from the timeline, violations kept.

Both read the same timeline rows (consent and preference events, outbound touchpoints)
of every key a customer is known by and hand them to the pure rules of
`projections.contact_policy`. A decision reads the analyst views (the active version);
the violations are rewritten per customer by the population scorer, in its transaction,
whenever one of the customer's keys changes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from projections.contact_policy import (
    DEFAULT_CONTACT_RULES,
    OUTBOUND_TYPES,
    POLICY_TYPES,
    RULES,
    WEEK,
    ContactRules,
    Decision,
    Fact,
    Request,
    contacts_before,
    decide,
    outbound_contact,
    policy_at,
    violations,
)
from projections.errors import CustomerNotFound, InvalidQuery
from projections.identity import DEFAULT_RULES, IdentityRules
from projections.postgres.identity import find_customer
from projections.postgres.tables import ANALYST_SCHEMA, Tables
from schemas import Channel

_FACT_COLUMNS = "customer_id, event_id, occurred_at, type, campaign_id, payload"


def _fact(row: Any) -> Fact:
    return Fact(row.occurred_at, str(row.event_id), row.type, row.payload, row.campaign_id)


def contact_decision(
    conn: sa.Connection,
    customer: str,
    *,
    channel: str,
    purpose: str,
    at: datetime,
    topic: str | None = None,
    rules: ContactRules = DEFAULT_CONTACT_RULES,
    identity_rules: IdentityRules = DEFAULT_RULES,
) -> tuple[str, Decision]:
    """May `customer` (any identifier) be contacted on `channel` for `purpose` at `at`?
    Returns the customer id it resolved to and the decision with every check."""
    if channel not in {c.value for c in Channel}:
        known = ", ".join(sorted(c.value for c in Channel))
        raise InvalidQuery("channel", f"{channel!r}; known: {known}")
    if not purpose.strip():
        raise InvalidQuery("purpose", "is empty")
    if at.tzinfo is None:
        raise InvalidQuery("at", f"{at.isoformat()} has no timezone")
    who = find_customer(conn, customer, identity_rules)
    if who is None:
        raise CustomerNotFound(customer)
    # Two index ranges: the few consent and preference events up to `at` (a partial
    # index holds only those), and the week of touchpoints before it, with only the
    # payload fields a touchpoint is judged by. Asking for `key`, not the resolved
    # `customer_id`, lets PostgreSQL leave the view's identity joins out.
    rows = conn.execute(
        sa.text(
            f"""SELECT event_id, occurred_at, type, campaign_id, payload
                  FROM {ANALYST_SCHEMA}.timeline
                 WHERE key = ANY(CAST(:keys AS text[])) AND occurred_at <= :at
                   AND type IN ('consent.changed', 'consent.preferences_set')
                UNION ALL
                SELECT event_id, occurred_at, type, campaign_id,
                       jsonb_strip_nulls(jsonb_build_object(
                           'direction', payload->'direction',
                           'campaign', payload->'campaign',
                           'topic', payload->'topic'))
                  FROM {ANALYST_SCHEMA}.timeline
                 WHERE key = ANY(CAST(:keys AS text[]))
                   AND occurred_at > :since AND occurred_at <= :at
                   AND type = ANY(CAST(:outbound AS text[]))"""
        ),
        {"keys": who.keys, "at": at, "since": at - WEEK, "outbound": list(OUTBOUND_TYPES)},
    ).all()
    facts = [_fact(r) for r in rows]
    contacts = sorted(
        (c for f in facts if (c := outbound_contact(f)) is not None), key=lambda c: c.stamp
    )
    policy = policy_at((f for f in facts if f.type in POLICY_TYPES), at)
    request = Request(channel, purpose, at, topic)
    return who.customer_id, decide(policy, request, contacts_before(contacts, at), rules)


def rewrite_violations(
    conn: sa.Connection,
    t: Tables,
    customers: Sequence[str],
    keys_of: Mapping[str, Sequence[str]],
    rules: ContactRules = DEFAULT_CONTACT_RULES,
) -> int:
    """Replace the violation rows of `customers` (and any row filed under one of their
    keys, left by a customer those keys no longer belong to); return how many were
    written."""
    table = f'"{t.schema}".contact_violations'
    all_keys = sorted({k for keys in keys_of.values() for k in keys})
    conn.execute(
        sa.text(
            f"DELETE FROM {table} WHERE customer_id = ANY(CAST(:c AS text[])) "
            "OR key = ANY(CAST(:k AS text[]))"
        ),
        {"c": list(customers), "k": all_keys},
    )
    if not all_keys:
        return 0
    facts_by_key: dict[str, list[Fact]] = {}
    for row in conn.execute(
        sa.text(
            f'SELECT {_FACT_COLUMNS} FROM "{t.schema}".timeline '
            "WHERE customer_id = ANY(CAST(:k AS text[])) AND type = ANY(CAST(:types AS text[]))"
        ),
        {"k": all_keys, "types": [*POLICY_TYPES, *OUTBOUND_TYPES]},
    ):
        facts_by_key.setdefault(row.customer_id, []).append(_fact(row))
    rows = []
    for customer_id in customers:
        keys = keys_of.get(customer_id, ())
        key_of = {f.event_id: k for k in keys for f in facts_by_key.get(k, ())}
        facts = [f for k in keys for f in facts_by_key.get(k, ())]
        for v in violations(facts, rules):
            c, check = v.contact, v.check
            rows.append(
                {
                    "customer_id": customer_id,
                    "event_id": UUID(c.event_id),
                    "rule": check.rule,
                    "key": key_of[c.event_id],
                    "occurred_at": c.at,
                    "type": c.type,
                    "channel": c.channel,
                    "purpose": c.purpose,
                    "topic": c.topic,
                    "reason": check.reason,
                    "policy_event_id": UUID(check.event_id) if check.event_id else None,
                    "policy_at": check.at,
                }
            )
    if rows:
        conn.execute(t.contact_violations.insert(), rows)
    return len(rows)


def contact_violations(
    conn: sa.Connection,
    *,
    customer: str | None = None,
    rule: str | None = None,
    limit: int = 50,
    identity_rules: IdentityRules = DEFAULT_RULES,
) -> dict[str, Any]:
    """Counts of violations per rule, and the latest `limit` rows (of one customer, or of
    one rule, when asked)."""
    if rule is not None and rule not in RULES:
        raise InvalidQuery("rule", f"{rule!r}; known: {', '.join(RULES)}")
    if not 1 <= limit <= 1000:
        raise InvalidQuery("limit", f"{limit} is not between 1 and 1000")
    customer_id = None
    if customer is not None:
        who = find_customer(conn, customer, identity_rules)
        if who is None:
            raise CustomerNotFound(customer)
        customer_id = who.customer_id
    where = "WHERE (CAST(:c AS text) IS NULL OR customer_id = :c)"
    values = {"c": customer_id, "r": rule, "n": limit}
    counts: dict[str, int] = dict(
        conn.execute(
            sa.text(
                f"SELECT rule, count(*) FROM {ANALYST_SCHEMA}.contact_violations {where} "
                "GROUP BY rule ORDER BY rule"
            ),
            values,
        ).all()
    )
    rows = conn.execute(
        sa.text(
            f"""SELECT customer_id, occurred_at, event_id, type, channel, purpose, topic, rule,
                       reason, policy_event_id
                  FROM {ANALYST_SCHEMA}.contact_violations {where}
                   AND (CAST(:r AS text) IS NULL OR rule = :r)
                 ORDER BY occurred_at DESC, event_id, rule LIMIT :n"""
        ),
        values,
    ).mappings()
    return {
        "customer_id": customer_id,
        "by_rule": counts,
        "violations": [{str(k): v for k, v in r.items()} for r in rows],
    }
