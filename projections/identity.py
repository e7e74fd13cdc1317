"""The identity graph: which identifiers belong to one customer. Pure, no I/O.

Every identifier is a node ('customer:42', 'email:an@example.com', 'phone:+84900000016',
'ext:shopify:4411', 'social:x:@an', 'anon:9f2c'), normalised so that one address or number
written two ways is one node. An edge joins two nodes, with its evidence: events that
carry both identifiers, `identity.linked` events (Segment's identify and alias become
those) and `identity.unlinked` events that undo a link as of their time.

A customer is a connected component. How the graph resolves is a function of the set of
events alone, never of the order they arrived in:

- an edge is active while its latest link is later than its latest unlink;
- an identifier with active edges to more than `max_customers_per_identifier` customer
  ids (a shared support@ address, the call center's own number) is blocked: it joins
  nobody and is reported;
- active edges are taken in the order of their first evidence (event time, then event
  id), and one that would join two different customer ids is refused, unless forced;
- a component's id is its customer id (the smallest, when an operator forced two into
  one), else its strongest identifier (customer, email, phone, ext, social, anon; then
  alphabetical).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from functools import lru_cache
from typing import NamedTuple
from uuid import UUID

import phonenumbers

from schemas import Envelope
from schemas.payloads.profile import IdentityLinked, IdentityUnlinked

KIND_ORDER = ("customer", "email", "phone", "ext", "social", "anon")
CUSTOMER = "customer:"


@dataclass(frozen=True)
class IdentityRules:
    """How identifiers are read and how far one may join customers (a projection's
    parameters: changing them is a rebuild)."""

    default_region: str | None = "VN"  # for phone numbers written without +country
    max_customers_per_identifier: int = 5


DEFAULT_RULES = IdentityRules()


def normalize(identifier: str, rules: IdentityRules = DEFAULT_RULES) -> str:
    """'kind:value' as the graph knows it: e-mail lower-cased, phone in E.164."""
    kind, sep, value = identifier.partition(":")
    if not sep:
        return identifier
    if kind == "email":
        return f"email:{value.strip().lower()}"
    if kind == "phone":
        return f"phone:{normalize_phone(value, rules)}"
    return identifier


@lru_cache(maxsize=65_536)  # parsing a number costs tens of µs; customers repeat theirs
def normalize_phone(number: str, rules: IdentityRules = DEFAULT_RULES) -> str:
    """E.164 when the number parses (in the default region if it has no +country code);
    otherwise its digits, with the + it was written with."""
    try:
        parsed = phonenumbers.parse(number, rules.default_region)
    except phonenumbers.NumberParseException:
        parsed = None
    if parsed is not None and phonenumbers.is_possible_number(parsed):
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    digits = "".join(c for c in number if c.isdigit())
    return ("+" if number.strip().startswith("+") else "") + digits


def node_of_key(key: str, rules: IdentityRules = DEFAULT_RULES) -> str:
    """The node of a partition key: a customer id, or the 'kind:value' an event without
    one was keyed by (`CustomerRef.partition_key`)."""
    kind = key.partition(":")[0]
    if kind in KIND_ORDER[1:]:
        return normalize(key, rules)
    return CUSTOMER + key


def customer_id_of(node: str) -> str | None:
    return node.removeprefix(CUSTOMER) if node.startswith(CUSTOMER) else None


def component_id(nodes: Iterable[str]) -> str:
    """The id of a component: its (smallest) customer id, else its strongest identifier."""
    members = list(nodes)
    customers = sorted(c for n in members if (c := customer_id_of(n)) is not None)
    if customers:
        return customers[0]
    return min(members, key=_strength)


def _strength(node: str) -> tuple[int, str]:
    kind = node.partition(":")[0]
    return (KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER), node)


# -- evidence -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Link:
    a: str  # a < b
    b: str
    at: datetime
    event_id: UUID
    source: str
    forced: bool = False


@dataclass(frozen=True)
class Unlink:
    a: str
    b: str
    at: datetime
    event_id: UUID
    reason: str


def pair(x: str, y: str) -> tuple[str, str]:
    return (x, y) if x < y else (y, x)


@dataclass(frozen=True)
class Evidence:
    """What one event says about identities: the key it is filed under, and its links."""

    key: str
    key_node: str
    nodes: tuple[str, ...]
    cooccurrences: tuple[Link, ...] = ()  # the event carried both identifiers
    links: tuple[Link, ...] = ()  # an identity.linked
    unlinks: tuple[Unlink, ...] = ()


def evidence_of(event: Envelope, rules: IdentityRules = DEFAULT_RULES) -> Evidence:
    """The identifiers an event carries join each other (through its key); an
    `identity.linked` joins its two; an `identity.unlinked` undoes a link."""
    ref, payload = event.customer, event.payload
    if (
        ref.customer_id
        and not (ref.email or ref.phone or ref.external_ids or ref.social_handles)
        and not ref.anonymous_id
        and not isinstance(payload, IdentityLinked | IdentityUnlinked)
    ):  # most events: a customer id alone says nothing about identities
        node = CUSTOMER + ref.customer_id
        return Evidence(ref.customer_id, node, (node,))
    key = ref.partition_key
    key_node = node_of_key(key, rules)
    nodes = [key_node]
    for identifier in event.customer.identifiers():
        node = normalize(identifier, rules)
        if node not in nodes:
            nodes.append(node)
    at, event_id, source = event.occurred_at, event.event_id, event.source.system
    carried = tuple(Link(*pair(key_node, other), at, event_id, source) for other in nodes[1:])
    links: list[Link] = []
    unlinks: list[Unlink] = []
    if isinstance(payload, IdentityLinked):
        x, y = normalize(payload.identifier, rules), normalize(payload.linked_to, rules)
        links.append(Link(*pair(x, y), at, event_id, source, payload.forced))
        nodes += [n for n in (x, y) if n not in nodes]
    elif isinstance(payload, IdentityUnlinked):
        x, y = normalize(payload.identifier, rules), normalize(payload.unlinked_from, rules)
        unlinks.append(Unlink(*pair(x, y), at, event_id, payload.reason))
        nodes += [n for n in (x, y) if n not in nodes]
    return Evidence(key, key_node, tuple(nodes), carried, tuple(links), tuple(unlinks))


# -- edges ----------------------------------------------------------------------------------
class EdgeState(StrEnum):
    ACTIVE = "active"  # joins its two identifiers
    UNLINKED = "unlinked"  # undone by an identity.unlinked
    REFUSED = "refused"  # would join two different customer ids
    BLOCKED = "blocked"  # touches an identifier shared by too many customers


class Edge(NamedTuple):
    """Every piece of evidence about one pair, folded: commutative, so order-free.

    An unlink undoes what came before it and holds against events that merely carry both
    identifiers later (a family's shared phone stays apart from the customer it was
    unlinked from); only an explicit `identity.linked` later than the unlink joins them
    again. Co-occurrences after the first change nothing here, so they cost no write."""

    a: str
    b: str
    # The earliest link (by event time, then event id), which orders edges when joins
    # conflict; None while only an unlink is known.
    first_at: datetime | None = None
    first_event_id: UUID | None = None
    first_source: str | None = None
    cooccurs: bool = False  # some event carried both identifiers
    link_at: datetime | None = None  # the latest explicit identity.linked
    link_event_id: UUID | None = None
    forced: bool = False
    unlinked_at: datetime | None = None  # the latest identity.unlinked
    unlink_event_id: UUID | None = None
    unlink_reason: str | None = None

    @property
    def linked(self) -> bool:
        if self.unlinked_at is None:
            return self.cooccurs or self.link_at is not None
        return self.link_at is not None and _later(
            self.link_at, self.link_event_id, self.unlinked_at, self.unlink_event_id
        )

    @property
    def order(self) -> tuple[datetime, str, str, str]:
        # Only linked edges are ordered, and those have a first link.
        return (
            self.first_at or datetime.max.replace(tzinfo=UTC),
            str(self.first_event_id),
            self.a,
            self.b,
        )


def _later(at: datetime, event_id: UUID | None, than: datetime, than_id: UUID | None) -> bool:
    return (at, str(event_id)) > (than, str(than_id))


def add_link(edge: Edge | None, link: Link, *, explicit: bool) -> Edge:
    """`explicit`: an identity.linked event, rather than an event carrying both."""
    if edge is None:
        edge = Edge(link.a, link.b)
    if edge.first_at is None or not _later(
        link.at, link.event_id, edge.first_at, edge.first_event_id
    ):
        edge = edge._replace(
            first_at=link.at, first_event_id=link.event_id, first_source=link.source
        )
    if not explicit:
        return edge if edge.cooccurs else edge._replace(cooccurs=True)
    newer = edge.link_at is None or _later(link.at, link.event_id, edge.link_at, edge.link_event_id)
    return edge._replace(
        link_at=link.at if newer else edge.link_at,
        link_event_id=link.event_id if newer else edge.link_event_id,
        forced=edge.forced or link.forced,
    )


def add_unlink(edge: Edge | None, unlink: Unlink) -> Edge:
    if edge is None:  # an unlink that arrived before what it undoes
        edge = Edge(unlink.a, unlink.b)
    if edge.unlinked_at is not None and not _later(
        unlink.at, unlink.event_id, edge.unlinked_at, edge.unlink_event_id
    ):
        return edge
    return edge._replace(
        unlinked_at=unlink.at,
        unlink_event_id=unlink.event_id,
        unlink_reason=unlink.reason,
    )


def fold_evidence(
    existing: Mapping[tuple[str, str], Edge], evidence: Iterable[Evidence]
) -> dict[tuple[str, str], Edge]:
    """The edges `evidence` changes, folded onto `existing`: only those that differ."""
    changed: dict[tuple[str, str], Edge] = {}
    for item in evidence:
        for explicit, links in ((False, item.cooccurrences), (True, item.links)):
            for link in links:
                key = (link.a, link.b)
                before = changed.get(key, existing.get(key))
                after = add_link(before, link, explicit=explicit)
                if after != before:
                    changed[key] = after
        for unlink in item.unlinks:
            key = (unlink.a, unlink.b)
            before = changed.get(key, existing.get(key))
            after = add_unlink(before, unlink)
            if after != before:
                changed[key] = after
    return changed


# -- resolution -----------------------------------------------------------------------------
@dataclass
class Resolution:
    """Each node's component id, each edge's state (with why), the blocked identifiers."""

    components: dict[str, str] = field(default_factory=dict)
    states: dict[tuple[str, str], tuple[EdgeState, str | None]] = field(default_factory=dict)
    blocked: dict[str, int] = field(default_factory=dict)  # node -> customers it touches


def blocked_nodes(edges: Iterable[Edge], rules: IdentityRules) -> dict[str, int]:
    """Identifiers (not customer ids) with linked edges to too many customer ids."""
    customers: dict[str, set[str]] = {}
    for e in edges:
        if not e.linked:
            continue
        for node, other in ((e.a, e.b), (e.b, e.a)):
            if not node.startswith(CUSTOMER) and other.startswith(CUSTOMER):
                customers.setdefault(node, set()).add(other)
    limit = rules.max_customers_per_identifier
    return {node: len(c) for node, c in customers.items() if len(c) > limit}


def resolve(
    nodes: Iterable[str],
    edges: Iterable[Edge],
    rules: IdentityRules = DEFAULT_RULES,
    *,
    blocked: Mapping[str, int] | None = None,
) -> Resolution:
    """Resolve `nodes` (with every edge among them) into components; see the module's
    docstring for the rules. `blocked`: when the caller resolves part of a graph, the
    blocked identifiers as judged on the whole of it."""
    edges = sorted(edges, key=lambda e: e.order)
    blocked = dict(blocked_nodes(edges, rules) if blocked is None else blocked)
    parent = {n: n for n in nodes}
    for e in edges:
        parent.setdefault(e.a, e.a)
        parent.setdefault(e.b, e.b)
    customers = {n: ({c} if (c := customer_id_of(n)) else set()) for n in parent}

    def root(n: str) -> str:
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    result = Resolution(blocked={n: c for n, c in blocked.items() if n in parent})
    for e in edges:
        key = (e.a, e.b)
        if not e.linked:
            result.states[key] = (EdgeState.UNLINKED, e.unlink_reason)
            continue
        if e.a in blocked or e.b in blocked:
            shared = e.a if e.a in blocked else e.b
            why = f"{shared} is shared by {blocked[shared]} customers"
            result.states[key] = (EdgeState.BLOCKED, why)
            continue
        ra, rb = root(e.a), root(e.b)
        if ra == rb:
            result.states[key] = (EdgeState.ACTIVE, None)
            continue
        if customers[ra] and customers[rb] and customers[ra] != customers[rb] and not e.forced:
            mine, theirs = sorted(customers[ra])[0], sorted(customers[rb])[0]
            why = f"would join customer {mine} and customer {theirs}"
            result.states[key] = (EdgeState.REFUSED, why)
            continue
        parent[rb] = ra
        customers[ra] |= customers.pop(rb)
        result.states[key] = (EdgeState.ACTIVE, None)
    members: dict[str, list[str]] = {}
    for n in parent:
        members.setdefault(root(n), []).append(n)
    for group in members.values():
        cid = component_id(group)
        for n in group:
            result.components[n] = cid
    return result
