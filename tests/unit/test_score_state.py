"""The folded score state gives the scores the pure on-demand fold gives, in any order."""

from __future__ import annotations

import itertools
import json
import math
import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from producers.simulator import simulate
from projections.errors import ScoringInputError
from projections.memory import InMemoryStore
from projections.score_ledger import CustomerHistory, ledger_entry
from projections.score_state import ScoreState, combined, current_scores, state_of
from projections.scores import score_customer
from projections.store import PositionedEvent

Triple = tuple[str, datetime, dict[str, Any]]

_START = datetime(1996, 1, 1, tzinfo=UTC)
_ORDERS = ["o1", "o2", "o3", "o4", None]
_CURRENCIES = ["USD", "USD", "USD", "EUR"]
_CHANNELS = ["commerce", "email", "web", "call_center", "social", "no-such-channel"]


def _money(draw: st.DrawFn, low: int = 0) -> str:
    return str(Decimal(draw(st.integers(low, 200_000))) / 100)


@st.composite
def _entry(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["p", "p", "p", "r", "t", "s", "i", "i"]))
    entry: dict[str, Any] = {}
    if kind == "p":
        entry["p"] = {
            "a": _money(draw),
            "c": draw(st.sampled_from(_CURRENCIES)),
            "m": None if draw(st.booleans()) else _money(draw),
            "k": {},
            "o": draw(st.sampled_from(_ORDERS)),
        }
    elif kind == "r":
        entry["r"] = {
            "a": _money(draw),
            "c": draw(st.sampled_from(_CURRENCIES)),
            "o": draw(st.sampled_from(_ORDERS)),
        }
    elif kind == "t":
        entry["t"] = 1
    elif kind == "s":
        entry["s"] = [
            {
                "k": category,
                "a": _money(draw),
                "c": draw(st.sampled_from(_CURRENCIES)),
                "w": _money(draw),
                "d": draw(st.integers(1, 400)),
            }
            for category in draw(st.sets(st.sampled_from(["shoes", "bags"]), min_size=1))
        ]
    if kind == "i" or draw(st.booleans()):
        sentiment = draw(st.one_of(st.none(), st.floats(-1, 1)))
        entry["i"] = [draw(st.sampled_from(_CHANNELS)), sentiment]
    return entry


@st.composite
def _history(draw: st.DrawFn) -> list[Triple]:
    n = draw(st.integers(0, 25))
    ids = draw(st.lists(st.integers(0, 2**128 - 1), min_size=n, max_size=n, unique=True))
    triples: list[Triple] = []
    for i in range(n):
        at = _START + timedelta(seconds=draw(st.integers(0, 3 * 365 * 86_400)))
        if draw(st.integers(0, 9)) == 0:  # now and then, an event exactly on another's time
            at = triples[-1][1] if triples else at
        event_id = str(UUID(int=ids[i]))  # an event is folded once: the store sees to it
        refused = draw(st.sampled_from([False] * 40 + [True]))
        entry = {"e": f"refused {i}"} if refused else draw(_entry())
        triples.append((event_id, at, entry))
    return triples


def _reference(triples: list[Triple], as_of: datetime) -> dict[str, Any]:
    """The pure fold: the ledger read in time order, as the timeline gives it."""
    history = CustomerHistory("c")
    for event_id, at, entry in sorted(triples, key=lambda t: (t[1], t[0])):
        history.add_entry(UUID(event_id), at, entry)
    return score_customer(history, as_of=as_of).to_row()


