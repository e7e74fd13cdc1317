"""The population the worker keeps current (projections/postgres/population.py) equals the
pure base (`score_base` over every customer's history) after every change: new events,
a merge, an unmerge, a day that turns; and only what changed is rescored."""

from __future__ import annotations

import itertools
import math
import random
import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from infra.settings import Settings
from producers.simulator import simulate
from projections.postgres import queries
from projections.postgres.history import all_histories
from projections.postgres.population import PopulationScorer
from projections.postgres.store import PostgresStore, create_schema, make_engine
from projections.postgres.tables import build_tables
from projections.scores import base_lineage, score_base
from projections.store import PositionedEvent
from schemas import CustomerRef, Envelope, Source
from schemas.payloads.commerce import Purchased
from schemas.payloads.email import EmailOpened
from schemas.payloads.profile import IdentityLinked, IdentityUnlinked

pytestmark = pytest.mark.integration

_CLOSE = ("p_active", "past_value", "clv", "monetary_value", "engagement", "share_of_wallet")
_EXACT = (
    "frequency",
    "recency",
    "t",
    "net_contribution",
    "currency",
    "rfm_recency",
    "rfm_frequency",
    "rfm_monetary",
    "rfm_score",
    "tier",
    "tier_reason",
)


class Scene:
    def __init__(self, settings: Settings) -> None:
        self.engine = make_engine(settings.db_url)
        create_schema(self.engine, "core_v1")
        self.store = PostgresStore(self.engine, "core_v1")
        self.offset = 0
        self.day = date(2000, 1, 1)
        self.scorer = PopulationScorer(self.engine, "core_v1", today=lambda: self.day)

    def send(self, events: list[Envelope], batch: int = 400) -> None:
        for start in range(0, len(events), batch):
            chunk = events[start : start + batch]
            self.store.apply_batch(
                [PositionedEvent("t", 0, self.offset + n, e) for n, e in enumerate(chunk)]
            )
            self.offset += len(chunk)

    def population(self) -> dict[str, dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT * FROM rapport.scores")).mappings()
            return {r["customer_id"]: dict(r) for r in rows}

    def assert_equals_the_pure_base(self) -> None:
        as_of = self.scorer.target()
        with self.engine.connect() as conn:
            scored = score_base(
                all_histories(conn, build_tables("core_v1"), as_of=as_of), as_of=as_of
            )
            bases = {
                (r.kind, r.currency): r.lineage
                for r in conn.execute(sa.text("SELECT * FROM rapport.score_bases"))
            }
        expected = {s.customer_id: s.to_row() for s in scored}
        live = self.population()
        assert sorted(live) == sorted(expected)
        for customer, want in expected.items():
            got = live[customer]
            assert got["as_of"] == as_of, customer
            want["net_contribution"] = want["net_contribution"].quantize(Decimal("0.0001"))
            for column in _EXACT:  # net contribution: as numeric(18, 4) holds it
                assert got[column] == want[column], (customer, column, got[column], want[column])
            for column in _CLOSE:
                if want[column] is None:
                    assert got[column] is None, (customer, column)
                else:
                    assert math.isclose(got[column], want[column], rel_tol=1e-9, abs_tol=1e-9), (
                        customer,
                        column,
                    )
        # The cut-offs are scores, equal up to float rounding (state against pure fold).
        assert _close(bases, {(k, c): lineage for k, c, lineage in base_lineage(scored)})
        with self.engine.connect() as conn:
            segments = queries.segments(conn)
        tiers = Counter(row["tier"] for row in expected.values())
        assert {t["tier"]: t["customers"] for t in segments["tiers"]} == dict(tiers)
        assert segments["as_of"] == as_of


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-12)
    return bool(a == b)


def _purchase(key: CustomerRef, at: datetime, amount: str, n: int) -> Envelope:
    return Envelope.new(
        Purchased(order_id=f"o-{n}", amount=Decimal(amount), currency="USD"),
        customer=key,
        occurred_at=at,
        source=Source(system="shop", channel=Purchased.channel),
        event_id=uuid.UUID(int=10_000 + n),
    )


