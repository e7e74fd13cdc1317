"""What a score knew and where it came from: the as-of cut and the lineage of results.

A score "as of" a time sees only what had happened by then, so recomputing it later from
a longer log gives the same answer. Its result names the inputs it used and the events
that fed it, so an analyst can trace any number back to the log.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Protocol, TypeVar
from uuid import UUID

from projections.errors import ScoringInputError


class Timed(Protocol):
    @property
    def occurred_at(self) -> datetime: ...


class Traced(Protocol):
    @property
    def event_id(self) -> UUID | None: ...


T = TypeVar("T", bound=Timed)


def happened_by(items: Iterable[T], as_of: datetime) -> tuple[list[T], int]:
    """The items that happened at or before `as_of`, and how many happened after it."""
    kept: list[T] = []
    later = 0
    for item in items:
        if item.occurred_at <= as_of:
            kept.append(item)
        else:
            later += 1
    return kept, later


def source_event_ids(*groups: Iterable[Traced]) -> tuple[UUID, ...]:
    """The distinct event ids of the items, sorted; items without an id are skipped."""
    found = {item.event_id for group in groups for item in group if item.event_id is not None}
    # By the 128-bit integer, which is how UUIDs order: compared in C, not by UUID.__lt__
    # (a customer with 10,000 events spent 18 ms sorting them per score).
    return tuple(sorted(found, key=_as_int))


def _as_int(event_id: UUID) -> int:
    return event_id.int


def frozen_inputs(**values: object) -> Mapping[str, object]:
    """A read-only record of what a score was computed from."""
    return MappingProxyType(values)


def require_aware(name: str, value: datetime) -> None:
    """Instants must carry a time zone: a naive one is ambiguous across servers."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ScoringInputError(f"{name}={value.isoformat()}: needs a time zone")
