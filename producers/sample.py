"""A realistic burst of call-center calls for a handful of customers, deterministic per seed."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from schemas import CustomerRef, Envelope, Source
from schemas.payloads.call_center import CallCenterCall, CallDirection, CallOutcome

_TOPICS = {
    "billing": ["invoice higher than expected", "asked for itemised bill", "payment plan agreed"],
    "delivery": ["parcel late", "wrong address corrected", "delivery slot rebooked"],
    "upgrade": ["interested in premium plan", "compared plans", "upgrade confirmed"],
    "cancellation": ["considering leaving", "retention offer accepted", "cancellation filed"],
    "technical": ["router reset walked through", "app login fixed", "ticket escalated to L2"],
}
_AGENTS = ["Linh Tran", "Minh Nguyen", "Sara Okafor", "Tomás Ruiz", "Hana Kim"]
_QUEUES = {
    "billing": "billing",
    "delivery": "logistics",
    "upgrade": "sales",
    "cancellation": "retention",
    "technical": "support",
}


def sample_calls(
    customers: int = 5, calls: int = 60, *, seed: int = 7, end: datetime | None = None
) -> Iterator[Envelope]:
    """Calls spread over the 180 days before `end`, each with a stable event_id."""
    rng = random.Random(seed)
    end = end or datetime(2026, 11, 1, tzinfo=UTC)
    namespace = uuid.UUID(int=seed)
    for n in range(calls):
        customer = f"cust-{rng.randrange(customers) + 1:03d}"
        topic = rng.choice(list(_TOPICS))
        direction = (
            CallDirection.OUTBOUND
            if topic in ("upgrade", "cancellation") and rng.random() < 0.5
            else CallDirection.INBOUND
        )
        answered = direction is CallDirection.INBOUND or rng.random() < 0.7
        outcome = (
            rng.choice(
                [
                    CallOutcome.RESOLVED,
                    CallOutcome.RESOLVED,
                    CallOutcome.ESCALATED,
                    CallOutcome.CALLBACK_SCHEDULED,
                    CallOutcome.SALE,
                ]
            )
            if answered
            else rng.choice([CallOutcome.NO_ANSWER, CallOutcome.VOICEMAIL])
        )
        yield Envelope.new(
            CallCenterCall(
                direction=direction,
                duration_seconds=int(rng.lognormvariate(5.3, 0.6))
                if answered
                else rng.randint(5, 40),
                agent=rng.choice(_AGENTS),
                queue=_QUEUES[topic],
                outcome=outcome,
                topic=topic,
                notes_summary=rng.choice(_TOPICS[topic]) if answered else None,
            ),
            customer=CustomerRef(customer_id=customer),
            occurred_at=end - timedelta(seconds=rng.randrange(180 * 24 * 3600)),
            source=Source(system="genesys-cloud", channel=CallCenterCall.channel),
            event_id=uuid.uuid5(namespace, f"call-{n}"),
        )
