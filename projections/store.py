"""The projection store contract: what the worker and the replay need of a read model.

A store holds projection versions. Each version is a complete read model (timeline,
profiles, purchases, channel counters, scores) with the per-partition positions that make
redelivery harmless; one version is active, and the analysts' views show it. The worker
writes to the active version (or to one it is pinned to); a replay builds a new version
beside it, which a swap then activates.

Implementations: `projections.postgres` (the product) and `projections.memory` (the twin
the unit tests run the pipeline against). `tests/unit/test_store_contract.py` and
`tests/integration/test_store_contract.py` run one suite of cases against both.

Batch semantics, every implementation: `apply_batch` stores a batch all or nothing. It
skips records below the partition's stored position (redelivered), refuses a batch whose
first new record lies past it (`PositionGap`), inserts each event once by event_id (a
duplicate send counts nothing), folds only the new events, and advances the positions; an
event the projection code refuses raises `RecordRefused` naming its record, and a record
whose event is None (parked) only advances the position. A record of an erased customer
(`erased`), or an event the privacy gate finds suppressed, is counted in the channel
counters once per event id and folds nothing else; a `privacy.erased` event removes every
row of the customer it names (docs/privacy.md).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from schemas import Envelope

PartitionKey = tuple[str, int]  # (topic, partition)

PROJECTION = "core"


def version_name(number: int) -> str:
    """The name (PostgreSQL schema) of a projection version: core_v1, core_v2, …"""
    return f"{PROJECTION}_v{number}"


def version_number(name: str) -> int | None:
    prefix = f"{PROJECTION}_v"
    tail = name.removeprefix(prefix)
    return int(tail) if name.startswith(prefix) and tail.isdigit() else None


@dataclass(frozen=True)
class ErasedRecord:
    """What is still known of an event of an erased customer: enough to count it in the
    aggregates that hold no personal data (channel counters), once per event id."""

    event_id: UUID
    occurred_at: datetime
    channel: str
    type: str

    @classmethod
    def of(cls, event: Envelope) -> ErasedRecord:
        return cls(event.event_id, event.occurred_at, event.channel.value, event.type)


ERASURE_TYPE = "privacy.erased"
"""The control event after which a projection holds nothing of the customer it names."""


@dataclass(frozen=True)
class PositionedEvent:
    """A record's place in the log, and its event (None when it was dead-lettered, or
    when its customer was erased: then `erased` says what may still be counted)."""

    topic: str
    partition: int
    offset: int
    event: Envelope | None
    erased: ErasedRecord | None = None


@dataclass(frozen=True)
class BatchResult:
    projected: int  # new events folded into the projections
    duplicates: int  # events whose event_id was already projected
    redelivered: int  # records below the stored position: already done
    # For the worker's metrics: the new events by type (events of erased customers, counted
    # in `projected`, are not: their type is all that is left of them) and the latest
    # arrival (received_at) among them.
    projected_types: Mapping[str, int] = field(default_factory=dict)
    newest_received: datetime | None = None


def projected_summary(events: Sequence[Envelope]) -> tuple[dict[str, int], datetime | None]:
    """What BatchResult says of a batch's new events: their types, and the latest arrival."""
    types = Counter(e.type for e in events)
    newest = max((e.received_at for e in events if e.received_at is not None), default=None)
    return dict(types), newest


@dataclass(frozen=True)
class Version:
    name: str
    status: str  # building, ready, verified, differs, active, retired
    active: bool
    created_at: datetime | None = None
    activated_at: datetime | None = None
    records: int | None = None  # records projected (sum of positions); None: no tables

    @property
    def number(self) -> int | None:
        return version_number(self.name)


@dataclass(frozen=True)
class LiveSnapshot:
    """The active version at one moment: its positions and what the comparison needs."""

    name: str
    positions: dict[int, int]  # partition -> next offset, of one topic
    fingerprint: Any  # implementation-defined; only `differences` reads it
    scores_as_of: datetime | None


@dataclass
class Difference:
    """How two versions differ in one table, for one customer (or as a whole)."""

    table: str
    customer_id: str | None
    only_in_live: list[dict[str, Any]] = field(default_factory=list)
    only_in_rebuild: list[dict[str, Any]] = field(default_factory=list)
    # Rows in both with the same key: key -> {column: (live value, rebuilt value)}
    changed: dict[str, dict[str, tuple[Any, Any]]] = field(default_factory=dict)


