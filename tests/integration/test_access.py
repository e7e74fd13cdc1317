"""Roles on the read side with the real services: what each API key's role and each
PostgreSQL role sees, and nothing more; trust authentication only on loopback."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from infra.bootstrap import engine as make_engine
from infra.bootstrap import pseudonymizer
from infra.settings import Settings
from projections.postgres.store import PostgresStore, create_schema
from projections.postgres.versions import PostgresVersions
from projections.store import PositionedEvent
from schemas import CustomerRef, Envelope
from schemas.payloads.call_center import CallCenterCall
from schemas.payloads.email import EmailSent
from schemas.payloads.profile import ProfileUpdated
from tests.support import pseudonym_settings, rapport, serving_api

pytestmark = pytest.mark.integration

EMAIL = "an.nguyen@example.com"
PHONE = "+84901234567"
SHOP_ID = "shop-id-4411"
NOTES = "Said her husband Binh is in hospital"
SUBJECT = "A private offer for An"
NAME = "Nguyen Thi An"
PERSONAL = (EMAIL, PHONE, SHOP_ID, NOTES, SUBJECT, NAME)
INSUFFICIENT_PRIVILEGE = "42501"


def _events() -> list[Envelope]:
    who = CustomerRef(
        customer_id="cust-an", email=EMAIL, phone=PHONE, external_ids={"shop": SHOP_ID}
    )
    start = datetime(2026, 1, 5, 9, tzinfo=UTC)
    payloads = [
        CallCenterCall(
            direction="inbound",
            duration_seconds=300,
            agent="Linh",
            outcome="resolved",
            topic="billing",
            notes_summary=NOTES,
        ),
        EmailSent(message_id="m-1", subject=SUBJECT),
        ProfileUpdated(traits={"full_name": NAME, "city": "Hue"}),
    ]
    return [
        Envelope.new(p, customer=who, occurred_at=start + timedelta(hours=n))
        for n, p in enumerate(payloads)
    ]


@pytest.fixture
def projected(rapport_settings: Settings) -> Iterator[sa.Engine]:
    engine = make_engine(rapport_settings)
    create_schema(engine, "core_v1")
    store = PostgresStore(engine, "core_v1")
    store.apply_batch([PositionedEvent("t", 0, n, e) for n, e in enumerate(_events())])
    yield engine
    engine.dispose()


def test_each_role_sees_what_it_should_and_nothing_more(projected: sa.Engine) -> None:
    pseudonym = pseudonymizer(pseudonym_settings())
    with serving_api(projected) as api:
        for path in ("timeline", "profile", "identity", "scores"):
            agent = api.agent.get(f"/v1/customers/{EMAIL}/{path}")
            assert agent.status_code == 200, agent.text
            analyst = api.analyst.get(f"/v1/customers/{EMAIL}/{path}")
            assert analyst.status_code == 200, analyst.text
            for clear in PERSONAL:
                assert clear not in analyst.text, (path, clear)
        for clear in PERSONAL:  # the agent sees the customer in full
            assert clear in api.agent.get("/v1/customers/cust-an/timeline").text + (
                api.agent.get("/v1/customers/cust-an/profile").text
            ), clear

        profile = api.analyst.get("/v1/customers/cust-an/profile").json()
        assert f"email:~{pseudonym('email:' + EMAIL)}" in profile["identifiers"]
        assert "customer:cust-an" in profile["identifiers"]  # a pseudonym already
        assert profile["traits"] == {"full_name": "[personal]", "city": "[personal]"}
        events = api.analyst.get("/v1/customers/cust-an/timeline").json()["events"]
        call = next(e for e in events if e["type"] == "call_center.call")
        assert call["payload"]["notes_summary"] == "[personal]"
        assert call["payload"]["duration_seconds"] == 300
        assert call["summary"] == "call_center.call"

        # Aggregates: the analyst's, not the agent's.
        assert api.analyst.get("/v1/segments").status_code == 200
        assert api.analyst.get("/v1/top").status_code == 200
        refused = api.agent.get("/v1/segments")
        assert refused.status_code == 403 and "analyst" in refused.json()["error"]
        # The admin manages keys and reads no customer.
        refused = api.admin.get("/v1/customers/cust-an/profile")
        assert refused.status_code == 403
        assert "agent or analyst" in refused.json()["error"], refused.text
        refused = api.analyst.get("/v1/admin/api-keys")
        assert refused.status_code == 403 and "admin" in refused.json()["error"]

        # No key, a wrong key, another scheme: 401; /healthz needs none.
        assert api.anonymous.get("/healthz").status_code == 200
        missing = api.anonymous.get("/v1/customers/cust-an/profile")
        assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
        assert api.client("rr_nonsense").get("/v1/customers/cust-an/profile").status_code == 401
        basic = api.anonymous.get("/v1/top", auth=("agent", "secret"))
        assert basic.status_code == 401

        # Key management over HTTP, and a revoked key refused.
        made = api.admin.post("/v1/admin/api-keys", json={"name": "crm", "role": "agent"})
        assert made.status_code == 201, made.text
        crm = api.client(made.json()["key"])
        assert crm.get("/v1/customers/cust-an/profile").status_code == 200
        listed = {k["name"]: k for k in api.admin.get("/v1/admin/api-keys").json()}
        assert listed["crm"]["role"] == "agent" and "key" not in listed["crm"]
        again = api.admin.post("/v1/admin/api-keys", json={"name": "crm", "role": "agent"})
        assert again.status_code == 409
        bad = api.admin.post("/v1/admin/api-keys", json={"name": "x", "role": "root"})
        assert bad.status_code == 400 and "role 'root'" in bad.json()["error"]
        gone = api.admin.delete("/v1/admin/api-keys/crm")
        assert gone.status_code == 200 and gone.json()["revoked_at"]
        assert crm.get("/v1/customers/cust-an/profile").status_code == 401
        assert api.admin.delete("/v1/admin/api-keys/crm").status_code == 404
        crm.close()


def test_api_keys_from_the_command_line(projected: sa.Engine, rapport_settings: Settings) -> None:
    added = rapport(rapport_settings, "api-keys", "add", "reporting", "--role", "analyst")
    assert added.returncode == 0, added.stderr
    key = added.stdout.strip()
    assert key.startswith("rr_") and "shown once" in added.stderr
    listed = rapport(rapport_settings, "api-keys", "list")
    assert "reporting" in listed.stdout and "analyst" in listed.stdout and key not in listed.stdout
    wrong = rapport(rapport_settings, "api-keys", "add", "x", "--role", "superuser")
    assert wrong.returncode == 1 and "role 'superuser'" in wrong.stderr
    with serving_api(projected) as api:
        reporting = api.client(key)
        assert reporting.get("/v1/customers/cust-an/profile").status_code == 200
        revoked = rapport(rapport_settings, "api-keys", "revoke", "reporting")
        assert revoked.returncode == 0, revoked.stderr
        assert reporting.get("/v1/customers/cust-an/profile").status_code == 401
        reporting.close()
    again = rapport(rapport_settings, "api-keys", "revoke", "reporting")
    assert again.returncode == 1 and "already revoked" in again.stderr


def _as_role(conn: sa.Connection, role: str, sql: str) -> list[sa.Row[tuple[object, ...]]]:
    """`sql` run as `role` in a savepoint of the caller's transaction."""
    with conn.begin_nested():
        conn.execute(sa.text(f"SET LOCAL ROLE {role}"))
        rows = conn.execute(sa.text(sql)).all()
        conn.execute(sa.text("RESET ROLE"))
        return list(rows)


