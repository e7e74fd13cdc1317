"""The command line as a user drives it."""

from __future__ import annotations

import pytest

from infra.settings import Settings
from tests.support import rapport

pytestmark = pytest.mark.integration


def test_demo_prints_a_timeline_that_went_through_the_worker(rapport_settings: Settings) -> None:
    result = rapport(
        rapport_settings, "demo", "--customers", "3", "--calls", "24", "--simulated", "300"
    )
    assert result.returncode == 0, result.stderr + result.stdout
    assert "published 24 calls for 3 customers and 300 simulated touchpoints" in result.stdout
    assert "worker projected every event" in result.stdout
    for shown in ("Timeline of ", "Profile of ", "Channels", "Scores of ", "P(Active)"):
        assert shown in result.stdout, shown
    last = " ".join(result.stdout.split()[-40:])  # the page's address, ending the output
    assert "Customer page: http://" in last and "/ui/customers/" in last, last
    assert "rapport api" in last and "--role agent" in last, last


def test_unreachable_broker_gives_one_clear_line(rapport_settings: Settings) -> None:
    result = rapport(rapport_settings, "worker", RAPPORT_KAFKA_BOOTSTRAP="127.0.0.1:1", timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: cannot reach Kafka at 127.0.0.1:1: check RAPPORT_KAFKA_BOOTSTRAP"
    ]


def test_unreachable_database_gives_one_clear_line(rapport_settings: Settings) -> None:
    result = rapport(
        rapport_settings,
        "timeline",
        "c-1",
        RAPPORT_DATABASE_URL="postgresql+psycopg2://postgres@127.0.0.1:1/x",
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "error: cannot reach PostgreSQL at postgresql+psycopg2://postgres@127.0.0.1:1/x: "
        "check RAPPORT_DATABASE_URL"
    )


def test_unknown_customer_is_not_found(rapport_settings: Settings) -> None:
    from infra.bootstrap import engine
    from projections.postgres.store import create_schema

    create_schema(engine(rapport_settings))
    result = rapport(rapport_settings, "timeline", "nobody")
    assert result.returncode == 1
    assert result.stderr.strip() == "error: customer 'nobody' not found"
