"""Scores through the real pipeline: CDNOW via Kafka and the worker, matched to lifetimes."""

from __future__ import annotations

import importlib.resources
import json
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from lifetimes.utils import summary_data_from_transaction_data

from infra.bootstrap import engine as make_engine
from infra.settings import Settings
from producers import Publisher
from projections.postgres.history import all_histories
from projections.postgres.population import population_status
from projections.postgres.tables import build_tables
from projections.score_state import ScoreState, current_scores
from projections.value import summarize_purchases
from schemas import CustomerRef, Envelope, Source
from schemas.payloads.commerce import Purchased
from tests.integration.projection_snapshot import positions_total
from tests.support import rapport, running_worker, serving_api, wait_for

pytestmark = pytest.mark.integration

CDNOW = importlib.resources.files("lifetimes") / "datasets" / "CDNOW_master.txt"
OBSERVATION_END = datetime(1997, 9, 30, tzinfo=UTC)


def _population_ranked(engine: sa.Engine) -> int | None:
    """Customers in the population once the worker's scorer has scored every committed
    change and no row waits for the day's rescoring; None before."""
    with engine.connect() as conn:
        status = population_status(conn, "core_v1")
    if status is None or status["pending_keys"] or status["stale"]:
        return None
    return int(status["customers"])


def _cdnow_events() -> list[Envelope]:
    """One purchase event per CDNOW row (two rows on one day are two purchases)."""
    ns = uuid.UUID("5d1c3b4e-7a0f-4c8e-9f62-1d2b3c4d5e6f")
    lines = CDNOW.read_text().splitlines()[1:]
    events = []
    for n, line in enumerate(lines):
        customer, yyyymmdd, _cds, dollars = line.split()
        events.append(
            Envelope.new(
                Purchased(
                    order_id=f"cdnow-{n}", amount=Decimal(dollars), currency="USD", category="music"
                ),
                customer=CustomerRef(customer_id=customer),
                occurred_at=datetime.strptime(yyyymmdd, "%Y%m%d").replace(tzinfo=UTC),
                source=Source(system="cdnow-import", channel=Purchased.channel),
                event_id=uuid.uuid5(ns, str(n)),
            )
        )
    return events


def lifetimes_summary(frame: pd.DataFrame, observation_period_end: str) -> pd.DataFrame:
    return summary_data_from_transaction_data(
        frame,
        "customer_id",
        "date",
        monetary_value_col="dollar_value",
        observation_period_end=observation_period_end,
        freq="D",
    )


def assert_as_lifetimes(
    mine: Mapping[str, Any], theirs: pd.Series, customer: str, *, age: str = "t"
) -> None:
    """One customer's summary is lifetimes' row: frequency, recency and T exactly (`age`
    names our T), monetary value to 1e-9."""
    assert (mine["frequency"], mine["recency"], mine[age]) == (
        theirs["frequency"],
        theirs["recency"],
        theirs["T"],
    ), customer
    assert abs(mine["monetary_value"] - theirs["monetary_value"]) <= 1e-9, customer