def _close(a: Any, b: Any, path: str = "") -> None:
    if isinstance(a, float) or isinstance(b, float):
        assert a is not None and b is not None, path
        assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-7), (path, a, b)
    elif isinstance(a, Decimal) or isinstance(b, Decimal):
        assert abs(Decimal(a) - Decimal(b)) <= Decimal("1e-12") * (1 + abs(Decimal(a))), path
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            if k == "net_contribution" and isinstance(a[k], str):
                _close(Decimal(a[k]), Decimal(b[k]), f"{path}.{k}")
            else:
                _close(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _close(x, y, f"{path}[{i}]")
    else:
        assert a == b, (path, a, b)


def _round_trip(state: ScoreState) -> ScoreState:
    return ScoreState.from_json(json.loads(json.dumps(state.to_json())))


@settings(max_examples=300, deadline=None)
@given(
    triples=_history(),
    order=st.randoms(use_true_random=False),
    split=st.randoms(use_true_random=False),
    later=st.integers(0, 2000 * 86_400),
)
def test_state_scores_equal_the_pure_fold_in_any_order_and_split(
    triples: list[Triple], order: Any, split: Any, later: int
) -> None:
    arrival = list(triples)
    order.shuffle(arrival)
    state = _round_trip(state_of(arrival))
    # The same events filed under two keys, each folded on its own, then combined.
    keys: dict[int, list[Triple]] = defaultdict(list)
    for triple in arrival:
        keys[split.randint(0, 1)].append(triple)
    merged = _round_trip(combined(_round_trip(state_of(part)) for part in keys.values()))
    # Order never shows in what is stored: replay verification compares it byte for byte.
    assert state.to_json() == state_of(sorted(triples, key=lambda t: t[0])).to_json()
    assert merged.to_json() == state.to_json()

    last = max((at for _, at, entry in triples if entry), default=_START)
    as_of = last + timedelta(seconds=later)
    try:
        expected = _reference(triples, as_of)
    except ScoringInputError as refused:
        with pytest.raises(ScoringInputError, match=str(refused)):
            current_scores(state, "c", as_of=as_of)
        return
    got = current_scores(state, "c", as_of=as_of)
    if got is None:  # the state hands the question to the ledger only for these reasons
        assert state.beyond_range is not None
        return
    _close(got, expected)


def test_the_state_hands_back_what_it_cannot_answer() -> None:
    at = datetime(2024, 5, 1, 12, tzinfo=UTC)
    survey = {"s": [{"k": "shoes", "a": "100", "c": "USD", "w": None, "d": 365}]}
    state = state_of([("00000000-0000-0000-0000-000000000001", at, survey)])
    assert current_scores(state, "c", as_of=at + timedelta(days=1)) is None  # share from buys
    bought = {"p": {"a": "10", "c": "USD", "m": None, "k": {}, "o": None}}
    state = state_of([("00000000-0000-0000-0000-000000000002", at, bought)])
    assert current_scores(state, "c", as_of=at - timedelta(seconds=1)) is None  # before it
    assert current_scores(state, "c", as_of=at) is not None


def test_simulated_customers_score_the_same_from_state_and_ledger() -> None:
    """A realistic mix: the simulator's customers, each through the state and the ledger."""
    by_customer: dict[str, list[Triple]] = defaultdict(list)
    for event in itertools.islice(simulate(200, seed=11), 8000):
        by_customer[event.customer.partition_key].append(
            (str(event.event_id), event.occurred_at, ledger_entry(event))
        )
    as_of = max(at for triples in by_customer.values() for _, at, _ in triples)
    compared = 0
    for triples in by_customer.values():
        got = current_scores(_round_trip(state_of(triples)), "c", as_of=as_of)
        assert got is not None
        _close(got, _reference(triples, as_of))
        compared += 1
    assert compared > 100


_SIMULATED = list(itertools.islice(simulate(40, seed=29), 1500))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32), batch=st.integers(1, 400), resent=st.integers(0, 100))
def test_the_store_folds_each_event_once_whatever_the_batches(
    seed: int, batch: int, resent: int
) -> None:
    """Through the store (the twin of PostgreSQL's): any arrival order, any batch size,
    events sent again on another partition: every key's state is the fold of its events."""
    arrival = list(_SIMULATED)
    random.Random(seed).shuffle(arrival)
    store = InMemoryStore()
    again = 0
    for start in range(0, len(arrival), batch):
        chunk = arrival[start : start + batch]
        repeated = chunk[:resent]
        store.apply_batch(
            [PositionedEvent("t", 0, start + n, e) for n, e in enumerate(chunk)]
            + [PositionedEvent("t", 1, again + n, e) for n, e in enumerate(repeated)]
        )
        again += len(repeated)
    by_key: dict[str, list[Triple]] = defaultdict(list)
    for event in _SIMULATED:
        if entry := ledger_entry(event):
            by_key[event.customer.partition_key].append(
                (str(event.event_id), event.occurred_at, entry)
            )
    assert store.tables()["score_state"] == {
        key: state_of(triples).to_json() for key, triples in by_key.items()
    }
