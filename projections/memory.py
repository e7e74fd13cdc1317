"""The projection store in memory: the same contract as PostgreSQL, no server.

Tests of the worker's pipeline and of the folds' exactly-once effect run against this twin;
the contract tests run the same cases against both (tests/unit/test_store_contract.py and
tests/integration/test_store_contract.py). It lives in one process: a replay into it runs
with one job.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import astuple, dataclass, field
from datetime import UTC, datetime
from typing import Any

from projections import profile as profile_projector
from projections.channel_stats import DayKey, day_key
from projections.errors import NoActiveVersion, PositionGap, ProjectionError, RecordRefused
from projections.identity import (
    DEFAULT_RULES,
    Edge,
    Evidence,
    IdentityRules,
    Resolution,
    evidence_of,
    fold_evidence,
    normalize,
    resolve,
)
from projections.profile import Profile
from projections.purchases import purchase_row
from projections.score_state import ScoreState
from projections.store import (
    ERASURE_TYPE,
    BatchResult,
    Difference,
    ErasedRecord,
    LiveSnapshot,
    PositionedEvent,
    ProjectionStore,
    Version,
    advance,
    find_gaps,
    projected_summary,
    version_name,
)
from projections.timeline import TimelineEntry, timeline_entry
from schemas import Envelope

PartitionKey = tuple[str, int]


@dataclass
class InMemoryStore:
    """One projection version held in dicts. A batch is all or nothing, as a transaction."""

    timeline: dict[Any, TimelineEntry] = field(default_factory=dict)
    profiles: dict[str, Profile] = field(default_factory=dict)
    purchases: dict[Any, tuple[Any, ...]] = field(default_factory=dict)
    channel_daily: Counter[DayKey] = field(default_factory=Counter)
    stored_positions: dict[PartitionKey, int] = field(default_factory=dict)
    identity_rules: IdentityRules = DEFAULT_RULES
    identity_keys: dict[str, str] = field(default_factory=dict)  # key -> node
    identity_edges: dict[tuple[str, str], Edge] = field(default_factory=dict)
    resolution: Resolution = field(default_factory=Resolution)
    score_state: dict[str, ScoreState] = field(default_factory=dict)  # key -> state
    erased_events: set[Any] = field(default_factory=set)

    def positions(self, keys: set[PartitionKey]) -> dict[PartitionKey, int]:
        return {k: self.stored_positions[k] for k in keys if k in self.stored_positions}

    def close(self) -> None:
        pass

    def tables(self) -> dict[str, dict[Any, Any]]:
        """Every read-model table by its key, as the PostgreSQL version would hold it."""
        r = self.resolution
        return {
            "timeline": dict(self.timeline),
            "customers": dict(self.profiles),
            "purchases": dict(self.purchases),
            "channel_daily": dict(self.channel_daily),
            "identity_nodes": {n: (c, r.blocked.get(n)) for n, c in r.components.items()},
            "identity_keys": dict(self.identity_keys),
            "identity_edges": {k: (e, r.states.get(k)) for k, e in self.identity_edges.items()},
            "score_state": {k: state.to_json() for k, state in self.score_state.items()},
        }

    def customer_of(self, identifier: str) -> str | None:
        """The customer an identifier ('kind:value') resolves to."""
        return self.resolution.components.get(normalize(identifier, self.identity_rules))

    def keys_of(self, customer_id: str) -> list[str]:
        components = self.resolution.components
        return sorted(k for k, n in self.identity_keys.items() if components.get(n) == customer_id)

    def apply_batch(
        self,
        batch: Sequence[PositionedEvent],
        *,
        log_starts: Mapping[PartitionKey, int] | None = None,
    ) -> BatchResult:
        stored = self.stored_positions
        fresh = [r for r in batch if r.offset >= stored.get((r.topic, r.partition), 0)]
        if gaps := find_gaps(fresh, stored, log_starts or {}):
            raise PositionGap(gaps)
        events = [r.event for r in fresh if r.event is not None]
        erased = [r.erased for r in fresh if r.erased is not None]
        erasures = [e.customer.partition_key for e in events if e.type == ERASURE_TYPE]
        erased += [ErasedRecord.of(e) for e in events if e.type == ERASURE_TYPE]
        new: dict[Any, tuple[PositionedEvent, Envelope]] = {}
        for r in fresh:
            e = r.event
            first = self.timeline.get(e.event_id) if e is not None else None
            if e is not None and first and first.source and first.source != e.source.system:
                refused = RecordRefused(
                    e.event_id,
                    "dedupe",
                    ValueError(
                        f"event_id {e.event_id} was already used by source {first.source!r}; "
                        f"source {e.source.system!r} cannot reuse it (give the event its own id)"
                    ),
                )
                refused.position = (r.topic, r.partition, r.offset)
                raise refused
            if (
                e is not None
                and e.type != ERASURE_TYPE
                and e.event_id not in self.timeline
                and e.event_id not in self.erased_events
            ):
                new.setdefault(e.event_id, (r, e))
        # Compute everything first, then commit it at once: a refusal changes nothing.
        timeline: dict[Any, TimelineEntry] = {}
        profiles: dict[str, Profile] = {}
        purchases: dict[Any, tuple[Any, ...]] = {}
        days: Counter[DayKey] = Counter()
        for record, event in new.values():
            try:
                timeline[event.event_id] = timeline_entry(event)
                customer = event.customer.partition_key
                profiles[customer] = profile_projector.apply(
                    profiles.get(customer, self.profiles.get(customer)), event
                )
                if (row := purchase_row(event)) is not None:
                    purchases[event.event_id] = astuple(row)
                days[day_key(event)] += 1
            except Exception as exc:
                refused = RecordRefused(event.event_id, "fold", exc)
                refused.position = (record.topic, record.partition, record.offset)
                raise refused from exc
        evidence = [evidence_of(event, self.identity_rules) for _, event in new.values()]
        self.timeline.update(timeline)
        self.profiles.update(profiles)
        self._fold_identity(evidence)
        self.purchases.update(purchases)
        self.channel_daily.update(days)
        for entry in timeline.values():
            if entry.score_inputs:
                state = self.score_state.setdefault(entry.customer_id, ScoreState())
                state.fold(str(entry.event_id), entry.occurred_at, entry.score_inputs)
        counted = 0
        for gone in erased:
            if gone.event_id not in self.timeline and gone.event_id not in self.erased_events:
                self.erased_events.add(gone.event_id)
                day = (gone.occurred_at.astimezone(UTC).date(), gone.channel, gone.type)
                self.channel_daily[day] += 1
                counted += 1
        for customer_id in erasures:
            self.scrub(customer_id)
        advance(stored, fresh)
        carried = sum(1 for r in fresh if r.event is not None or r.erased is not None)
        types, newest = projected_summary([event for _, event in new.values()])
        return BatchResult(
            len(new) + counted,
            carried - len(new) - counted,
            len(batch) - len(fresh),
            types,
            newest,
        )

    def scrub(self, customer_id: str) -> None:
        """Remove every row of `customer_id` (projections.postgres.erasure, in memory)."""
        r = self.resolution
        nodes = {n for n, c in r.components.items() if c == customer_id and n not in r.blocked}
        keys = {k for k, n in self.identity_keys.items() if n in nodes} | {customer_id}
        for event_id, entry in list(self.timeline.items()):
            if entry.customer_id in keys:
                del self.timeline[event_id]
                self.erased_events.add(event_id)
        for key in keys:
            self.profiles.pop(key, None)
            self.score_state.pop(key, None)
        self.purchases = {k: row for k, row in self.purchases.items() if row[1] not in keys}
        self.identity_keys = {k: n for k, n in self.identity_keys.items() if k not in keys}
        self.identity_edges = {
            pair: e for pair, e in self.identity_edges.items() if not nodes.intersection(pair)
        }
        remaining = set(r.components) - nodes
        self.resolution = resolve(remaining, self.identity_edges.values(), self.identity_rules)

    def _fold_identity(self, evidence: list[Evidence]) -> None:
        for item in evidence:
            self.identity_keys.setdefault(item.key, item.key_node)
        self.identity_edges.update(fold_evidence(self.identity_edges, evidence))
        nodes = set(self.resolution.components) | {n for e in evidence for n in e.nodes}
        # The whole graph, every time: the twin is for tests, where graphs are small.
        self.resolution = resolve(nodes, self.identity_edges.values(), self.identity_rules)


@dataclass
class _Entry:
    store: InMemoryStore
    status: str
    created_at: datetime
    activated_at: datetime | None = None


@dataclass
class _FollowingActive:
    """Batches go to whichever version is active when they are applied."""

    versions: InMemoryVersions

    def positions(self, keys: set[PartitionKey]) -> dict[PartitionKey, int]:
        return self.versions.active_store().positions(keys)

    def apply_batch(
        self,
        batch: Sequence[PositionedEvent],
        *,
        log_starts: Mapping[PartitionKey, int] | None = None,
    ) -> BatchResult:
        return self.versions.active_store().apply_batch(batch, log_starts=log_starts)

    def close(self) -> None:
        pass


@dataclass
class InMemoryVersions:
    """Versions of in-memory stores, one of them active."""

    identity_rules: IdentityRules = DEFAULT_RULES
    _entries: dict[str, _Entry] = field(default_factory=dict)
    _active: str | None = None

    def store(self, name: str | None = None) -> ProjectionStore:
        if name is None:
            return _FollowingActive(self)
        return self._entry(name).store

    def store_factory(self, name: str) -> Callable[[], ProjectionStore]:
        raise ProjectionError("an in-memory store lives in one process: replay with jobs=1")

    def active_store(self) -> InMemoryStore:
        if self._active is None:
            raise NoActiveVersion("no active in-memory version")
        return self._entries[self._active].store

    def ensure_active(self) -> str:
        if self._active is None:
            self.prepare(version_name(1))
        assert self._active is not None
        return self._active

    def versions(self) -> list[Version]:
        return [
            Version(
                name,
                e.status,
                name == self._active,
                e.created_at,
                e.activated_at,
                sum(e.store.stored_positions.values()),
            )
            for name, e in self._entries.items()
        ]

    def prepare(self, name: str, *, bulk: bool = False) -> None:
        store = InMemoryStore(identity_rules=self.identity_rules)
        self._entries.setdefault(name, _Entry(store, "building", datetime.now(UTC)))
        if self._active is None:
            self.activate(name)

    def finish(self, name: str, *, scores_as_of: datetime | None, params: Any) -> None:
        self.set_status(name, "ready")

    def set_status(self, name: str, status: str) -> None:
        self._entry(name).status = status

    def activate(self, name: str) -> str | None:
        entry, previous = self._entry(name), self._active
        if previous is not None and previous != name:
            self._entries[previous].status = "retired"
        entry.status, entry.activated_at, self._active = "active", datetime.now(UTC), name
        return previous

    def activate_if_complete(self, name: str, topic: str) -> tuple[bool, str | None]:
        live = self._active
        if live == name:
            return True, None
        if live is not None:
            mine, theirs = self.positions_of(name, topic), self.positions_of(live, topic)
            if any(mine.get(p, 0) < offset for p, offset in theirs.items()):
                return False, live
        return True, self.activate(name)

    def drop(self, name: str) -> None:
        if name == self._active:
            raise ProjectionError(f"{name} is active; activate another version first")
        self._entries.pop(name, None)

    def positions_of(self, name: str, topic: str) -> dict[int, int]:
        stored = self._entry(name).store.stored_positions
        return {p: o for (t, p), o in stored.items() if t == topic}

    def freeze_live(self, topic: str) -> LiveSnapshot:
        if self._active is None:
            raise ProjectionError("there is no live version to compare with")
        tables = copy.deepcopy(self.active_store().tables())
        return LiveSnapshot(self._active, self.positions_of(self._active, topic), tables, None)

    def differences(self, live: LiveSnapshot, name: str) -> tuple[dict[str, int], list[Difference]]:
        mine = self._entry(name).store.tables()
        theirs: dict[str, dict[Any, Any]] = live.fingerprint
        found = []
        for table, rows in mine.items():
            other = theirs[table]
            for key in sorted(rows.keys() | other.keys(), key=str):
                if rows.get(key) != other.get(key):
                    diff = Difference(table, None)
                    if key not in rows:
                        diff.only_in_live.append({"key": key, "row": other[key]})
                    elif key not in other:
                        diff.only_in_rebuild.append({"key": key, "row": rows[key]})
                    else:
                        diff.changed[str(key)] = {"row": (other[key], rows[key])}
                    found.append(diff)
        return {table: len(rows) for table, rows in mine.items()}, found

    def _entry(self, name: str) -> _Entry:
        try:
            return self._entries[name]
        except KeyError:
            raise ProjectionError(f"no version {name}") from None
