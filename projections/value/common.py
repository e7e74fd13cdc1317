"""What the value modules share: the year, currency checks, ranking bases."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol, TypeVar

from projections.errors import MixedCurrencies, ScoringInputError
from schemas import Envelope

DAYS_PER_YEAR = 365.25
YEAR = timedelta(days=DAYS_PER_YEAR)
ZERO = Decimal(0)


def require_one_base(what: str, members: list[tuple[str, datetime]]) -> None:
    """A ranking compares customers: each once, all measured at the same as_of."""
    counts = Counter(customer_id for customer_id, _ in members)
    repeated = sorted(customer_id for customer_id, n in counts.items() if n > 1)
    if repeated:
        raise ScoringInputError(f"customer_id repeated in the {what} base: {repeated[:5]}")
    as_ofs = sorted({as_of for _, as_of in members})
    if len(as_ofs) > 1:
        raise ScoringInputError(
            f"{what} inputs measured at different as_of times: "
            f"{', '.join(t.isoformat() for t in as_ofs[:3])}"
        )


class Priced(Protocol):
    @property
    def currency(self) -> str: ...


def single_currency(what: str, items: Iterable[Priced]) -> str | None:
    currencies = {item.currency for item in items}
    if len(currencies) > 1:
        raise MixedCurrencies(what, currencies)
    return next(iter(currencies), None)


P = TypeVar("P")


def payload_of(event: Envelope, model: type[P]) -> P:
    if not isinstance(event.payload, model):
        raise ScoringInputError(
            f"event {event.event_id} is a {event.type} event, not {model.__name__}"
        )
    return event.payload