def _refused(conn: sa.Connection, role: str, sql: str) -> bool:
    try:
        _as_role(conn, role, sql)
    except sa.exc.ProgrammingError as error:
        return getattr(error.orig, "pgcode", None) == INSUFFICIENT_PRIVILEGE
    return False


def test_postgres_analyst_role_reads_masked_views_only(projected: sa.Engine) -> None:
    pseudonym = pseudonymizer(pseudonym_settings())
    with serving_api(projected):  # sets the pseudonym key as `rapport api` does
        pass
    with projected.begin() as conn:
        for view in ("timeline", "customers", "scores", "purchases_by_month", "score_segments"):
            _as_role(conn, "rapport_analyst", f"SELECT * FROM rapport_analyst.{view}")
        rows = _as_role(
            conn, "rapport_analyst", "SELECT row_to_json(t)::text FROM rapport_analyst.timeline t"
        )
        rows += _as_role(
            conn, "rapport_analyst", "SELECT row_to_json(c)::text FROM rapport_analyst.customers c"
        )
        text = "\n".join(str(r[0]) for r in rows)
        assert len(rows) == 4
        for clear in PERSONAL:
            assert clear not in text, clear
        (identifiers,) = _as_role(
            conn, "rapport_analyst", "SELECT identifiers FROM rapport_analyst.customers"
        )[0]
        # The same pseudonyms as the API's: an analyst can join the two.
        assert f"email:~{pseudonym('email:' + EMAIL)}" in identifiers
        assert f"phone:~{pseudonym('phone:' + PHONE)}" in identifiers
        calls = _as_role(
            conn,
            "rapport_analyst",
            "SELECT payload, summary FROM rapport_analyst.timeline WHERE type = 'call_center.call'",
        )
        assert calls[0][0]["notes_summary"] == "[personal]" and calls[0][1] == "call_center.call"
        for forbidden in (
            "SELECT * FROM rapport.timeline",
            "SELECT * FROM rapport.customers",
            "SELECT * FROM core_v1.timeline",
            "SELECT * FROM rapport_access.api_keys",
            "SELECT * FROM rapport_access.pseudonym_key",
        ):
            assert _refused(conn, "rapport_analyst", forbidden), forbidden
        # The worker's role writes the projection, and reads no keys.
        assert _as_role(conn, "rapport_writer", "SELECT count(*) FROM core_v1.positions")
        _as_role(
            conn,
            "rapport_writer",
            "INSERT INTO core_v1.channel_daily VALUES ('2026-01-01', 'web', 'x', 1) RETURNING 1",
        )
        assert _refused(conn, "rapport_writer", "SELECT * FROM rapport_access.api_keys")
        conn.rollback()


