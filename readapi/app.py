"""The HTTP read API: the same queries as the CLI, over FastAPI (OpenAPI at /docs), and
the customer pages for people (/ui/, readapi/pages.py) under the same keys and roles.

HTTP status codes live here and only here: CustomerNotFound -> 404, InvalidQuery and
malformed parameters -> 400 naming the parameter, no valid API key -> 401, a key whose role
may not use the route -> 403 naming the roles that may.

Every route but /healthz, /readyz and /metrics needs `Authorization: Bearer <API key>`
(readapi/keys.py). An agent reads one customer at a time in full; an analyst the same
routes and the aggregates, with personal data masked (readapi/masking.py); an admin manages
keys and reads nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Annotated, Any, Protocol

import sqlalchemy as sa
from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from observability.http import HttpMetrics
from projections.contact_policy import DEFAULT_CONTACT_RULES, ContactRules
from projections.errors import CustomerNotFound, InvalidQuery
from projections.identity import DEFAULT_RULES, IdentityRules
from projections.postgres import queries, views
from projections.postgres.contact_policy import contact_decision, contact_violations
from projections.postgres.identity import identity_of
from projections.query_time import parse_as_of, parse_instant
from projections.scores import DEFAULT_PARAMETERS, ScoreParameters
from readapi import masking, pages
from readapi.addresses import PageAddresses
from readapi.errors import Forbidden, Unauthenticated
from readapi.keys import (
    ApiKeyRecord,
    ApiKeys,
    DuplicateApiKey,
    InvalidApiKeyRequest,
    Role,
    UnknownApiKey,
    parse_role,
)

AS_OF_HELP = (
    "ISO 8601. A bare date is the end of that day, inclusive (1998-06-30 counts that day's "
    "purchases); a time without offset is UTC."
)


def _connection(request: Request) -> Iterator[sa.Connection]:
    with request.app.state.engine.connect() as conn:
        yield conn


Conn = Annotated[sa.Connection, Depends(_connection)]

_bearer = HTTPBearer(auto_error=False, description="An API key (`rapport api-keys add`).")


def _key_holder(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> ApiKeyRecord:
    if credentials is None:
        raise Unauthenticated("send an API key: Authorization: Bearer <key>")
    keys: ApiKeys = request.app.state.keys
    holder = keys.holder(credentials.credentials)
    if holder is None:
        raise Unauthenticated("unknown or revoked API key")
    return holder


def _role(*allowed: Role) -> Callable[[ApiKeyRecord], ApiKeyRecord]:
    def check(holder: Annotated[ApiKeyRecord, Depends(_key_holder)]) -> ApiKeyRecord:
        if holder.role not in allowed:
            needed = " or ".join(r.value for r in allowed)
            raise Forbidden(
                f"this route needs a key with role {needed}; "
                f"key {holder.name!r} has role {holder.role.value}"
            )
        return holder

    return check


# Declared before the connection in each route: a request without a key is refused
# before it takes a database connection.
Reader = Annotated[ApiKeyRecord, Depends(_role(Role.AGENT, Role.ANALYST))]
Analyst = Annotated[ApiKeyRecord, Depends(_role(Role.ANALYST))]
Admin = Annotated[ApiKeyRecord, Depends(_role(Role.ADMIN))]


class SubjectRights(Protocol):
    """What an admin may do for a data subject (built by infra.bootstrap.read_api_app)."""

    def erase(self, customer: str, reason: str) -> dict[str, Any]: ...

    def export(self, conn: sa.Connection, customer: str) -> dict[str, Any]: ...


class ErasureRequest(BaseModel):
    customer: str
    reason: str


class NewApiKey(BaseModel):
    name: str
    role: str


def create_app(
    engine: sa.Engine,
    params: ScoreParameters = DEFAULT_PARAMETERS,
    rules: IdentityRules = DEFAULT_RULES,
    contact_rules: ContactRules = DEFAULT_CONTACT_RULES,
    *,
    keys: ApiKeys,
    pseudonym: masking.Pseudonym,
    subject_rights: SubjectRights | None = None,
    operations: pages.Operations | None = None,
    page_addresses: PageAddresses | None = None,
) -> FastAPI:
    """The read API over `engine`'s active version. `keys` checks every request's key;
    `pseudonym` (a stable keyed hash of an identifier) masks identifiers for analysts.
    `operations` feeds the operator page (/ui/operations; None: "not configured").
    `page_addresses` seals customers' page addresses for analysts (None: a key made for
    this process, so those addresses last until it stops)."""
    app = FastAPI(
        title="Rapport read API",
        description="Customer timelines, profiles and scores, projected from the touchpoint log.",
        version="1",
    )
    app.state.engine = engine
    app.state.keys = keys

    @app.exception_handler(Unauthenticated)
    async def _unauthenticated(request: Request, exc: Unauthenticated) -> JSONResponse:
        return JSONResponse(
            {"error": str(exc)}, status_code=401, headers={"WWW-Authenticate": "Bearer"}
        )

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=403)

    @app.exception_handler(InvalidApiKeyRequest)
    async def _bad_key_request(request: Request, exc: InvalidApiKeyRequest) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=400)

    @app.exception_handler(DuplicateApiKey)
    async def _duplicate_key(request: Request, exc: DuplicateApiKey) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=409)

    @app.exception_handler(UnknownApiKey)
    async def _unknown_key(request: Request, exc: UnknownApiKey) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=404)

    @app.exception_handler(CustomerNotFound)
    async def _not_found(request: Request, exc: CustomerNotFound) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=404)

    @app.exception_handler(InvalidQuery)
    async def _invalid(request: Request, exc: InvalidQuery) -> JSONResponse:
        return JSONResponse({"error": str(exc), "parameter": exc.parameter}, status_code=400)

    @app.exception_handler(RequestValidationError)
    async def _malformed(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {
                "parameter": ".".join(str(p) for p in e["loc"][1:]) or str(e["loc"][0]),
                "value": e.get("input"),
                "problem": e["msg"],
            }
            for e in exc.errors()
        ]
        first = problems[0]
        return JSONResponse(
            {"error": f"invalid {first['parameter']}: {first['problem']}", "problems": problems},
            status_code=400,
        )

    HttpMetrics("api").install(app)

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        """The process answers (no database needed)."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    def readyz() -> JSONResponse:
        """PostgreSQL answers and a projection version is active: queries can be served
        (else 503, naming what is missing)."""
        try:
            with engine.connect() as conn:
                active = views.active_schema_if_any(conn)
        except sa.exc.SQLAlchemyError as exc:
            return JSONResponse(
                {"status": "not ready", "database": f"unreachable: {type(exc).__name__}"},
                status_code=503,
            )
        if active is None:
            return JSONResponse(
                {"status": "not ready", "database": "ok", "active_version": None},
                status_code=503,
            )
        return JSONResponse({"status": "ready", "database": "ok", "active_version": active})

    @app.get("/v1/customers/{customer_id}/timeline", tags=["customers"])
    def timeline(
        reader: Reader,
        conn: Conn,
        customer_id: str,
        limit: Annotated[int, Query(ge=1, le=queries.MAX_PAGE)] = 50,
        cursor: str | None = None,
        channel: Annotated[list[str] | None, Query()] = None,
        type: Annotated[list[str] | None, Query()] = None,
        since: datetime | None = None,
        until: datetime | None = None,
        as_of: Annotated[str | None, Query(description=AS_OF_HELP)] = None,
        order: Annotated[str, Query(pattern="^(oldest|newest)$")] = "oldest",
    ) -> dict[str, Any]:
        """Touchpoints in event-time order, keyset-paginated: pass `next_cursor` back."""
        page = queries.customer_timeline(
            conn,
            customer_id,
            limit=limit,
            cursor=cursor,
            channels=channel,
            types=type,
            since=since,
            until=until,
            as_of=parse_as_of(as_of) if as_of else None,
            newest_first=order == "newest",
            rules=rules,
        )
        answer = {
            "customer_id": page.customer_id,
            "events": page.rows,
            "next_cursor": page.next_cursor,
        }
        return masking.timeline_page(answer, pseudonym) if _masked(reader) else answer

    @app.get("/v1/customers/{customer_id}/profile", tags=["customers"])
    def profile(reader: Reader, conn: Conn, customer_id: str) -> dict[str, Any]:
        """Identifiers, latest traits, first/last seen, channels, preferences, consent."""
        answer = queries.customer_profile(conn, customer_id, rules)
        return masking.profile(answer, pseudonym) if _masked(reader) else answer

    @app.get("/v1/customers/{customer_id}/contact-policy", tags=["customers"])
    def contact_policy(
        reader: Reader,
        conn: Conn,
        customer_id: str,
        channel: Annotated[str, Query(description="Channel of the contact, e.g. email.")],
        purpose: Annotated[str, Query(description="e.g. marketing, service.")] = "marketing",
        topic: Annotated[
            str | None, Query(description="What it is about (checked against unwanted topics).")
        ] = None,
        at: Annotated[
            str | None, Query(description="When (ISO 8601; a bare date is its midnight UTC).")
        ] = None,
    ) -> dict[str, Any]:
        """May we contact the customer on `channel` for `purpose` at `at` (default now)?
        `decision` is allow or deny; `checks` gives every rule's verdict, reason and the
        consent or preference event it comes from. A denial is an answer, not an error
        (200)."""
        resolved, decision = contact_decision(
            conn,
            customer_id,
            channel=channel,
            purpose=purpose,
            topic=topic,
            at=parse_instant(at, "at") if at else datetime.now(UTC),
            rules=contact_rules,
            identity_rules=rules,
        )
        answer = {"customer_id": resolved, **decision.to_json()}
        return masking.customer_document(answer, pseudonym) if _masked(reader) else answer

    @app.get("/v1/contact-violations", tags=["customers"])
    def violations(
        reader: Reader,
        conn: Conn,
        customer: Annotated[str | None, Query(description="Only this customer.")] = None,
        rule: Annotated[str | None, Query(description="Only this rule.")] = None,
        limit: Annotated[int, Query(description="Latest rows (1-1000).")] = 50,
    ) -> dict[str, Any]:
        """Outbound touchpoints that broke the contact policy in force when they happened:
        counts per rule and the latest rows (rapport.contact_violations)."""
        answer = contact_violations(
            conn, customer=customer, rule=rule, limit=limit, identity_rules=rules
        )
        return masking.violations(answer, pseudonym) if _masked(reader) else answer

    @app.get("/v1/customers/{customer_id}/identity", tags=["customers"])
    def identity(reader: Reader, conn: Conn, customer_id: str) -> dict[str, Any]:
        """The customer's identifiers and every link between them, with its evidence and
        state (active, unlinked, refused, blocked). Links are made and undone by posting
        identity.linked / identity.unlinked events to the collector."""
        answer = identity_of(conn, queries.resolve_customer(conn, customer_id, rules))
        return masking.identity(answer, pseudonym) if _masked(reader) else answer

    @app.get("/v1/customers/{customer_id}/scores", tags=["scores"])
    def scores(
        reader: Reader,
        conn: Conn,
        customer_id: str,
        as_of: Annotated[str | None, Query(description=AS_OF_HELP)] = None,
        explain: bool = False,
    ) -> dict[str, Any]:
        """Scores as of `as_of` (default now); `explain` adds inputs and source events."""
        answer = queries.customer_scores(
            conn,
            customer_id,
            as_of=parse_as_of(as_of) if as_of else datetime.now(UTC),
            explain=explain,
            params=params,
            rules=rules,
        )
        return masking.customer_document(answer, pseudonym) if _masked(reader) else answer

    @app.get("/v1/top", tags=["scores"])
    def top(
        reader: Analyst,
        conn: Conn,
        by: Annotated[str, Query(pattern="^(clv|p_active|rfm|engagement|past_value)$")] = "clv",
        n: Annotated[int, Query(ge=1, le=queries.MAX_PAGE)] = 20,
    ) -> list[dict[str, Any]]:
        """The best customers by a materialized score (analysts: an aggregate)."""
        return masking.ranked(queries.top_customers(conn, by=by, n=n), pseudonym)

    @app.get("/v1/segments", tags=["scores"])
    def segments(reader: Analyst, conn: Conn) -> dict[str, Any]:
        """Customers per value tier and RFM band (analysts: an aggregate)."""
        return queries.segments(conn)

    @app.post("/v1/admin/api-keys", tags=["admin"], status_code=201)
    def add_api_key(admin: Admin, new: NewApiKey) -> dict[str, str]:
        """Add a key; the answer holds the key itself, the only time it is shown."""
        role = parse_role(new.role)
        return {"name": new.name, "role": role.value, "key": keys.add(new.name, role)}

    @app.get("/v1/admin/api-keys", tags=["admin"])
    def list_api_keys(admin: Admin) -> list[dict[str, str | None]]:
        """Every key, revoked ones too (names, roles and prefixes; never a key)."""
        return [k.to_json() for k in keys.list()]

    @app.delete("/v1/admin/api-keys/{name}", tags=["admin"])
    def revoke_api_key(admin: Admin, name: str) -> dict[str, str | None]:
        """Revoke a key: it is refused (401) from now on."""
        keys.revoke(name)
        return next(k.to_json() for k in keys.list() if k.name == name)

    pages.install(
        app,
        pseudonym=pseudonym,
        params=params,
        rules=rules,
        operations=operations,
        addresses=page_addresses or PageAddresses(os.urandom(64)),
    )

    if subject_rights is not None:
        rights = subject_rights

        @app.post("/v1/admin/erasures", tags=["admin"])
        def erase(admin: Admin, request: ErasureRequest) -> dict[str, Any]:
            """Erase a customer (any identifier): their data keys destroyed, identifiers
            suppressed, rows removed from every projection version, privacy.erased
            recorded in the log. Erasing again finishes an interrupted erasure."""
            if not request.reason.strip():
                raise InvalidQuery("reason", "say why (the request's reference)")
            return rights.erase(request.customer, request.reason)

        @app.get("/v1/admin/subjects/{customer_id}", tags=["admin"])
        def export_subject(admin: Admin, conn: Conn, customer_id: str) -> dict[str, Any]:
            """Everything Rapport holds about a person (a subject access request)."""
            return rights.export(conn, customer_id)

    return app


def _masked(reader: ApiKeyRecord) -> bool:
    return reader.role is not Role.AGENT
