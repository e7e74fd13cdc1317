"""The HTTP read API: the same queries as the CLI, over FastAPI (OpenAPI at /docs).

HTTP status codes live here and only here: CustomerNotFound -> 404, InvalidQuery and
malformed parameters -> 400 naming the parameter.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from projections.contact_policy import DEFAULT_CONTACT_RULES, ContactRules
from projections.errors import CustomerNotFound, InvalidQuery
from projections.identity import DEFAULT_RULES, IdentityRules
from projections.postgres import queries
from projections.postgres.contact_policy import contact_decision, contact_violations
from projections.postgres.identity import identity_of
from projections.query_time import parse_as_of, parse_instant
from projections.scores import DEFAULT_PARAMETERS, ScoreParameters

AS_OF_HELP = (
    "ISO 8601. A bare date is the end of that day, inclusive (1998-06-30 counts that day's "
    "purchases); a time without offset is UTC."
)


def _connection(request: Request) -> Iterator[sa.Connection]:
    with request.app.state.engine.connect() as conn:
        yield conn


Conn = Annotated[sa.Connection, Depends(_connection)]


def create_app(
    engine: sa.Engine,
    params: ScoreParameters = DEFAULT_PARAMETERS,
    rules: IdentityRules = DEFAULT_RULES,
    contact_rules: ContactRules = DEFAULT_CONTACT_RULES,
) -> FastAPI:
    app = FastAPI(
        title="Rapport read API",
        description="Customer timelines, profiles and scores, projected from the touchpoint log.",
        version="1",
    )
    app.state.engine = engine

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

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/customers/{customer_id}/timeline", tags=["customers"])
    def timeline(
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
        return {
            "customer_id": page.customer_id,
            "events": page.rows,
            "next_cursor": page.next_cursor,
        }

    @app.get("/v1/customers/{customer_id}/profile", tags=["customers"])
    def profile(conn: Conn, customer_id: str) -> dict[str, Any]:
        """Identifiers, latest traits, first/last seen, channels, preferences, consent."""
        return queries.customer_profile(conn, customer_id, rules)

    @app.get("/v1/customers/{customer_id}/contact-policy", tags=["customers"])
    def contact_policy(
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
        return {"customer_id": resolved, **decision.to_json()}

    @app.get("/v1/contact-violations", tags=["customers"])
    def violations(
        conn: Conn,
        customer: Annotated[str | None, Query(description="Only this customer.")] = None,
        rule: Annotated[str | None, Query(description="Only this rule.")] = None,
        limit: Annotated[int, Query(description="Latest rows (1-1000).")] = 50,
    ) -> dict[str, Any]:
        """Outbound touchpoints that broke the contact policy in force when they happened:
        counts per rule and the latest rows (rapport.contact_violations)."""
        return contact_violations(
            conn, customer=customer, rule=rule, limit=limit, identity_rules=rules
        )

    @app.get("/v1/customers/{customer_id}/identity", tags=["customers"])
    def identity(conn: Conn, customer_id: str) -> dict[str, Any]:
        """The customer's identifiers and every link between them, with its evidence and
        state (active, unlinked, refused, blocked). Links are made and undone by posting
        identity.linked / identity.unlinked events to the collector."""
        return identity_of(conn, queries.resolve_customer(conn, customer_id, rules))

    @app.get("/v1/customers/{customer_id}/scores", tags=["scores"])
    def scores(
        conn: Conn,
        customer_id: str,
        as_of: Annotated[str | None, Query(description=AS_OF_HELP)] = None,
        explain: bool = False,
    ) -> dict[str, Any]:
        """Scores as of `as_of` (default now); `explain` adds inputs and source events."""
        return queries.customer_scores(
            conn,
            customer_id,
            as_of=parse_as_of(as_of) if as_of else datetime.now(UTC),
            explain=explain,
            params=params,
            rules=rules,
        )

    @app.get("/v1/top", tags=["scores"])
    def top(
        conn: Conn,
        by: Annotated[str, Query(pattern="^(clv|p_active|rfm|engagement|past_value)$")] = "clv",
        n: Annotated[int, Query(ge=1, le=queries.MAX_PAGE)] = 20,
    ) -> list[dict[str, Any]]:
        """The best customers by a materialized score."""
        return queries.top_customers(conn, by=by, n=n)

    @app.get("/v1/segments", tags=["scores"])
    def segments(conn: Conn) -> dict[str, Any]:
        """Customers per value tier and RFM band."""
        return queries.segments(conn)

    return app
