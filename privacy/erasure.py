"""`rapport erase`: a customer's personal data, gone from everywhere Rapport can reach.

In order, each step safe to run again (an interrupted erasure is finished by erasing
again; it keeps its first id and time):
1. Find the customer in every projection version: the identifiers of their component in
   the identity graph and the keys their rows are filed under.
2. In the key store, at once: suppress the tokens of those identifiers (producers refuse
   new events naming one, the worker's gate folds none) and destroy the data keys of
   those keys (every box sealed with them, in the log and in the dead-letter topic, is
   unreadable from now on).
3. Scrub every version: the customer's rows are deleted, their timeline ids kept in
   `erased_events` so the channel counters still equal a rebuild's.
4. Record `privacy.erased` in the log (its event id is the erasure's): every rebuild
   applies it, and the events a rebuild cannot open are counted and never folded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from privacy.crypto import token
from privacy.keystore import Erasure, KeyStore
from projections.errors import CustomerNotFound
from projections.identity import DEFAULT_RULES, IdentityRules
from projections.postgres.erasure import customer_group, scrub_customer
from projections.postgres.identity import find_customer
from projections.postgres.tables import build_tables
from schemas import CustomerRef, Envelope, Source
from schemas.envelope import Channel
from schemas.payloads.privacy import CustomerErased

_IDENTIFIER_KINDS = frozenset({"email", "phone", "ext", "social", "anon"})
ERASURE_SOURCE = Source(system="rapport-privacy", channel=Channel.PRIVACY)


@dataclass
class ErasureReport:
    erasure: Erasure
    rows_removed: dict[str, int] = field(default_factory=dict)  # version -> timeline rows
    event_id: UUID | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "erasure_id": str(self.erasure.erasure_id),
            "customer": self.erasure.customer_id,
            "erased_at": self.erasure.requested_at.isoformat(),
            "reason": self.erasure.reason,
            "identifiers_suppressed": self.erasure.identifiers,
            "keys_destroyed": self.erasure.keys_destroyed,
            "timeline_rows_removed": self.rows_removed,
        }


def erase_customer(
    engine: sa.Engine,
    keys: KeyStore,
    versions: list[str],
    pepper: bytes,
    who: str,
    reason: str,
    publish: Callable[[Envelope], object],
    rules: IdentityRules = DEFAULT_RULES,
) -> ErasureReport:
    """Erase the customer `who` names (any identifier); see the module docstring."""
    component, identifiers, subjects = _find(engine, keys, versions, pepper, who, rules)
    label = erasure_label(pepper, component)
    tokens = {token(pepper, i) for i in identifiers} | {token(pepper, s) for s in subjects}
    erasure = keys.erase(label, reason, tokens, {token(pepper, s) for s in subjects})
    report = ErasureReport(erasure)
    for name in versions:
        with engine.begin() as conn:
            report.rows_removed[name] = scrub_customer(conn, build_tables(name), component).events
    event = Envelope.new(
        CustomerErased(reason=reason, identifiers=erasure.identifiers),
        customer=CustomerRef(customer_id=label),
        occurred_at=erasure.requested_at,
        source=ERASURE_SOURCE,
        event_id=erasure.erasure_id,
    )
    publish(event)
    report.event_id = event.event_id
    return report


def erasure_label(pepper: bytes, component: str) -> str:
    """How the erasure names who was erased: the customer id (Rapport's pseudonym), or for
    a visitor known only by, say, an e-mail address, a token of it (never the address)."""
    kind = component.partition(":")[0]
    return f"visitor:{token(pepper, component)}" if kind in _IDENTIFIER_KINDS else component


def _find(
    engine: sa.Engine,
    keys: KeyStore,
    versions: list[str],
    pepper: bytes,
    who: str,
    rules: IdentityRules,
) -> tuple[str, set[str], set[str]]:
    """(component id, identifiers, keys) of `who` across every version."""
    with engine.connect() as conn:
        found = find_customer(conn, who, rules)
        customer_id = found.customer_id if found else None
        if customer_id is None and (earlier := keys.erasure_of(erasure_label(pepper, who))):
            customer_id = earlier.customer_id  # erasing again: the rows may be gone already
        if customer_id is None:
            raise CustomerNotFound(who)
        identifiers: set[str] = set()
        subjects: set[str] = {customer_id}
        if erasure_label(pepper, customer_id) == customer_id:  # a customer, not a visitor
            identifiers.add(f"customer:{customer_id}")
        for name in versions:
            nodes, filed = customer_group(conn, build_tables(name), customer_id)
            identifiers |= set(nodes)
            subjects |= set(filed)
    return customer_id, identifiers, subjects