def test_cdnow_through_kafka_and_worker_matches_lifetimes(rapport_settings: Settings) -> None:
    events = _cdnow_events()
    with Publisher(rapport_settings.bootstrap, rapport_settings.topic) as publisher:
        publisher.publish_all(events)
    engine = make_engine(rapport_settings)
    # The worker keeps the population scored as of the log's last day (its end).
    settings = rapport_settings.model_copy(update={"scores_as_of": date(1998, 6, 30)})
    with running_worker(settings, "--batch-size", "2000"):
        wait_for(
            lambda: positions_total(engine, "core_v1") >= len(events),
            timeout=300,
            what="CDNOW projected",
        )
        wait_for(
            lambda: _population_ranked(engine) == 23570,
            timeout=300,
            what="the worker's population scorer caught up",
            interval=1,
        )

    with engine.connect() as conn:
        ours = {
            h.customer_id: s.as_lifetimes_row()
            for h in all_histories(conn, build_tables("core_v1"), as_of=OBSERVATION_END)
            if (s := summarize_purchases(h.purchases, as_of=OBSERVATION_END)) is not None
        }
    frame = pd.read_csv(str(CDNOW), sep=r"\s+", dtype={"customer_id": str, "date": str})
    frame["date"] = pd.to_datetime(frame["date"], format="%Y%m%d")
    theirs = lifetimes_summary(frame, "1997-09-30")
    assert sorted(ours) == sorted(theirs.index)
    for customer, row in theirs.iterrows():
        assert_as_lifetimes(ours[customer], row, customer, age="T")

    # The live score state, folded by that worker, as of the log's last day (a bare date:
    # its end, inclusive): every customer equal to lifetimes with that day as the end.
    day_end = datetime(1998, 6, 30, 23, 59, 59, 999999, tzinfo=UTC)
    with engine.connect() as conn:
        states = conn.execute(sa.text("SELECT key, state FROM rapport.score_state")).all()
    live = {
        key: current_scores(ScoreState.from_json(state), key, as_of=day_end)
        for key, state in states
    }
    at_the_end = lifetimes_summary(frame, "1998-06-30")
    assert sorted(live) == sorted(at_the_end.index)
    for customer, row in at_the_end.iterrows():
        mine = live[customer]
        assert mine is not None, customer
        assert_as_lifetimes(mine, row, customer)

    # The population the worker ranked, as of that day: every customer as lifetimes has
    # them, and top and segments over them, CLI and HTTP, without a refresh.
    with engine.connect() as conn:
        population = {
            r["customer_id"]: r
            for r in conn.execute(sa.text("SELECT * FROM rapport.scores")).mappings()
        }
    assert len(population) == 23570
    for customer, row in at_the_end.iterrows():
        assert population[customer]["as_of"] == day_end
        assert_as_lifetimes(population[customer], row, customer)
    top = json.loads(rapport(rapport_settings, "top", "--by", "clv", "-n", "5", "--json").stdout)
    assert len(top) == 5 and top[0]["clv"] >= top[-1]["clv"] > 0
    segments = json.loads(rapport(rapport_settings, "segments", "--json").stdout)
    assert sum(t["customers"] for t in segments["tiers"]) == 23570
    assert {t["tier"] for t in segments["tiers"]} <= {"MVC", "MGC", "BZ", "other"}
    with serving_api(engine) as api:
        best = top[0]["customer_id"]
        scores = api.agent.get(
            f"/v1/customers/{best}/scores",
            params={"as_of": "1998-06-30", "explain": "true"},
        ).json()
        assert scores["clv"] == pytest.approx(top[0]["clv"])
        assert scores["base"]["tier"] == top[0]["tier"]
        assert scores["lineage"]["summary"]["event_ids"]
        # RFM and tier lineage: the customer's inputs as of the refresh, inside the
        # boundaries the base was ranked by, with the events behind them.
        rfm, tier = scores["base_lineage"]["rfm"], scores["base_lineage"]["tier"]
        assert rfm["base"]["base_size"] == 23570 and len(rfm["event_ids"]) == rfm["frequency"]
        for measure, score in (
            ("recency_days", "recency"),
            ("frequency", "frequency"),
            ("monetary", "monetary"),
        ):
            ranges = {q: (float(lo), float(hi)) for q, lo, hi in rfm["base"]["quintiles"][measure]}
            low, high = ranges[rfm["scores"][score]]
            assert low <= float(rfm[measure]) <= high, measure
        assert tier["tier"] == top[0]["tier"] and tier["base"]["base_size"] == 23570
        if tier["tier"] == "MVC":
            assert tier["past_value"] >= tier["base"]["most_valuable_cutoff"]
        assert tier["event_ids"]
        by_rfm = api.analyst.get("/v1/top", params={"by": "rfm", "n": 3}).json()
        assert [r["rfm_score"] for r in by_rfm] == sorted(
            (r["rfm_score"] for r in by_rfm), reverse=True
        )
        assert api.analyst.get("/v1/top", params={"by": "shoe size"}).status_code == 400

        # A bare as-of date is the end of that day: those who bought on the log's last day,
        # asked as of that date, match lifetimes with that day as observation_period_end.
        last_day = lifetimes_summary(frame, "1998-06-30")
        bought_that_day = sorted(set(frame[frame["date"] == "1998-06-30"]["customer_id"]))
        assert bought_that_day
        for customer in bought_that_day[:20]:
            mine = api.agent.get(
                f"/v1/customers/{customer}/scores", params={"as_of": "1998-06-30"}
            ).json()
            assert mine["computed_from"] == "score_state"
            assert_as_lifetimes(mine, last_day.loc[customer], customer)


def test_a_customer_paying_in_two_currencies_is_scored_and_breaks_nothing(
    rapport_settings: Settings,
) -> None:
    def bought(customer: str, day: int, amount: str, currency: str, hour: int = 0) -> Envelope:
        return Envelope.new(
            Purchased(order_id=f"{customer}-{day}", amount=Decimal(amount), currency=currency),
            customer=CustomerRef(customer_id=customer),
            occurred_at=datetime(2026, 3, day, hour, tzinfo=UTC),
            source=Source(system="shop", channel=Purchased.channel),
        )

    events = [
        bought("two-wallets", 1, "40", "USD"),
        bought("two-wallets", 5, "10", "USD"),
        bought("two-wallets", 9, "900", "EUR"),
        bought("two-wallets", 31, "25", "USD", hour=15),  # on the as-of date: counted
        *(bought(f"plain-{n}", n + 1, str(10 * (n + 1)), "USD") for n in range(5)),
    ]
    with Publisher(rapport_settings.bootstrap, rapport_settings.topic) as publisher:
        publisher.publish_all(events)
    engine = make_engine(rapport_settings)
    with running_worker(rapport_settings):
        wait_for(
            lambda: positions_total(engine, "core_v1") >= len(events),
            timeout=120,
            what="purchases projected",
        )

    refreshed = rapport(rapport_settings, "refresh-scores", "--as-of", "2026-03-31")
    assert refreshed.returncode == 0, refreshed.stderr
    assert "scored 6 customers" in refreshed.stdout
    with serving_api(engine) as api:
        answer = api.agent.get(
            "/v1/customers/two-wallets/scores",
            params={"as_of": "2026-03-31", "explain": "true"},
        )
        assert answer.status_code == 200, answer.text
        scores = answer.json()
        assert scores["currency"] == "USD" and scores["frequency"] == 2
        assert scores["recency"] == 30 and scores["t"] == 30
        (eur,) = scores["other_currencies"]
        assert (eur["currency"], eur["purchases"]) == ("EUR", 1)
        assert scores["base"]["tier"] is not None
        assert len(scores["lineage"]["currency"]["other_currencies"][0]["event_ids"]) == 1
        # RFM ranks within a currency: the customer's RFM is USD's, among USD buyers.
        rfm = scores["base_lineage"]["rfm"]
        assert (rfm["currency"], rfm["frequency"], rfm["base"]["base_size"]) == ("USD", 3, 6)
        top = api.analyst.get("/v1/top", params={"by": "rfm", "n": 6}).json()
        assert "two-wallets" in {r["customer_id"] for r in top}
