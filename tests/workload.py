"""A mixed workload for projection tests: several channels, late events, duplicates."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from schemas import CustomerRef, Envelope
from schemas.payloads.call_center import CallCenterCall
from schemas.payloads.commerce import Purchased, Refunded
from schemas.payloads.email import EmailOpened, EmailSent
from schemas.payloads.profile import ConsentChanged, ProfileUpdated
from schemas.payloads.social import SocialCommented

START = datetime(2025, 1, 1, tzinfo=UTC)


def mixed_events(customers: int, per_customer: int, *, seed: int) -> list[Envelope]:
    """Events in publish order: per customer mostly in time order, ~10% arriving late."""
    rng = random.Random(seed)
    ns = uuid.UUID(int=seed + 1000)
    events: list[Envelope] = []
    for c in range(customers):
        who = CustomerRef(customer_id=f"cust-{c:05d}", email=f"c{c}@example.com")
        times = sorted(
            START + timedelta(minutes=rng.randrange(0, 500_000)) for _ in range(per_customer)
        )
        mine = []
        for n, at in enumerate(times):
            kind = rng.random()
            if kind < 0.25:
                payload = CallCenterCall(
                    direction="inbound",
                    duration_seconds=rng.randrange(20, 900),
                    agent=rng.choice(["An", "Binh"]),
                    outcome="resolved",
                    topic=rng.choice(["billing", "delivery"]),
                )
            elif kind < 0.45:
                payload = EmailSent(message_id=f"m-{c}-{n}", subject="Autumn offers")
            elif kind < 0.55:
                payload = EmailOpened(message_id=f"m-{c}-{n}")
            elif kind < 0.75:
                amount = Decimal(rng.randrange(500, 50_000)) / 100
                payload = Purchased(
                    order_id=f"o-{c}-{n}",
                    amount=amount,
                    currency="EUR",
                    margin=(amount * Decimal("0.3")).quantize(Decimal("0.01")),
                )
            elif kind < 0.8:
                payload = Refunded(order_id=f"o-{c}-{n}", amount=Decimal("5.00"), currency="EUR")
            elif kind < 0.9:
                payload = ProfileUpdated(
                    traits={
                        "city": rng.choice(["Hanoi", "Hue", "Da Nang"]),
                        "tier": rng.choice(["gold", "silver"]),
                    }
                )
            elif kind < 0.95:
                payload = ConsentChanged(contact_channel="email", opted_in=rng.random() < 0.5)
            else:
                payload = SocialCommented(
                    platform="facebook", text="love it", sentiment=rng.uniform(-1, 1)
                )
            mine.append(
                Envelope.new(
                    payload,
                    customer=who,
                    occurred_at=at,
                    received_at=at,
                    event_id=uuid.uuid5(ns, f"{c}-{n}"),
                )
            )
        # Late arrivals: some events are published after later ones.
        for _ in range(max(1, per_customer // 10)):
            i = rng.randrange(len(mine))
            mine.append(mine.pop(i))
        events.extend(mine)
    return events
