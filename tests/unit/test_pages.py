"""The pages' access rules, forms and operator page, over a fake key store and no database
(the routes tested here read none; the customer pages are tested in a browser:
tests/integration/test_customer_page.py)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from infra.status import DeadLetters, PartitionLag, Service, Status
from readapi.app import create_app
from readapi.keys import ApiKeyRecord, Role
from readapi.pages import COOKIE, operations_view

HERE = "http://testserver"


class FakeKeys:
    """The ApiKeys interface over a dict: key -> record."""

    def __init__(self) -> None:
        self.records: dict[str, ApiKeyRecord] = {}

    def add(self, name: str, role: Role) -> str:
        key = f"rr_{name}"
        self.records[key] = ApiKeyRecord(name, role, key[:9], datetime.now(UTC), None)
        return key

    def list(self) -> list[ApiKeyRecord]:
        return list(self.records.values())

    def revoke(self, name: str) -> None:
        self.records = {k: r for k, r in self.records.items() if r.name != name}

    def holder(self, key: str) -> ApiKeyRecord | None:
        return self.records.get(key)


STATUS: dict[str, Any] = Status(
    checked_at=datetime(2026, 1, 1, tzinfo=UTC),
    topic="t",
    services=[Service("postgres", "up", "active version: core_v2")],
    active_version="core_v2",
    partitions=[PartitionLag(0, 9, 4, 5, None)],
    freshness_s=1.25,
    dead_letters=DeadLetters(
        1,
        {"undecodable": 1},
        [
            {
                "ref": "t/0@3",
                "failed_at": "2026-01-01T00:00:00+00:00",
                "stage": "decode",
                "error_type": "DecodeError",
                "error": "not JSON <b>",
                "event_id": None,
            }
        ],
    ),
).to_json()


@pytest.fixture
def site() -> Callable[..., tuple[TestClient, FakeKeys]]:
    made: list[TestClient] = []

    def build(
        operations: Callable[[], dict[str, Any]] | None = None,
    ) -> tuple[TestClient, FakeKeys]:
        keys = FakeKeys()
        engine = sa.create_engine("postgresql+psycopg2://nobody@127.0.0.1:1/none")  # never used
        app = create_app(engine, keys=keys, pseudonym=lambda v: "~x", operations=operations)
        client = TestClient(app, base_url=HERE, follow_redirects=False)
        made.append(client)
        return client, keys

    yield build  # type: ignore[misc]
    for client in made:
        client.close()


def signed_in(client: TestClient, keys: FakeKeys, role: Role) -> TestClient:
    client.cookies.set(COOKIE, keys.add(role.value, role))
    return client


def test_operations_page_shows_the_status_to_analysts_and_admins(site: Any) -> None:
    client, keys = site(lambda: STATUS)
    for role in (Role.ANALYST, Role.ADMIN):
        page = signed_in(client, keys, role).get("/ui/operations")
        assert page.status_code == 200, page.text
        for shown in ("core_v2", "undecodable", "1.2 s", "t/0@3", "DecodeError"):
            assert shown in page.text, shown
        assert "not JSON" not in page.text  # an error's text can quote personal data
    agent = signed_in(client, keys, Role.AGENT).get("/ui/operations")
    assert agent.status_code == 403 and "role analyst or admin" in agent.text


def test_operations_page_without_a_source_says_so(site: Any) -> None:
    client, keys = site(None)
    page = signed_in(client, keys, Role.ADMIN).get("/ui/operations")
    assert page.status_code == 200 and "not configured" in page.text


def test_a_failing_or_partial_status_is_shown_not_a_500(site: Any) -> None:
    def broken() -> dict[str, Any]:
        raise ConnectionError("broker down")

    client, keys = site(broken)
    page = signed_in(client, keys, Role.ADMIN).get("/ui/operations")
    assert page.status_code == 200 and "broker down" in page.text

    client, keys = site(lambda: {"active_version": "core_v1"})
    page = signed_in(client, keys, Role.ADMIN).get("/ui/operations")
    assert page.status_code == 200 and "core_v1" in page.text and "unknown" in page.text


def test_operations_view_fills_what_is_missing() -> None:
    view = operations_view({})
    assert view["lag"] == {"total": None, "partitions": []}
    assert view["dead_letters"] == {"total": None, "by_reason": {}, "latest": []}
    full = operations_view(STATUS)
    assert full["dead_letters"] == {
        k: v for k, v in STATUS["dead_letters"].items() if k != "reasons_of"
    }
    assert full["lag"]["total"] == 5
    assert full["lag"]["partitions"] == [
        {"topic": "t", "partition": 0, "end": 9, "position": 4, "lag": 5, "stored_at": None}
    ]


def test_admins_read_no_customer_and_agents_no_aggregates(site: Any) -> None:
    client, keys = site()
    admin = signed_in(client, keys, Role.ADMIN)
    for path in ("/ui/customers/c-1", "/ui/customers?q=c-1", "/ui/value"):
        assert admin.get(path).status_code == 403, path
    home = admin.get("/ui/")
    assert home.status_code == 200 and 'id="q"' not in home.text
    agent = signed_in(client, keys, Role.AGENT)
    assert agent.get("/ui/value").status_code == 403


def test_without_a_valid_key_every_page_sends_to_sign_in(site: Any) -> None:
    client, _ = site()
    for path in ("/ui/", "/ui/customers/c-1?channel=email", "/ui/value", "/ui/operations"):
        answer = client.get(path)
        assert answer.status_code == 303, path
        assert answer.headers["location"].startswith("/ui/sign-in?next=%2Fui%2F"), path
    client.cookies.set(COOKIE, "rr_revoked")
    answer = client.get("/ui/")
    assert answer.status_code == 303 and f'{COOKIE}=""' in answer.headers["set-cookie"]


def test_sign_in_checks_the_key_and_where_the_form_came_from(site: Any) -> None:
    client, keys = site()
    key = keys.add("agent", Role.AGENT)
    form = {"key": key, "next": "/ui/customers/c-1"}
    assert (
        client.post("/ui/sign-in", data=form, headers={"Origin": "http://evil"}).status_code == 403
    )
    assert client.post("/ui/sign-in", data=form).status_code == 403  # no Origin, no Referer
    by_referer = client.post("/ui/sign-in", data=form, headers={"Referer": f"{HERE}/ui/sign-in"})
    assert by_referer.status_code == 303
    assert by_referer.headers["location"] == "/ui/customers/c-1"
    client.cookies.clear()
    elsewhere = client.post(
        "/ui/sign-in", data={**form, "next": "//evil/ui/"}, headers={"Origin": HERE}
    )
    assert elsewhere.headers["location"] == "/ui/"
    wrong = client.post("/ui/sign-in", data={"key": "rr_guess"}, headers={"Origin": HERE})
    assert wrong.status_code == 401 and "set-cookie" not in wrong.headers

    assert client.get("/ui/").status_code == 200
    assert client.post("/ui/sign-out", headers={"Origin": "http://evil"}).status_code == 403
    out = client.post("/ui/sign-out", headers={"Origin": HERE})
    assert out.status_code == 303 and f'{COOKIE}=""' in out.headers["set-cookie"]


def test_pages_are_not_in_the_api_description(site: Any) -> None:
    client, _ = site()
    paths = client.get("/openapi.json").json()["paths"]
    assert paths and not [p for p in paths if p == "/" or p.startswith("/ui")]


def test_only_the_shipped_static_files_are_served(site: Any) -> None:
    client, _ = site()
    css = client.get("/ui/static/page.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert client.get("/ui/static/page.js").status_code == 200
    for other in ("base.html", "..%2Fpages.py", "nothing.css"):
        assert client.get(f"/ui/static/{other}").status_code == 404, other
