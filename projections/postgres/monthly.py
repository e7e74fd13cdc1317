"""A customer's activity per month, counted by PostgreSQL: touchpoints by channel and type,
purchases and their value by currency. For charts: a customer with 10,000 events is two
GROUP BY queries over its keys' index ranges, a few dozen rows back, not 10,000.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import sqlalchemy as sa

from projections.postgres.identity import Customer
from projections.postgres.tables import ANALYST_SCHEMA


@dataclass(frozen=True)
class MonthlyTouchpoints:
    month: date
    channel: str
    type: str
    events: int


@dataclass(frozen=True)
class MonthlyPurchases:
    month: date
    currency: str
    purchases: int
    refunds: int
    net_amount: Decimal  # purchases less refunds


@dataclass(frozen=True)
class MonthlyActivity:
    touchpoints: list[MonthlyTouchpoints]
    purchases: list[MonthlyPurchases]

    def months(self) -> list[date]:
        """Every month from the first active one to the last, gaps included."""
        seen = [t.month for t in self.touchpoints] + [p.month for p in self.purchases]
        return month_range(min(seen), max(seen)) if seen else []

    def by_channel(self) -> dict[str, list[int]]:
        """Touchpoints per channel, one count per month of `months()`."""
        index = {m: i for i, m in enumerate(self.months())}
        series: dict[str, list[int]] = defaultdict(lambda: [0] * len(index))
        for t in self.touchpoints:
            series[t.channel][index[t.month]] += t.events
        return dict(sorted(series.items()))

    def types(self) -> list[str]:
        """The event types the customer has, for a filter."""
        return sorted({t.type for t in self.touchpoints})

    def main_currency(self) -> str | None:
        """The currency most purchases were made in (None: no purchases)."""
        counts: dict[str, int] = defaultdict(int)
        for p in self.purchases:
            counts[p.currency] += p.purchases
        return max(sorted(counts), key=lambda c: counts[c]) if counts else None

    def purchase_series(self, currency: str) -> tuple[list[int], list[Decimal]]:
        """Purchases and net value in `currency`, one of each per month of `months()`."""
        index = {m: i for i, m in enumerate(self.months())}
        counts, values = [0] * len(index), [Decimal(0)] * len(index)
        for p in self.purchases:
            if p.currency == currency:
                counts[index[p.month]] += p.purchases
                values[index[p.month]] += p.net_amount
        return counts, values


def month_range(first: date, last: date) -> list[date]:
    months, at = [], first.replace(day=1)
    while at <= last:
        months.append(at)
        at = date(at.year + at.month // 12, at.month % 12 + 1, 1)
    return months


def customer_activity(conn: sa.Connection, who: Customer) -> MonthlyActivity:
    """The customer's touchpoints and purchases per calendar month (UTC)."""
    touchpoints = conn.execute(
        sa.text(
            f"""SELECT date_trunc('month', occurred_at AT TIME ZONE 'UTC')::date AS month,
                       channel, type, count(*) AS events
                  FROM {ANALYST_SCHEMA}.timeline
                 WHERE key = ANY(:keys)
                 GROUP BY 1, 2, 3"""
        ),
        {"keys": who.keys},
    )
    purchases = conn.execute(
        sa.text(
            f"""SELECT date_trunc('month', occurred_at AT TIME ZONE 'UTC')::date AS month,
                       currency,
                       count(*) FILTER (WHERE kind = 'purchase') AS purchases,
                       count(*) FILTER (WHERE kind = 'refund') AS refunds,
                       sum(amount) AS net_amount  -- refunds are stored negative
                  FROM {ANALYST_SCHEMA}.purchases
                 WHERE key = ANY(:keys)
                 GROUP BY 1, 2"""
        ),
        {"keys": who.keys},
    )
    return MonthlyActivity(
        sorted((MonthlyTouchpoints(*row) for row in touchpoints), key=lambda t: t.month),
        sorted((MonthlyPurchases(*row) for row in purchases), key=lambda p: p.month),
    )
