"""`rapport export-subject`: everything Rapport holds about one person, as JSON.

From the active projection version (what analysts and agents see) and the key store:
profile, every identifier and identity link, the whole timeline with payloads, purchases,
scores, contact-policy violations, and what the key store keeps (whether their data was
erased, how many data keys they have and since when; never key material).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from privacy.crypto import token
from privacy.keystore import KeyStore
from projections.identity import DEFAULT_RULES, IdentityRules
from projections.postgres import queries
from projections.postgres.contact_policy import contact_violations
from projections.postgres.identity import identity_of
from projections.scores import DEFAULT_PARAMETERS, ScoreParameters


def export_subject(
    conn: sa.Connection,
    keys: KeyStore,
    pepper: bytes,
    who: str,
    *,
    rules: IdentityRules = DEFAULT_RULES,
    params: ScoreParameters = DEFAULT_PARAMETERS,
    now: datetime | None = None,
) -> dict[str, Any]:
    customer = queries.resolve_customer(conn, who, rules)
    timeline: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = queries.customer_timeline(
            conn, customer.customer_id, limit=queries.MAX_PAGE, cursor=cursor, rules=rules
        )
        timeline += page.rows
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    identity = identity_of(conn, customer)
    subjects = {token(pepper, k) for k in customer.keys}
    return {
        "exported_at": (now or datetime.now(UTC)).isoformat(),
        "customer_id": customer.customer_id,
        "profile": queries.customer_profile(conn, customer.customer_id, rules),
        "identity": identity,
        "timeline": timeline,
        "scores": queries.customer_scores(
            conn, customer.customer_id, as_of=now or datetime.now(UTC), params=params, rules=rules
        ),
        "contact_violations": contact_violations(
            conn, customer=customer.customer_id, limit=1000, identity_rules=rules
        ),
        "key_store": {
            "erased": keys.erasure_of(customer.customer_id) is not None,
            "data_keys": keys.key_count(subjects),
        },
    }
