"""The identity graph in PostgreSQL: folded with each batch, resolved where it changed.

Within a batch's transaction: every partition key and identifier the new events carry is
recorded (a new identifier is its own customer until an edge joins it), the evidence is
folded into `identity_edges` (an edge is written only when it changes), and where an
edge changed whether it joins, the region around it (its connected identifiers, not
crossing an identifier shared by too many customers) is resolved again with the pure
rules of `projections.identity` and the changed rows are written. Resolutions take a
transaction-level lock, so two workers never resolve overlapping regions from stale
reads.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from psycopg2.extras import execute_values

from projections.identity import (
    CUSTOMER,
    DEFAULT_RULES,
    KIND_ORDER,
    Edge,
    EdgeState,
    Evidence,
    IdentityRules,
    blocked_nodes,
    component_id,
    fold_evidence,
    normalize,
    resolve,
)
from projections.postgres.bulk import insert_rows
from projections.postgres.tables import ANALYST_SCHEMA, Tables

_RESOLVE_LOCK = 7_243_002  # advisory lock id: one resolution at a time per database
_MAX_REGION = 50_000  # identifiers; a region this large means the guard rails are off
_EDGE_COLUMNS = (
    "a",
    "b",
    "first_at",
    "first_event_id",
    "first_source",
    "cooccurs",
    "link_at",
    "link_event_id",
    "forced",
    "unlinked_at",
    "unlink_event_id",
    "unlink_reason",
)


Settled = dict[tuple[str, str], tuple[datetime, str]]


@dataclass
class Recorded:
    """What a batch wrote that later batches need not write again, once it commits."""

    keys: set[str] = field(default_factory=set)
    nodes: set[str] = field(default_factory=set)
    settled: Settled = field(default_factory=dict)


@dataclass
class Known:
    """What this process has seen committed in one version: keys and identifiers that
    exist, and pairs already joined by co-occurrence with their first evidence (a later
    co-occurrence changes nothing of such an edge). Filled only after commits, so a batch
    that rolls back leaves nothing here; another process's writes only make it stale in
    the safe direction (something written again, merged by the upsert)."""

    keys: set[str] = field(default_factory=set)
    nodes: set[str] = field(default_factory=set)
    settled: Settled = field(default_factory=dict)
    limit: int = 2_000_000

    def remember(self, recorded: Recorded) -> None:
        if len(self.keys) + len(self.nodes) + len(self.settled) > self.limit:
            self.forget_all()
        self.keys |= recorded.keys
        self.nodes |= recorded.nodes
        self.settled.update(recorded.settled)

    def forget_all(self) -> None:
        """After an erasure removed nodes: nothing is assumed to exist any more."""
        self.keys.clear()
        self.nodes.clear()
        self.settled.clear()

    def unsettled(self, item: Evidence) -> Evidence:
        """`item` without the co-occurrences that cannot change their edge."""
        kept = tuple(
            c
            for c in item.cooccurrences
            if (first := self.settled.get((c.a, c.b))) is None or (c.at, str(c.event_id)) <= first
        )
        return item if len(kept) == len(item.cooccurrences) else replace(item, cooccurrences=kept)


def fold_identity(
    conn: sa.Connection,
    t: Tables,
    evidence: Sequence[Evidence],
    rules: IdentityRules,
    known: Known,
) -> Recorded:
    """Fold a batch's evidence; return what it recorded (for `known`, once the transaction
    commits). Each new row is written once, with its resolved value when the batch can
    tell it (see `_plan_new_identifiers`); what it cannot is resolved region by region."""
    keys = {e.key: e.key_node for e in evidence if e.key not in known.keys}
    candidates = sorted({n for e in evidence for n in e.nodes} - known.nodes)
    # Arrays, one statement each: these tables take a few new rows per batch, and none once
    # a customer base is known (then a batch costs no statement here).
    if keys:
        conn.execute(
            sa.text(
                f"INSERT INTO {_name(t.identity_keys)} (key, node) SELECT * FROM "
                "unnest(CAST(:k AS text[]), CAST(:n AS text[])) ON CONFLICT DO NOTHING"
            ),
            {"k": list(keys), "n": list(keys.values())},
        )
    recorded = Recorded(set(keys), set(candidates))
    evidence = [known.unsettled(e) for e in evidence]
    pairs = sorted(
        {(x.a, x.b) for e in evidence for x in (*e.cooccurrences, *e.links)}
        | {(u.a, u.b) for e in evidence for u in e.unlinks}
    )
    existing = (
        _edges(
            conn,
            t,
            "(a, b) IN (SELECT * FROM unnest(CAST(:a AS text[]), CAST(:b AS text[])))",
            a=[a for a, _ in pairs],
            b=[b for _, b in pairs],
        )
        if pairs
        else {}
    )
    changed = fold_evidence(existing, evidence)
    recorded.settled = {
        key: (edge.first_at, str(edge.first_event_id))
        for key, edge in {**existing, **changed}.items()
        if edge.cooccurs and edge.first_at is not None
    }
    joining = {k: e for k, e in changed.items() if _joins_differently(existing.get(k), e)}
    plan = Plan()
    if joining:
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": _RESOLVE_LOCK})
        present = set(
            conn.execute(
                sa.text(
                    f"SELECT node FROM {_name(t.identity_nodes)} "
                    "WHERE node = ANY(CAST(:n AS text[]))"
                ),
                {"n": candidates},
            ).scalars()
        )
        plan = _plan_new_identifiers(conn, t, joining, set(candidates) - present, existing, rules)
    _insert_nodes(conn, t, candidates, plan)
    if changed:
        rows = [_edge_row(e, plan.states.get(key)) for key, e in sorted(changed.items())]
        columns = (*_EDGE_COLUMNS, "state", "reason")
        insert_rows(conn, t.identity_edges, columns, rows, on_conflict=_MERGE_EDGE)
    if plan.rest:
        resolve_region(conn, t, plan.rest, rules)
    return recorded


@dataclass
class Plan:
    """What a batch can resolve itself: components and blocked counts of identifiers it
    creates, states of its new edges; `rest`, identifiers to resolve region by region."""

    components: dict[str, tuple[str, int | None]] = field(default_factory=dict)
    states: dict[tuple[str, str], tuple[EdgeState, str | None]] = field(default_factory=dict)
    rest: set[str] = field(default_factory=set)


def _insert_nodes(conn: sa.Connection, t: Tables, candidates: Sequence[str], plan: Plan) -> None:
    """New identifiers: those the plan resolved with their component (over a singleton a
    batch without new edges may have written meanwhile), the others as singletons."""
    resolved = [n for n in candidates if n in plan.components]
    alone = [n for n in candidates if n not in plan.components]
    for names, values, on_conflict in (
        (alone, [(component_id([n]), None) for n in alone], "DO NOTHING"),
        (
            resolved,
            [plan.components[n] for n in resolved],
            "(node) DO UPDATE SET customer_id = EXCLUDED.customer_id, "
            "blocked_customers = EXCLUDED.blocked_customers, changed_xid = txid_current()",
        ),
    ):
        if names:
            conn.execute(
                sa.text(
                    f"INSERT INTO {_name(t.identity_nodes)} (node, customer_id, blocked_customers) "
                    "SELECT * FROM unnest(CAST(:n AS text[]), CAST(:c AS text[]), "
                    f"CAST(:b AS integer[])) ON CONFLICT {on_conflict}"
                ),
                {"n": names, "c": [c for c, _ in values], "b": [b for _, b in values]},
            )


def _plan_new_identifiers(
    conn: sa.Connection,
    t: Tables,
    joining: dict[tuple[str, str], Edge],
    created: set[str],
    existing: dict[tuple[str, str], Edge],
    rules: IdentityRules,
) -> Plan:
    """Resolve at once the common case, where new edges join identifiers this batch
    creates (so they have no edges yet) to each other, or to one customer's component.

    Such a piece cannot be refused, blocked or renamed when it holds no customer id of its
    own and meets one existing customer, and it is a graph of its own when it meets
    nothing existing: either way its result is the rules' result on the whole graph."""
    plan = Plan()
    pieces: list[tuple[set[str], list[tuple[str, str]], str | None]] = []
    anchors: set[str] = set()
    for piece_nodes, piece_edges in _pieces(joining):
        old = piece_nodes - created
        new_edges_only = all(key not in existing and joining[key].linked for key in piece_edges)
        own_customer = any(n.startswith(CUSTOMER) for n in piece_nodes - old)
        if (
            not new_edges_only
            or len(old) > 1
            or (old and own_customer)
            or rules.max_customers_per_identifier < 1
        ):
            plan.rest |= piece_nodes
            continue
        anchor = next(iter(old), None)
        if anchor is not None:
            anchors.add(anchor)
        pieces.append((piece_nodes, piece_edges, anchor))
    components: dict[str, str] = {}
    if anchors:  # only anchors in a customer's component: those keep their id
        components = dict(
            conn.execute(
                sa.text(
                    f"SELECT n.node, n.customer_id FROM {_name(t.identity_nodes)} n "
                    f"JOIN {_name(t.identity_nodes)} c ON c.node = :prefix || n.customer_id "
                    "WHERE n.node = ANY(CAST(:n AS text[]))"
                ),
                {"n": sorted(anchors), "prefix": CUSTOMER},
            ).all()
        )
    for piece_nodes, piece_edges, anchor in pieces:
        if anchor is None:
            result = resolve(piece_nodes, [joining[k] for k in piece_edges], rules)
            for node, cid in result.components.items():
                plan.components[node] = (cid, result.blocked.get(node))
            plan.states.update(result.states)
            continue
        customer = components.get(anchor)
        if customer is None:  # a visitor's component: a new identifier may rename it
            plan.rest |= piece_nodes
            continue
        for node in piece_nodes - {anchor}:
            plan.components[node] = (customer, None)
        for key in piece_edges:
            plan.states[key] = (EdgeState.ACTIVE, None)
    return plan


