"""The read side as analysts use it: HTTP API and CLI over real PostgreSQL projections."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest

from infra.bootstrap import engine as make_engine
from infra.settings import Settings
from projections.postgres.store import PostgresStore, create_schema
from projections.store import PositionedEvent
from tests.support import rapport, serving_api
from tests.workload import mixed_events

pytestmark = pytest.mark.integration


@pytest.fixture
def projected(rapport_settings: Settings) -> Iterator[tuple[Settings, list]]:
    """A workload projected by the same store the worker uses."""
    events = mixed_events(customers=3, per_customer=60, seed=9)
    engine = make_engine(rapport_settings)
    create_schema(engine, "core_v1")
    store = PostgresStore(engine, "core_v1")
    store.apply_batch([PositionedEvent("t", 0, n, e) for n, e in enumerate(events)])
    yield rapport_settings, events
    engine.dispose()


def test_timeline_pages_through_everything_in_event_time_order(projected) -> None:  # type: ignore[no-untyped-def]
    settings, events = projected
    mine = sorted(
        (e for e in events if e.customer.customer_id == "cust-00001"),
        key=lambda e: (e.occurred_at, e.event_id),
    )
    with serving_api(make_engine(settings)) as api:
        seen, cursor = [], None
        while True:
            params = {"limit": 25, **({"cursor": cursor} if cursor else {})}
            page = api.agent.get("/v1/customers/cust-00001/timeline", params=params).json()
            seen += [e["event_id"] for e in page["events"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == [str(e.event_id) for e in mine]

        calls = api.agent.get(
            "/v1/customers/cust-00001/timeline",
            params={"channel": "call_center", "limit": 1000},
        ).json()["events"]
        assert {e["channel"] for e in calls} == {"call_center"}
        assert len(calls) == sum(e.channel.value == "call_center" for e in mine)

        as_of = mine[10].occurred_at
        past = api.agent.get(
            "/v1/customers/cust-00001/timeline",
            params={"as_of": as_of.isoformat(), "limit": 1000},
        ).json()["events"]
        assert len(past) == 11

        newest = api.agent.get(
            "/v1/customers/cust-00001/timeline", params={"order": "newest", "limit": 1}
        ).json()["events"]
        assert newest[0]["event_id"] == str(mine[-1].event_id)


def test_profile_over_http(projected) -> None:  # type: ignore[no-untyped-def]
    settings, events = projected
    mine = [e for e in events if e.customer.customer_id == "cust-00002"]
    with serving_api(make_engine(settings)) as api:
        body = api.agent.get("/v1/customers/cust-00002/profile").json()
    assert body["events"] == len(mine)
    assert sum(body["channel_counts"].values()) == len(mine)
    assert "email:c2@example.com" in body["identifiers"]
    assert body["first_seen"].startswith(min(e.occurred_at for e in mine).date().isoformat())


def test_bad_requests_name_the_problem(projected) -> None:  # type: ignore[no-untyped-def]
    settings, _ = projected
    with serving_api(make_engine(settings)) as api:
        missing = api.agent.get("/v1/customers/nobody/timeline")
        assert (
            missing.status_code == 404 and missing.json()["error"] == "customer 'nobody' not found"
        )
        assert api.agent.get("/v1/customers/nobody/profile").status_code == 404
        # A known customer whose filters leave nothing is an empty page, not a 404.
        before_anything = api.agent.get(
            "/v1/customers/cust-00001/timeline", params={"until": "1990-01-01T00:00:00Z"}
        )
        assert before_anything.status_code == 200 and before_anything.json()["events"] == []
        for params, parameter in (
            ({"limit": 0}, "limit"),
            ({"channel": "fax"}, "channel"),
            ({"cursor": "garbage!"}, "cursor"),
            ({"since": "yesterday"}, "since"),
            ({"order": "sideways"}, "order"),
        ):
            response = api.agent.get("/v1/customers/cust-00001/timeline", params=params)
            assert response.status_code == 400, (params, response.text)
            assert parameter in response.json()["error"], response.json()
        # An as-of thousands of years after the purchases: named, not a server error.
        far = api.agent.get("/v1/customers/cust-00001/scores", params={"as_of": "9999-12-31"})
        assert far.status_code == 400 and far.json()["parameter"] == "as_of", far.text
        docs = api.agent.get("/openapi.json").json()
        assert "/v1/customers/{customer_id}/timeline" in docs["paths"]


def test_cli_profile_and_timeline_json(projected) -> None:  # type: ignore[no-untyped-def]
    settings, events = projected
    result = rapport(settings, "profile", "cust-00000", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["customer_id"] == "cust-00000"
    mine = sorted(e.occurred_at for e in events if e.customer.customer_id == "cust-00000")
    since = (mine[5] - timedelta(microseconds=1)).isoformat()
    result = rapport(
        settings, "timeline", "cust-00000", "--since", since, "--json", "--limit", "1000"
    )
    assert len(json.loads(result.stdout)["events"]) == len(mine) - 5
    bad = rapport(settings, "timeline", "cust-00000", "--since", "soon")
    assert bad.returncode == 1 and bad.stderr.strip() == (
        "error: invalid since: 'soon' is not an ISO 8601 date or time"
    )
    table = rapport(settings, "profile", "cust-00000")
    assert "Profile of cust-00000" in table.stdout and "Channels" in table.stdout


def test_readiness_and_metrics_by_route_template(rapport_settings: Settings) -> None:
    from tests.support import scrape

    engine = make_engine(rapport_settings)
    with serving_api(engine) as api:
        # No projection version yet: alive, but nothing to serve.
        assert api.anonymous.get("/healthz").status_code == 200
        not_ready = api.anonymous.get("/readyz")
        assert not_ready.status_code == 503 and not_ready.json()["active_version"] is None
        create_schema(engine, "core_v1")
        ready = api.anonymous.get("/readyz")
        assert ready.status_code == 200 and ready.json()["active_version"] == "core_v1"

        assert api.agent.get("/v1/customers/cust-00001/profile").status_code == 404
        assert api.agent.get("/v1/customers/someone@example.com/profile").status_code == 404
        assert api.anonymous.get("/v1/customers/cust-00001/profile").status_code == 401
        metrics = scrape(f"{api.base}/metrics")
    engine.dispose()
    route = "/v1/customers/{customer_id}/profile"
    # One series per route template and status: never per customer identifier.
    assert metrics[("rapport_api_requests_total", ("GET", route, "404"))] == 2
    assert metrics[("rapport_api_requests_total", ("GET", route, "401"))] == 1
    assert metrics[("rapport_api_request_seconds_count", ("GET", route))] == 3
    assert not any("someone@example.com" in str(labels) for _, labels in metrics)
