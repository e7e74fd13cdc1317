"""A third-party Segment library, pointed at the collector, feeds customer timelines."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from segment.analytics import Client

from infra.settings import Settings
from projections.postgres.tables import build_tables
from tests.support import consume, rapport, running_collector, running_worker, wait_for

timeline = build_tables("core_v1").timeline

pytestmark = pytest.mark.integration


def test_segment_analytics_python_track_and_identify(rapport_settings: Settings) -> None:
    key = rapport(rapport_settings, "sources", "add", "website").stdout.strip()
    errors: list[Exception] = []
    with running_collector(rapport_settings) as base:
        client = Client(key, host=base, sync_mode=True, on_error=lambda e, _: errors.append(e))
        client.identify(
            "cust-77", {"email": "ann@example.com", "plan": "gold"}, anonymous_id="anon-9"
        )
        client.track(
            "cust-77", "Order Completed", {"order_id": "o-1", "total": 42.5, "currency": "EUR"}
        )
        client.track("cust-77", "Video Played", {"title": "Onboarding"})
        client.flush()
    assert errors == []

    records = consume(rapport_settings, 4)
    stored = consume(rapport_settings, 4, opened=False)
    assert not [v for _, v in stored if "ann@example.com" in str(v)]  # sealed on the wire
    by_type = {value["type"]: (k, value) for k, value in records}
    assert set(by_type) == {
        "profile.updated",
        "identity.linked",
        "commerce.purchased",
        "custom.event",
    }
    assert all(k == b"cust-77" for k, _ in by_type.values())
    assert by_type["profile.updated"][1]["customer"] == {
        "customer_id": "cust-77",
        "email": "ann@example.com",  # an identify's e-mail trait is an identifier too
        "anonymous_id": "anon-9",
        "external_ids": {},
        "social_handles": {},
    }
    assert by_type["profile.updated"][1]["payload"]["traits"]["plan"] == "gold"
    assert by_type["identity.linked"][1]["payload"] == {
        "identifier": "anon:anon-9",
        "linked_to": "customer:cust-77",
        "evidence": "segment identify",
        "forced": False,
    }
    assert by_type["commerce.purchased"][1]["payload"]["amount"] == "42.5"
    assert by_type["custom.event"][1]["payload"]["name"] == "Video Played"
    assert by_type["custom.event"][1]["context"]["library"]["name"] == "analytics-python"

    engine = sa.create_engine(rapport_settings.db_url)

    def on_timeline() -> set[str] | None:
        try:
            with engine.connect() as conn:
                types = conn.execute(
                    sa.select(timeline.c.type).where(timeline.c.customer_id == "cust-77")
                ).scalars()
                found = set(types)
        except sa.exc.ProgrammingError:
            return None  # the worker has not created its tables yet
        return found if len(found) == 4 else None

    with running_worker(rapport_settings):
        assert wait_for(on_timeline, what="the Segment events on cust-77's timeline") == set(
            by_type
        )
    engine.dispose()