def _pieces(edges: Iterable[tuple[str, str]]) -> list[tuple[set[str], list[tuple[str, str]]]]:
    """The connected pieces of a set of edges: (their nodes, their edges)."""
    parent: dict[str, str] = {}

    def root(n: str) -> str:
        parent.setdefault(n, n)
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    keys = sorted(edges)
    for a, b in keys:
        parent[root(a)] = root(b)
    grouped: dict[str, tuple[set[str], list[tuple[str, str]]]] = {}
    for a, b in keys:
        nodes, members = grouped.setdefault(root(a), (set(), []))
        nodes |= {a, b}
        members.append((a, b))
    return list(grouped.values())


def _joins_differently(before: Edge | None, after: Edge) -> bool:
    return before is None or (before.linked, before.forced) != (after.linked, after.forced)


def resolve_region(conn: sa.Connection, t: Tables, start: set[str], rules: IdentityRules) -> None:
    """Resolve the identifiers connected to `start` again, and write what changed."""
    region: set[str] = set()
    edges: dict[tuple[str, str], Edge] = {}
    blocked: dict[str, int] = {}
    frontier = set(start)
    while frontier:
        found = _edges(
            conn,
            t,
            "a = ANY(CAST(:f AS text[])) OR b = ANY(CAST(:f AS text[]))",
            f=sorted(frontier),
        )
        edges.update(found)
        region |= frontier
        incident: dict[str, list[Edge]] = {}
        for edge in found.values():
            incident.setdefault(edge.a, []).append(edge)
            incident.setdefault(edge.b, []).append(edge)
        reached: set[str] = set()
        for node in frontier:
            mine = incident.get(node, [])
            shared = blocked_nodes(mine, rules)
            if node in shared:
                blocked[node] = shared[node]
                continue  # a shared identifier joins nobody: do not cross it
            reached |= {n for edge in mine if edge.linked for n in (edge.a, edge.b)}
        frontier = reached - region
        if len(region) > _MAX_REGION:
            raise RuntimeError(
                f"an identity region passed {_MAX_REGION:,} identifiers around {sorted(start)[:3]}"
            )
    inside = [e for e in edges.values() if e.a in region and e.b in region]
    result = resolve(region, inside, rules, blocked=blocked)
    current = {
        row.node: (row.customer_id, row.blocked_customers)
        for row in conn.execute(
            sa.text(
                f"SELECT node, customer_id, blocked_customers FROM {_name(t.identity_nodes)} "
                "WHERE node = ANY(CAST(:r AS text[]))"
            ),
            {"r": sorted(region)},
        )
    }
    node_rows = [
        (node, cid, result.blocked.get(node))
        for node, cid in sorted(result.components.items())
        if current.get(node) != (cid, result.blocked.get(node))
    ]
    if node_rows:
        _update(conn, t.identity_nodes, ("node",), ("customer_id", "blocked_customers"), node_rows)
    states = dict(result.states)
    for key, edge in edges.items():  # from a blocked identifier to beyond the region
        if key not in states and edge.linked and (edge.a in blocked or edge.b in blocked):
            sharer = edge.a if edge.a in blocked else edge.b
            why = f"{sharer} is shared by {blocked[sharer]} customers"
            states[key] = (EdgeState.BLOCKED, why)
    edge_rows = [(a, b, state.value, why) for (a, b), (state, why) in sorted(states.items())]
    if edge_rows:
        _update(conn, t.identity_edges, ("a", "b"), ("state", "reason"), edge_rows)


