"""What lets the SDK encode an event without decoding it, proven for every type.

`schemas.codec.encode_verified` skips the decode of an event's encoding when
`schemas.provenance.as_validated` vouches that the event is as validation built it. These
properties hold for every registered type:

- every validated event is vouched for, and its encoding (as the publisher stamps it)
  decodes, to the same event: the decode the fast path skips could not have failed;
- whatever is done in place to the dicts of an event (which a frozen model cannot stop),
  the event is never vouched for while its encoding would not decode, and the publisher
  refuses exactly the events the decoder refuses.

The types and the dicts to change are read from the registry and from the events
themselves, not from the module under test, so a new type is covered without a change here.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from producers import Publisher, PublisherConfig
from schemas import REGISTRY, ContractError, CustomerRef, Envelope, decode_event, encode_event
from schemas.codec import encode_verified
from schemas.provenance import as_validated, unvalidated_models
from schemas.registry import NOT_VOUCHED_FOR
from tests.strategies import events

property_test = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TYPES = REGISTRY.known_types()


@pytest.fixture(scope="module")
def publisher() -> Publisher:
    """A publisher to encode with; closed, so no I/O thread runs (encoding needs none)."""
    lazy = Publisher.from_config(PublisherConfig("127.0.0.1:1", "unused", connect_eagerly=False))
    lazy.close(timeout=1)
    return lazy


def test_every_current_event_model_is_vouched_for() -> None:
    assert NOT_VOUCHED_FOR == []  # else that type's events are decoded: correct, but slower


@pytest.mark.parametrize("event_type", TYPES)
@property_test
@given(data=st.data())
def test_a_validated_event_is_vouched_for_and_its_encoding_decodes_to_it(
    publisher: Publisher, event_type: str, data: st.DataObject
) -> None:
    event = data.draw(events(event_type))
    if unvalidated_models():
        gc.collect()  # what an earlier test built without validation
    assert unvalidated_models() == 0
    assert as_validated(event)
    encoded = publisher.encode(event)
    decoded = decode_event(encoded.value)
    assert type(decoded) is type(event)
    stamped = {"received_at": decoded.received_at} if event.received_at is None else {}
    assert decoded.model_dump() == {**event.model_dump(), **stamped}


# -- dicts changed in place ---------------------------------------------------------------
_KEYS = st.one_of(
    st.text(max_size=3),
    st.just(""),
    st.just(" "),
    st.just("a\x00b"),
    st.just("k" * 250),
    st.sampled_from(["email", "x", "note", "utm_source", "source", "1"]),
)
_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=5),
    st.just(""),
    st.just("a\x00b"),
    st.just("v" * 5000),
)
_CHANGES = st.one_of(
    st.just(("clear", None, None)),
    st.tuples(st.just("set"), _KEYS, _VALUES),
    st.tuples(st.just("pop"), st.none(), st.none()),
    st.tuples(st.just("fill"), st.integers(min_value=1, max_value=250), st.none()),
)


def _dicts_of(model: BaseModel) -> Iterator[dict[Any, Any]]:
    """Every dict held by a field of `model` or of a model nested in it (found by looking,
    not from the schema)."""
    for name in type(model).model_fields:
        value = getattr(model, name)
        values = value if isinstance(value, tuple) else (value,)
        for item in values:
            if isinstance(item, dict):
                yield item
            elif isinstance(item, BaseModel):
                yield from _dicts_of(item)


def _change(target: dict[Any, Any], change: tuple[str, Any, Any]) -> None:
    what, key, value = change
    if what == "clear":
        target.clear()
    elif what == "set":
        target[key] = value
    elif what == "pop" and target:
        target.pop(next(iter(target)))
    elif what == "fill":
        target.update({f"k{n}": f"v{n}" for n in range(key)})


def _decodes(event: Envelope) -> bool:
    try:
        data = encode_event(event)
    except Exception:
        return False
    try:
        decode_event(data)
    except ContractError:
        return False
    return True


@pytest.mark.filterwarnings("ignore:Pydantic serializer warnings")  # the invalid dicts
@pytest.mark.parametrize("event_type", TYPES)
@property_test
@given(data=st.data())
def test_an_event_whose_dicts_changed_is_vouched_for_only_when_still_valid(
    event_type: str, data: st.DataObject
) -> None:
    event = data.draw(events(event_type))
    dicts = list(_dicts_of(event))
    assert dicts, "every event holds dicts (its customer's identifiers at least)"
    for target in data.draw(st.lists(st.sampled_from(dicts), min_size=1, max_size=3)):
        _change(target, data.draw(_CHANGES))
    valid = _decodes(event)
    if as_validated(event):
        assert valid, "vouched for an event whose encoding does not decode"
    try:
        encode_verified(event)
    except ContractError:
        assert not valid
    else:
        assert valid


def _example(event_type: str, **customer: Any) -> Envelope:
    model = REGISTRY.current_model(event_type)
    return Envelope.new(
        model.model_validate(model.examples()[0]),
        customer=CustomerRef(**{"customer_id": "c-1", **customer}),
        occurred_at=datetime(2026, 3, 1, 9, 30, tzinfo=UTC),
    )


@pytest.mark.filterwarnings("ignore:Pydantic serializer warnings")
def test_the_changes_drawn_above_do_make_invalid_events() -> None:
    """The property above is not vacuous: a change of each kind it draws is refused."""
    profile = _example("profile.updated")
    profile.payload.traits.clear()  # at least one trait
    visit = _example("web.visited")
    visit.payload.utm.update({f"k{n}": "v" for n in range(11)})  # at most 10
    email = _example("email.sent", social_handles={"x": "@an"})
    email.customer.social_handles["x"] = "a\x00b"  # no NUL
    anonymous = _example("email.sent", customer_id=None, external_ids={"shop": "4411"})
    anonymous.customer.external_ids.clear()  # no identifier left
    for event in (profile, visit, email, anonymous):
        assert not as_validated(event) and not _decodes(event)
        with pytest.raises(ContractError):
            encode_verified(event)