def test_a_swap_keeps_the_masked_views_on_the_active_version(projected: sa.Engine) -> None:
    versions = PostgresVersions(projected)
    versions.prepare("core_v2")
    versions.activate("core_v2")
    with projected.begin() as conn:
        assert _as_role(conn, "rapport_analyst", "SELECT * FROM rapport_analyst.timeline") == []
        assert _as_role(conn, "rapport_writer", "SELECT count(*) FROM core_v2.positions")
    versions.activate("core_v1")
    with projected.begin() as conn:
        rows = _as_role(conn, "rapport_analyst", "SELECT * FROM rapport_analyst.timeline")
        assert len(rows) == 3


def test_trust_authentication_only_on_loopback(projected: sa.Engine) -> None:
    host = projected.url.host or "localhost"
    if host not in ("127.0.0.1", "::1", "localhost"):
        pytest.skip(f"not the local embedded server ({host})")
    with projected.connect() as conn:
        rules = conn.execute(
            sa.text(
                "SELECT line_number, type, address, netmask, auth_method, error "
                "FROM pg_hba_file_rules"
            )
        ).all()
    assert rules and not [r for r in rules if r.error], rules
    for rule in rules:
        if rule.auth_method != "trust" or rule.type == "local":
            continue
        assert rule.address is not None, rule  # 'all', 'samehost'… would be beyond loopback
        prefix = bin(int(ipaddress.ip_address(rule.netmask))).count("1")
        network = ipaddress.ip_network(f"{rule.address}/{prefix}", strict=False)
        assert network.is_loopback, json.dumps(rule._asdict(), default=str)


def test_the_worker_acts_as_the_writer_role(
    projected: sa.Engine, rapport_settings: Settings
) -> None:
    """What `rapport worker` connects as (infra.bootstrap.worker_app): the writer role, which
    writes the projection and reads the data keys it opens sealed fields with, and can
    neither change the key store nor read API keys."""
    from infra.bootstrap import key_store
    from privacy.keystore import SCHEMA as KEYS_SCHEMA
    from projections.postgres.roles import WRITER_ROLE, writer_role_for_worker
    from projections.postgres.store import make_engine as engine_as

    key_store(rapport_settings, projected)
    with projected.begin() as conn:
        assert writer_role_for_worker(conn, "core_v1", KEYS_SCHEMA)
    writer = engine_as(rapport_settings.db_url, role=WRITER_ROLE)
    try:
        with writer.begin() as conn:
            assert conn.execute(sa.text("SELECT current_user")).scalar_one() == WRITER_ROLE
            conn.execute(sa.text("SELECT count(*) FROM core_v1.timeline"))
            conn.execute(sa.text("SELECT count(*) FROM rapport_keys.data_keys"))
            conn.execute(sa.text("SELECT count(*) FROM rapport_keys.suppressed"))
        for forbidden in (
            "DELETE FROM rapport_keys.data_keys",
            "INSERT INTO rapport_keys.suppressed (token, erasure_id) "
            "VALUES ('x', gen_random_uuid())",
            "SELECT * FROM rapport_access.api_keys",
            "CREATE TABLE core_v1.intruder (x int)",
        ):
            with pytest.raises(sa.exc.ProgrammingError) as refused, writer.begin() as conn:
                conn.execute(sa.text(forbidden))
            assert getattr(refused.value.orig, "pgcode", None) == INSUFFICIENT_PRIVILEGE, forbidden
    finally:
        writer.dispose()