def _edges(
    conn: sa.Connection, t: Tables, where: str, **arrays: list[str]
) -> dict[tuple[str, str], Edge]:
    """Edges matching `where`, whose parameters are whole arrays: one bound value each, so
    the statement is the same whatever the batch's size (and compiles once)."""
    rows = conn.execute(
        sa.text(f"SELECT {', '.join(_EDGE_COLUMNS)} FROM {_name(t.identity_edges)} WHERE {where}"),
        arrays,
    )
    return {(r.a, r.b): Edge(*r) for r in rows}  # the columns in Edge's order


def _name(table: sa.Table) -> str:
    return f'"{table.schema}"."{table.name}"'


def _edge_row(edge: Edge, planned: tuple[EdgeState, str | None] | None) -> tuple[Any, ...]:
    # A new edge is written with its planned state, else as active or unlinked until the
    # resolution that follows sets it (the merge below leaves an existing edge's state).
    state, reason = planned or (EdgeState.ACTIVE if edge.linked else EdgeState.UNLINKED, None)
    return (
        edge.a,
        edge.b,
        edge.first_at,
        str(edge.first_event_id) if edge.first_event_id else None,
        edge.first_source,
        edge.cooccurs,
        edge.link_at,
        str(edge.link_event_id) if edge.link_event_id else None,
        edge.forced,
        edge.unlinked_at,
        str(edge.unlink_event_id) if edge.unlink_event_id else None,
        edge.unlink_reason,
        state.value,
        reason,
    )