def test_the_live_population_equals_the_pure_base_through_merges_unmerges_and_days(
    rapport_settings: Settings,
) -> None:
    scene = Scene(rapport_settings)
    events = list(itertools.islice(simulate(150, seed=31), 5000))
    random.Random(3).shuffle(events)
    last = max(e.occurred_at for e in events)
    scene.day = last.date()
    scene.send(events[:3000])

    first = scene.scorer.run_once()
    assert first.ranked and first.rescored > 100
    scene.assert_equals_the_pure_base()

    # Nothing changed: a cycle writes nothing and ranks nothing.
    idle = scene.scorer.run_once()
    assert (idle.rescored, idle.ranked) == (0, False)

    # New events: only their customers are rescored, and the base is ranked again.
    scene.send(events[3000:])
    after = scene.scorer.run_once()
    assert after.ranked and after.rescored > 0
    scene.assert_equals_the_pure_base()

    # A visitor who bought before signing up is not a customer; linked, their purchases
    # are the customer's; unlinked, exactly as if the link never was.
    customer = sorted(scene.population())[0]
    cookie = CustomerRef(anonymous_id="cookie-pop")
    at = last - timedelta(hours=1)
    scene.send([_purchase(cookie, at - timedelta(days=n), "70.00", n) for n in range(3)])
    assert scene.scorer.run_once().rescored == 0  # a visitor
    before = scene.population()[customer]
    assert "anon:cookie-pop" not in {k for row in scene.population().values() for k in row["keys"]}
    link = Envelope.new(
        IdentityLinked(identifier="anon:cookie-pop", linked_to=f"customer:{customer}"),
        customer=CustomerRef(customer_id=customer),
        occurred_at=at,
        event_id=uuid.UUID(int=20_001),
    )
    scene.send([link])
    assert scene.scorer.run_once().rescored == 1  # the customer the visitor joined
    merged = scene.population()[customer]
    assert "anon:cookie-pop" in merged["keys"] and merged["past_value"] > before["past_value"]
    scene.assert_equals_the_pure_base()
    unlink = Envelope.new(
        IdentityUnlinked(
            identifier="anon:cookie-pop", unlinked_from=f"customer:{customer}", reason="shared"
        ),
        customer=CustomerRef(customer_id=customer),
        occurred_at=at + timedelta(minutes=1),
        event_id=uuid.UUID(int=20_002),
    )
    scene.send([unlink])
    scene.scorer.run_once()
    assert scene.population()[customer]["past_value"] == pytest.approx(before["past_value"])
    scene.assert_equals_the_pure_base()

    # The day turns: every row is rescored as of the new day, a chunk a cycle.
    scene.day += timedelta(days=40)
    scene.scorer.stale_chunk = 50
    cycles = 0
    while (report := scene.scorer.run_once()).stale:
        cycles += 1
        assert report.rescored <= 50 + 5
    assert cycles >= 2
    scene.assert_equals_the_pure_base()
    scene.engine.dispose()


def test_only_one_scorer_runs_a_version_at_a_time(rapport_settings: Settings) -> None:
    scene = Scene(rapport_settings)
    scene.send(list(itertools.islice(simulate(20, seed=2), 300)))
    with scene.engine.begin() as conn:
        conn.execute(
            sa.text("SELECT pg_advisory_xact_lock(:lock, hashtext('core_v1'))"),
            {"lock": 0x5C0E5},
        )
        skipped = scene.scorer.run_once()
    assert skipped.skipped and "another scorer" in skipped.skipped
    assert scene.scorer.run_once().rescored > 0
    scene.engine.dispose()


def test_checkpoints_shorten_history_and_a_late_event_never_makes_them_wrong(
    rapport_settings: Settings,
) -> None:
    """A long history gets a checkpoint every CHECKPOINT_EVERY events; scores as of any
    earlier time equal the pure fold, with checkpoints, after a late event made one stale,
    and after the scorer took them again."""
    scene = Scene(rapport_settings)
    who = CustomerRef(customer_id="long-history")
    start = datetime(2025, 1, 1, tzinfo=UTC)
    events = []
    for n in range(2600):
        at = start + timedelta(hours=3 * n)
        if n % 7 == 0:
            events.append(_purchase(who, at, f"{10 + n % 50}.00", n))
        else:
            events.append(
                Envelope.new(
                    EmailOpened(message_id=f"m{n}"),
                    customer=who,
                    occurred_at=at,
                    event_id=uuid.UUID(int=50_000 + n),
                )
            )
    scene.day = events[-1].occurred_at.date()
    scene.send(events, batch=500)
    scene.scorer.run_once()

    def checkpoints() -> list[int]:
        with scene.engine.connect() as conn:
            return list(
                conn.execute(
                    sa.text(
                        "SELECT events FROM rapport.score_checkpoints "
                        "WHERE customer_id = 'long-history' ORDER BY at"
                    )
                ).scalars()
            )

    def assert_history_as_pure() -> None:
        with scene.engine.connect() as conn:
            for hours in (100, 3001, 3 * 1000, 4500, 7000, 7790):
                as_of = start + timedelta(hours=hours)
                fast = queries.customer_scores(conn, "long-history", as_of=as_of)
                pure = queries.customer_scores(conn, "long-history", as_of=as_of, explain=True)
                assert fast["computed_from"] == "ledger"
                for column in ("frequency", "recency", "t", "p_active", "clv", "engagement"):
                    want, got = pure[column], fast[column]
                    assert got == want or math.isclose(got, want, rel_tol=1e-9), (hours, column)

    assert checkpoints() == [1000, 2000]
    assert_history_as_pure()
    late = _purchase(who, start + timedelta(hours=1), "999.00", 9_999)  # before both
    scene.send([late])
    assert_history_as_pure()  # the stale checkpoints are not used
    scene.scorer.run_once()
    assert checkpoints() == [1000, 2000]  # taken again, counting the late one
    with scene.engine.connect() as conn:
        first = conn.execute(
            sa.text("SELECT min(at) FROM rapport.score_checkpoints WHERE customer_id = :c"),
            {"c": "long-history"},
        ).scalar_one()
    assert first < start + timedelta(hours=3 * 1000)
    assert_history_as_pure()
    scene.engine.dispose()