class ProjectionStore(Protocol):
    """Where batches go: one version, or whichever version is active when a batch commits."""

    def positions(self, keys: set[PartitionKey]) -> dict[PartitionKey, int]:
        """The stored next offset of each partition that has one (no lock)."""
        ...

    def apply_batch(
        self,
        batch: Sequence[PositionedEvent],
        *,
        log_starts: Mapping[PartitionKey, int] | None = None,
    ) -> BatchResult:
        """Store `batch` all or nothing (see the module docstring). `log_starts`: where
        each partition's log now starts, when retention deleted older records."""
        ...

    def close(self) -> None:
        """Release connections; called once, when the worker or a replay process ends."""
        ...


class ProjectionVersions(Protocol):
    """The versions a store holds, and the steps of building and swapping one."""

    def store(self, name: str | None = None) -> ProjectionStore:
        """The batch store of version `name`, or (None) of whichever version is active."""
        ...

    def store_factory(self, name: str) -> Callable[[], ProjectionStore]:
        """A picklable way to open `store(name)` in another process (parallel replay)."""
        ...

    def ensure_active(self) -> str:
        """Create and activate the first version if there is none; the active one's name."""
        ...

    def versions(self) -> list[Version]: ...

    def prepare(self, name: str, *, bulk: bool = False) -> None:
        """Create version `name` unless it exists (registered as building; the first
        version is activated); bulk: what a bulk load would slow down waits for finish."""
        ...

    def finish(self, name: str, *, scores_as_of: datetime | None, params: Any) -> None:
        """Build what a bulk load deferred, compute scores as of a time, mark it ready."""
        ...

    def set_status(self, name: str, status: str) -> None: ...

    def activate(self, name: str) -> str | None:
        """Make `name` the active version now; the previously active one's name."""
        ...

    def activate_if_complete(self, name: str, topic: str) -> tuple[bool, str | None]:
        """In one step that holds off batches: activate `name` if it has every record the
        active version has. (activated, previously active name)."""
        ...

    def drop(self, name: str) -> None: ...

    def positions_of(self, name: str, topic: str) -> dict[int, int]: ...

    def freeze_live(self, topic: str) -> LiveSnapshot: ...

    def differences(self, live: LiveSnapshot, name: str) -> tuple[dict[str, int], list[Difference]]:
        """(rows per table of `name`, every difference between `live` and it)."""
        ...


class Positioned(Protocol):
    """Anything with a place in the log: a PositionedEvent, a record as read."""

    @property
    def topic(self) -> str: ...

    @property
    def partition(self) -> int: ...

    @property
    def offset(self) -> int: ...


def next_offsets(records: Iterable[Positioned]) -> dict[PartitionKey, int]:
    """Each partition's next offset after `records`: the position they take it to."""
    found: dict[PartitionKey, int] = {}
    for r in records:
        key = (r.topic, r.partition)
        if r.offset + 1 > found.get(key, 0):
            found[key] = r.offset + 1
    return found


def advance(positions: dict[PartitionKey, int], records: Iterable[Positioned]) -> None:
    """Move `positions` past `records`, never back."""
    for key, offset in next_offsets(records).items():
        if offset > positions.get(key, 0):
            positions[key] = offset


def find_gaps(
    records: Iterable[Positioned],
    stored: Mapping[PartitionKey, int],
    log_starts: Mapping[PartitionKey, int],
) -> dict[PartitionKey, tuple[int, int]]:
    """Partitions whose records do not continue exactly from their stored position: the
    first record past it, per partition, as (stored next offset, that record's offset).

    A partition with no stored position starts at 0, or at its log start when retention
    deleted the records before it. Records below the stored position are redelivered and
    are not looked at."""
    expected: dict[PartitionKey, int] = {}
    gaps: dict[PartitionKey, tuple[int, int]] = {}
    for r in records:
        key = (r.topic, r.partition)
        if key in gaps:
            continue
        at = expected.get(key)
        if at is None:
            at = stored.get(key, 0)
            at = max(at, log_starts.get(key, at))
        if r.offset < at:
            continue  # redelivered within the batch
        if r.offset > at:
            gaps[key] = (stored.get(key, 0), r.offset)
            continue
        expected[key] = at + 1
    return gaps