# Two writers may fold the same new pair at once: the conflict merges their evidence the
# way projections.identity does, instead of the later one overwriting the earlier.
_EARLIER = """EXCLUDED.first_at IS NOT NULL AND (identity_edges.first_at IS NULL
                 OR (EXCLUDED.first_at, EXCLUDED.first_event_id::text)
                  < (identity_edges.first_at, identity_edges.first_event_id::text))"""
_MERGE_EDGE = """(a, b) DO UPDATE SET
    first_at = CASE WHEN {earlier} THEN EXCLUDED.first_at ELSE identity_edges.first_at END,
    first_event_id = CASE WHEN {earlier}
               THEN EXCLUDED.first_event_id ELSE identity_edges.first_event_id END,
    first_source = CASE WHEN {earlier}
               THEN EXCLUDED.first_source ELSE identity_edges.first_source END,
    cooccurs = identity_edges.cooccurs OR EXCLUDED.cooccurs,
    link_at = CASE WHEN EXCLUDED.link_at IS NOT NULL AND (identity_edges.link_at IS NULL
                      OR (EXCLUDED.link_at, EXCLUDED.link_event_id::text)
                       > (identity_edges.link_at, identity_edges.link_event_id::text))
               THEN EXCLUDED.link_at ELSE identity_edges.link_at END,
    link_event_id = CASE WHEN EXCLUDED.link_at IS NOT NULL AND (identity_edges.link_at IS NULL
                      OR (EXCLUDED.link_at, EXCLUDED.link_event_id::text)
                       > (identity_edges.link_at, identity_edges.link_event_id::text))
               THEN EXCLUDED.link_event_id ELSE identity_edges.link_event_id END,
    forced = identity_edges.forced OR EXCLUDED.forced,
    unlinked_at = CASE WHEN EXCLUDED.unlinked_at IS NOT NULL AND (identity_edges.unlinked_at
                      IS NULL OR (EXCLUDED.unlinked_at, EXCLUDED.unlink_event_id::text)
                       > (identity_edges.unlinked_at, identity_edges.unlink_event_id::text))
               THEN EXCLUDED.unlinked_at ELSE identity_edges.unlinked_at END,
    unlink_event_id = CASE WHEN EXCLUDED.unlinked_at IS NOT NULL AND (identity_edges.unlinked_at
                      IS NULL OR (EXCLUDED.unlinked_at, EXCLUDED.unlink_event_id::text)
                       > (identity_edges.unlinked_at, identity_edges.unlink_event_id::text))
               THEN EXCLUDED.unlink_event_id ELSE identity_edges.unlink_event_id END,
    unlink_reason = CASE WHEN EXCLUDED.unlinked_at IS NOT NULL AND (identity_edges.unlinked_at
                      IS NULL OR (EXCLUDED.unlinked_at, EXCLUDED.unlink_event_id::text)
                       > (identity_edges.unlinked_at, identity_edges.unlink_event_id::text))
               THEN EXCLUDED.unlink_reason ELSE identity_edges.unlink_reason END""".replace(
    "{earlier}", _EARLIER
)


