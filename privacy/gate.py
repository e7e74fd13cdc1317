"""Inside each projection transaction: the events whose customer was erased.

An event folds nothing when any identifier it carries (normalised as the identity graph
normalises it: the store passes the nodes it computed for the graph) is suppressed. This
is the authoritative check: producers refuse such events from a cache that may be seconds
old, and events written before the erasure (or before sealing existed, in clear) are still
in the log for every rebuild to read.

The gate holds the erasure lock shared for the rest of the transaction, and erasure takes
it exclusively: an erasure waits for batches that checked before it, and batches after it
see its suppression, so no batch can fold a customer an erasure has already scrubbed.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

import sqlalchemy as sa

from privacy.crypto import Tokens
from privacy.keystore import ERASURE_LOCK, SCHEMA


class SuppressionGate:
    def __init__(self, pepper: bytes) -> None:
        self._token = Tokens(pepper)

    def confirmed_erasures(self, conn: sa.Connection, event_ids: Sequence[Any]) -> set[Any]:
        if not event_ids:
            return set()
        return set(
            conn.execute(
                sa.text(
                    f"SELECT erasure_id FROM {SCHEMA}.erasures "
                    "WHERE erasure_id = ANY(CAST(:ids AS uuid[]))"
                ),
                {"ids": [str(i) for i in event_ids]},
            ).scalars()
        )

    def suppressed(
        self, conn: sa.Connection, identifiers: Sequence[tuple[Any, Collection[str]]]
    ) -> set[Any]:
        """Of (event id, the event's identifier nodes as the identity graph normalises
        them), the ids whose customer was erased."""
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock_shared(ERASURE_LOCK)))
        by_event = {event_id: [self._token(n) for n in nodes] for event_id, nodes in identifiers}
        wanted = sorted({t for tokens in by_event.values() for t in tokens})
        hit = set(
            conn.execute(
                sa.text(f"SELECT token FROM {SCHEMA}.suppressed WHERE token = ANY(:t)"),
                {"t": wanted},
            ).scalars()
        )
        if not hit:
            return set()
        return {event_id for event_id, tokens in by_event.items() if hit.intersection(tokens)}
