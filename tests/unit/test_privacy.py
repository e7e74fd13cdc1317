"""Sealing, shredding and the erased-event bookkeeping, as pure logic: the crypto, the
producer's and the worker's ends of the wire over a key store twin, and the in-memory
projection store's handling of erased records (the PostgreSQL twin runs in
tests/integration/test_privacy.py)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Collection, Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import UUID

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from privacy.crypto import (
    NONCE_BYTES,
    BoxUnreadable,
    DataKey,
    Nonces,
    open_box,
    seal_box,
    token,
    unwrap,
    wrap,
)
from privacy.keystore import Erasure, Suppression
from privacy.sealing import Sealer, _carries_personal
from privacy.unsealing import UnknownDataKey, Unsealer
from projections.memory import InMemoryStore
from projections.store import ErasedRecord, PositionedEvent
from schemas import REGISTRY, CustomerRef, Envelope, Source, decode_event, encode_event
from schemas.errors import SubjectErased
from schemas.payloads.call_center import CallCenterCall
from schemas.payloads.commerce import Purchased
from schemas.payloads.privacy import CustomerErased
from schemas.privacy import PERSONAL_REF_FIELDS, personal_fields, split_personal
from tests.strategies import events

PEPPER = b"p" * 32
AT = datetime(2026, 3, 1, 12, tzinfo=UTC)


class KeyStoreTwin:
    """The key store contract in dicts (privacy.keystore.PostgresKeyStore is the product)."""

    def __init__(self) -> None:
        self.keys: dict[str, DataKey] = {}
        self.destroyed: set[UUID] = set()
        self.suppressed_tokens: dict[str, Suppression] = {}

    def keys_for_subjects(
        self, subjects: Collection[str]
    ) -> tuple[dict[str, DataKey], dict[str, Suppression]]:
        erased = {s: self.suppressed_tokens[s] for s in subjects if s in self.suppressed_tokens}
        for s in subjects:
            if s not in erased:
                self.keys.setdefault(s, DataKey.new(uuid.uuid4()))
        return {s: self.keys[s] for s in subjects if s not in erased}, erased

    def keys_by_id(self, key_ids: Collection[UUID]) -> tuple[dict[UUID, DataKey], set[UUID]]:
        by_id = {k.key_id: k for k in self.keys.values()}
        return {i: by_id[i] for i in key_ids if i in by_id}, set(key_ids) & self.destroyed

    def suppressed(self, tokens: Collection[str]) -> dict[str, Suppression]:
        return {t: self.suppressed_tokens[t] for t in tokens if t in self.suppressed_tokens}

    def all_suppressed(self) -> set[str]:
        return set(self.suppressed_tokens)

    def erasure_of(self, customer_id: str) -> Erasure | None:
        return None

    def key_count(self, subjects: Collection[str]) -> int:
        return sum(1 for s in subjects if s in self.keys)

    def erase(
        self, customer_id: str, reason: str, identifiers: Iterable[str], subjects: Iterable[str]
    ) -> Erasure:
        erasure_id = uuid.uuid4()
        for t in identifiers:
            self.suppressed_tokens[t] = Suppression(t, erasure_id, AT)
        gone = [self.keys.pop(s) for s in subjects if s in self.keys]
        self.destroyed |= {k.key_id for k in gone}
        return Erasure(erasure_id, customer_id, reason, AT, len(self.suppressed_tokens), len(gone))


def _call(who: CustomerRef, notes: str = "Asked about the kettle refund") -> Envelope:
    payload = CallCenterCall(
        direction="inbound",
        duration_seconds=60,
        agent="Bui",
        outcome="resolved",
        topic="refund",
        notes_summary=notes,
    )
    return Envelope.new(
        payload, customer=who, occurred_at=AT, source=Source(system="pbx", channel="call_center")
    )


# -- crypto ------------------------------------------------------------------------------
def test_a_box_opens_only_with_its_key_and_in_its_event() -> None:
    key = DataKey.new(uuid.uuid4())
    box = seal_box(key, "event-1", {"payload": {"notes": "hello"}})
    assert open_box(key, "event-1", box) == {"payload": {"notes": "hello"}}
    with pytest.raises(BoxUnreadable):
        open_box(key, "event-2", box)  # moved to another event
    with pytest.raises(BoxUnreadable):
        open_box(DataKey.new(key.key_id), "event-1", box)  # another key
    assert seal_box(key, "event-1", {"a": 1}) != seal_box(key, "event-1", {"a": 1})  # nonces


def test_data_keys_are_stored_wrapped_and_unwrap_only_with_the_same_secret() -> None:
    key = DataKey.new(uuid.uuid4())
    wrapped = wrap(b"k" * 32, key)
    assert key.material not in wrapped
    assert unwrap(b"k" * 32, key.key_id, wrapped).material == key.material
    with pytest.raises(BoxUnreadable):
        unwrap(b"x" * 32, key.key_id, wrapped)


def test_nonces_are_handed_out_once_across_threads_and_after_a_fork() -> None:
    nonces = Nonces()
    taken: list[list[bytes]] = [[] for _ in range(4)]

    def take(into: list[bytes]) -> None:
        for _ in range(3 * Nonces.BLOCK):
            into.append(nonces.take())

    threads = [threading.Thread(target=take, args=(into,)) for into in taken]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [n for into in taken for n in into]
    assert {len(n) for n in every} == {NONCE_BYTES}
    assert len(set(every)) == len(every) == 12 * Nonces.BLOCK
    parent_next = nonces.take()
    nonces._forget()  # what a forked child runs: it must not reuse its parent's block
    assert nonces.take() != parent_next


def test_tokens_are_stable_and_keyed() -> None:
    assert token(PEPPER, "email:a@b.c") == token(PEPPER, "email:a@b.c")
    assert token(PEPPER, "email:a@b.c") != token(b"q" * 32, "email:a@b.c")
    assert "a@b.c" not in token(PEPPER, "email:a@b.c")
    sealer = Sealer(KeyStoreTwin(), PEPPER)  # remembers tokens: the same ones
    assert (
        sealer.token("email:a@b.c") == sealer.token("email:a@b.c") == token(PEPPER, "email:a@b.c")
    )


# -- the wire -------------------------------------------------------------------------
@settings(max_examples=150, deadline=None)
@given(data=st.data(), event_type=st.sampled_from(sorted(REGISTRY.known_types())))
def test_sealing_then_opening_gives_back_every_event(data: st.DataObject, event_type: str) -> None:
    event = data.draw(events(event_type))
    keys = KeyStoreTwin()
    key, value = Sealer(keys, PEPPER).seal(event, encode_event(event))
    wire = orjson.loads(value)
    assert not [f for f in PERSONAL_REF_FIELDS if wire["customer"].get(f)]
    assert not [f for f in personal_fields(event_type) if wire["payload"].get(f)]
    if event.customer.customer_id is None:
        assert key.decode().startswith("t:")  # never the e-mail address itself
    (opened,) = Unsealer(keys).open_all([value])
    assert isinstance(opened, bytes)
    assert decode_event(opened) == event


def test_an_event_without_personal_fields_travels_unchanged() -> None:
    event = Envelope.new(
        Purchased(order_id="o-1", amount=Decimal("10"), currency="EUR"),
        customer=CustomerRef(customer_id="c-1"),
        occurred_at=AT,
        source=Source(system="shop", channel="commerce"),
    )
    keys = KeyStoreTwin()
    key, value = Sealer(keys, PEPPER).seal(event, encode_event(event))
    assert (key, value) == (b"c-1", encode_event(event)) and not keys.keys


def test_erasure_shreds_the_box_and_suppresses_every_spelling_of_an_identifier() -> None:
    keys = KeyStoreTwin()
    sealer = Sealer(keys, PEPPER, suppression_ttl_s=0)
    anna = CustomerRef(customer_id="c-anna", phone="+84 900 111 222")
    event = _call(anna)
    _, value = sealer.seal(event, encode_event(event))
    keys.erase(
        "c-anna",
        "DSR-1",
        [token(PEPPER, "customer:c-anna"), token(PEPPER, "phone:+84900111222")],
        [token(PEPPER, "c-anna")],
    )
    (opened,) = Unsealer(keys).open_all([value])
    assert opened == ErasedRecord(event.event_id, AT, "call_center", "call_center.call")
    for who in (CustomerRef(phone="+84900111222"), CustomerRef(phone="0900 111 222")):
        later = _call(who)
        with pytest.raises(SubjectErased, match="erased customer") as refused:
            sealer.seal(later, encode_event(later))
        assert "900" not in str(refused.value)  # the refusal does not repeat the number


def test_a_box_sealed_with_a_key_this_store_never_held_is_not_taken_for_an_erasure() -> None:
    event = _call(CustomerRef(customer_id="c-1"))
    _, value = Sealer(KeyStoreTwin(), PEPPER).seal(event, encode_event(event))
    (opened,) = Unsealer(KeyStoreTwin()).open_all([value])
    assert isinstance(opened, UnknownDataKey)


def test_records_without_a_box_pass_through_untouched() -> None:
    raw = [b'{"not": "an event"}', b"", None, b'{"text": "sealed":{"key": 1}']
    assert Unsealer(KeyStoreTwin()).open_all(raw) == [raw[0], b"", b"", raw[3]]


# -- the in-memory store ----------------------------------------------------------------
def _placed(items: list[Envelope | ErasedRecord]) -> list[PositionedEvent]:
    return [
        PositionedEvent("t", 0, i, None, item)
        if isinstance(item, ErasedRecord)
        else PositionedEvent("t", 0, i, item)
        for i, item in enumerate(items)
    ]


def _erasure(customer_id: str, at: datetime) -> Envelope:
    return Envelope.new(
        CustomerErased(reason="DSR-1", identifiers=2),
        customer=CustomerRef(customer_id=customer_id),
        occurred_at=at,
        source=Source(system="rapport-privacy", channel="privacy"),
    )


def test_live_with_an_erasure_equals_a_rebuild_that_cannot_open_the_boxes() -> None:
    anna, ben = CustomerRef(customer_id="c-anna"), CustomerRef(customer_id="c-ben")
    history = [_call(anna), _call(ben), _call(anna, "second call")]
    for i, e in enumerate(history):
        object.__setattr__(e, "occurred_at", AT + timedelta(days=i))
    erasure = _erasure("c-anna", AT + timedelta(days=5))
    live = InMemoryStore()
    live.apply_batch(_placed(history))
    live.apply_batch(_placed([*history, erasure])[3:])  # the erasure, after the rest
    # A redelivered copy of one of her events, after the erasure: neither folded nor counted.
    again = PositionedEvent("t", 0, 4, history[0])
    assert live.apply_batch([again]).projected == 0

    rebuilt = InMemoryStore()
    erased = [ErasedRecord.of(e) if e.customer.customer_id == "c-anna" else e for e in history]
    rebuilt.apply_batch(_placed([*erased, erasure, ErasedRecord.of(history[0])]))
    assert live.tables() == rebuilt.tables()
    assert [t.customer_id for t in live.timeline.values()] == ["c-ben"]
    assert sum(live.channel_daily.values()) == 4  # her two calls, his, the erasure


@settings(max_examples=100, deadline=None)
@given(data=st.data(), event_type=st.sampled_from(sorted(REGISTRY.known_types())))
def test_an_event_is_parsed_for_sealing_whenever_it_has_a_field_to_seal(
    data: st.DataObject, event_type: str
) -> None:
    """The sealer parses an event only if `_carries_personal` says so: it must never say no
    to an event whose wire form holds a field `split_personal` takes."""
    event = data.draw(events(event_type))
    if split_personal(orjson.loads(encode_event(event))):
        assert _carries_personal(event)