def _update(
    conn: sa.Connection,
    table: sa.Table,
    keys: Sequence[str],
    columns: Sequence[str],
    rows: Iterable[tuple[Any, ...]],
) -> None:
    """UPDATE rows by key from (key..., value...) tuples, in one statement."""
    names = [*keys, *columns]
    types = {c.name: c.type.compile(dialect=conn.dialect) for c in table.columns}
    sets = ", ".join(f"{c} = v.{c}" for c in columns)
    if "changed_xid" in table.c:  # the population scorer rescores what a change touched
        sets += ", changed_xid = txid_current()"
    match = " AND ".join(f"t.{k} = v.{k}" for k in keys)
    template = "(" + ", ".join(f"CAST(%s AS {types[c]})" for c in names) + ")"
    cursor = conn.connection.cursor()
    try:
        execute_values(
            cursor,
            f"UPDATE {_name(table)} t SET {sets} FROM (VALUES %s) AS v ({', '.join(names)}) "
            f"WHERE {match}",
            list(rows),
            template=template,
            page_size=10_000,
        )
    finally:
        cursor.close()


# -- reads ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Customer:
    """A customer found by one of its identifiers: its id and the keys its rows are under."""

    customer_id: str
    keys: list[str]


_PHONE_LIKE = re.compile(r"^\+?[0-9 ()./-]{3,31}$")


def lookup_candidates(text: str, rules: IdentityRules = DEFAULT_RULES) -> list[str]:
    """The identifiers `text` may be: 'kind:value' as written, a customer id, an e-mail
    address, a phone number."""
    text = text.strip()
    found: list[str] = []
    if text.partition(":")[0] in KIND_ORDER and ":" in text:
        found.append(normalize(text, rules))
    found.append(CUSTOMER + text)
    if "@" in text:
        found.append(normalize(f"email:{text}", rules))
    if _PHONE_LIKE.match(text):
        found.append(normalize(f"phone:{text}", rules))
    return list(dict.fromkeys(found))


def find_customer(
    conn: sa.Connection, text: str, rules: IdentityRules = DEFAULT_RULES
) -> Customer | None:
    """The customer any of whose identifiers `text` is, in the active version (analysts'
    views); None when no identifier and no key matches. One statement: a timeline page
    is this and its own query, so each round trip shows in its latency."""
    candidates = lookup_candidates(text, rules)
    row = conn.execute(
        sa.text(
            f"""WITH found AS (
                    SELECT n.customer_id
                      FROM unnest(CAST(:candidates AS text[])) WITH ORDINALITY c(node, rank)
                      JOIN {ANALYST_SCHEMA}.identities n ON n.identifier = c.node
                     ORDER BY c.rank LIMIT 1)
                SELECT f.customer_id,
                       ARRAY(SELECT k.key FROM {ANALYST_SCHEMA}.identity_keys k
                               JOIN {ANALYST_SCHEMA}.identities m ON m.identifier = k.node
                              WHERE m.customer_id = f.customer_id ORDER BY k.key) AS keys
                  FROM found f
                UNION ALL
                -- a key filed before the graph knew it (an unrebuilt version)
                SELECT NULL, ARRAY[CAST(:text AS text)]
                 WHERE NOT EXISTS (SELECT 1 FROM found)
                   AND EXISTS (SELECT 1 FROM {ANALYST_SCHEMA}.customers WHERE key = :text)"""
        ),
        {"candidates": candidates, "text": text},
    ).first()
    if row is None:
        return None
    if row.customer_id is None:
        return Customer(text, [text])
    return Customer(row.customer_id, list(row.keys) or [row.customer_id])


def identity_of(conn: sa.Connection, customer: Customer) -> dict[str, Any]:
    """Everything the graph knows of a customer: its identifiers (with those shared by too
    many customers marked) and every link touching them, with its evidence and state."""
    nodes = conn.execute(
        sa.text(
            f"SELECT identifier, blocked_customers FROM {ANALYST_SCHEMA}.identities "
            "WHERE customer_id = :c ORDER BY identifier"
        ),
        {"c": customer.customer_id},
    ).all()
    names = [n.identifier for n in nodes]
    links = conn.execute(
        sa.text(
            f"SELECT * FROM {ANALYST_SCHEMA}.identity_links "
            "WHERE a = ANY(:n) OR b = ANY(:n) ORDER BY first_at, a, b"
        ),
        {"n": names},
    ).mappings()
    return {
        "customer_id": customer.customer_id,
        "identifiers": [
            {"identifier": n.identifier, "shared_by_customers": n.blocked_customers} for n in nodes
        ],
        "keys": customer.keys,
        "links": [{str(k): v for k, v in row.items()} for row in links],
    }
