"""The benchmark's workload: simulated customers on every channel plus one heavy customer,
generated once and encoded once (the bytes the SDK would send), then reused by every figure.
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

from producers import EncodedEvent, Publisher, PublisherConfig
from producers.simulator import simulate
from schemas import CustomerRef, Envelope
from schemas.payloads.profile import IdentityLinked, IdentityUnlinked

HEAVY_CUSTOMER = "cust-heavy"
HEAVY_EVENTS = 10_000  # the timeline query's customer (fewer in workloads under 100k events)
_EVENTS_PER_STORY = 2.5  # the simulator's average, to spread the heavy customer's stories


class Workload:
    """Events in publish order, and the key and bytes each travels as."""

    def __init__(self, events: list[Envelope], customers: int, heavy_events: int) -> None:
        self.events = events
        self.customers = customers
        self.heavy_events = heavy_events
        stamper = Publisher.from_config(
            PublisherConfig("127.0.0.1:1", "unused", connect_eagerly=False)
        )
        try:
            self.encoded: list[EncodedEvent] = [stamper.encode(e) for e in events]
        finally:
            stamper.close(timeout=1)
        self.count = len(events)
        self.bytes = sum(len(e.value) for e in self.encoded)
        self.first_at = min(e.occurred_at for e in events)
        self.last_at = max(e.occurred_at for e in events)
        self.truth = true_identities(events)

    @property
    def as_of(self) -> datetime:
        """Just after the last event: scores are asked as of then."""
        return self.last_at + timedelta(seconds=1)

    @property
    def historic_as_of(self) -> datetime:
        """Half-way through the events: scores as of then read the customers' ledgers."""
        return self.first_at + (self.last_at - self.first_at) / 2

    def release(self) -> None:
        """Drop the events once every figure that sends them has run (gigabytes at 1M)."""
        self.events = []
        self.encoded = []

    def describe(self) -> dict[str, object]:
        return {
            "events": self.count,
            "customers": self.customers,
            "heavy_customer": HEAVY_CUSTOMER,
            "heavy_customer_events": self.heavy_events,
            "heavy_customer_keys": HEAVY_IDENTIFIERS,
            "true_identities": self.truth,
            "mean_event_bytes": round(self.bytes / max(self.count, 1)),
            "event_time_span": [self.first_at.isoformat(), self.last_at.isoformat()],
        }


def true_identities(events: list[Envelope]) -> dict[str, int]:
    """Who the events are about, from what they state, independently of the identity
    graph's code: identifiers sent together, or linked by identity.linked, are one person
    unless identity.unlinked parted them (the simulator unlinks only after linking). A
    group holding a customer id is a customer; any other is a visitor who never identified.
    The graph should resolve the workload to exactly these numbers (the simulator never
    joins two customer ids, so no guard rail applies)."""
    pairs: set[tuple[str, str]] = set()
    parted: set[tuple[str, str]] = set()
    nodes: set[str] = set()
    for event in events:
        ids = event.customer.identifier_tuple
        nodes.update(ids)
        pairs.update(_pair(a, b) for a, b in itertools.pairwise(ids))
        payload = event.payload
        if isinstance(payload, IdentityLinked):
            nodes.update((payload.identifier, payload.linked_to))
            pairs.add(_pair(payload.identifier, payload.linked_to))
        elif isinstance(payload, IdentityUnlinked):
            parted.add(_pair(payload.identifier, payload.unlinked_from))
    parent = {n: n for n in nodes}

    def root(n: str) -> str:
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    for a, b in pairs - parted:
        parent[root(a)] = root(b)
    groups: dict[str, bool] = {}
    for n in nodes:
        r = root(n)
        groups[r] = groups.get(r, False) or n.startswith("customer:")
    customers = sum(groups.values())
    return {"customers": customers, "visitors": len(groups) - customers}


def _pair(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a < b else (b, a)


def build_workload(events: int, customers: int, *, seed: int = 7) -> Workload:
    """`events` simulated events over `customers` customers, one of them heavy."""
    heavy = min(HEAVY_EVENTS, events // 10)
    population = list(itertools.islice(simulate(customers, seed=seed), events - heavy))
    if population:
        span = max(e.occurred_at for e in population) - min(e.occurred_at for e in population)
        days = max(span.total_seconds() / 86_400, 1.0)
    else:
        days = 1.0
    return Workload(interleave(population, heavy_customer(heavy, days, seed)), customers, heavy)


HEAVY_IDENTIFIERS = 20  # the heavy customer is known by this many keys


def heavy_customer(count: int, days: float, seed: int) -> list[Envelope]:
    """`count` events of one very active customer, spread over about `days` days and filed
    under HEAVY_IDENTIFIERS keys: its customer id, and devices, e-mail addresses and phone
    numbers that first appear beside it, then alone."""
    stories_per_day = max(count / _EVENTS_PER_STORY / days, 0.5)
    one = simulate(1, seed=seed + 1, stories_per_customer_per_day=stories_per_day)
    refs = [CustomerRef(customer_id=HEAVY_CUSTOMER)] + [
        CustomerRef(anonymous_id=f"heavy-device-{n}")
        if n % 3 == 0
        else CustomerRef(email=f"heavy.{n}@example.com")
        if n % 3 == 1
        else CustomerRef(phone=f"+84 91 000 {n:04d}")
        for n in range(1, HEAVY_IDENTIFIERS)
    ]
    seen: set[int] = set()
    events = []
    for i, e in enumerate(itertools.islice(one, count)):
        slot = i % len(refs)
        ref = refs[slot]
        if slot not in seen:  # first seen beside the customer id: that joins them
            seen.add(slot)
            ref = CustomerRef.model_validate(
                {**ref.model_dump(exclude_defaults=True), "customer_id": HEAVY_CUSTOMER}
            )
        events.append(
            Envelope.new(
                e.payload,
                customer=ref,
                occurred_at=e.occurred_at,
                source=e.source,
                event_id=e.event_id,
                campaign_id=e.campaign_id,
                correlation_id=e.correlation_id,
            )
        )
    return events


def interleave(main: list[Envelope], extra: list[Envelope]) -> list[Envelope]:
    """`extra` spread evenly through `main`, both orders kept."""
    if not extra:
        return main
    step = len(main) / len(extra)
    out: list[Envelope] = []
    pending = iter(extra)
    inserted = 0
    for n, event in enumerate(main):
        while inserted < len(extra) and inserted * step <= n:
            out.append(next(pending))
            inserted += 1
        out.append(event)
    out.extend(pending)
    return out


def fresh_events(count: int, customers: int, *, seed: int) -> list[Envelope]:
    """New events (new ids) for the same customers: what the freshness figure publishes."""
    return list(itertools.islice(simulate(customers, seed=seed + 2), count))
