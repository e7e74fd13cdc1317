"""Analyst commands: timeline, profile (and scores, top, segments) as rich tables or JSON."""

from __future__ import annotations

import gc
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console

from projections.query_time import parse_as_of, parse_instant

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]
DENIED = 3  # can-contact's exit status for a denied contact (errors exit 1 or 2)


def parse_time(value: str | None, parameter: str) -> datetime | None:
    """A bound (since, until): ISO 8601, a bare date is its midnight UTC."""
    return None if value is None else parse_instant(value, parameter)


def parse_when(value: str | None) -> datetime | None:
    """An as-of: a bare date is the end of that day, inclusive (lifetimes' convention)."""
    return None if value is None else parse_as_of(value)


def print_json(console: Console, data: Any) -> None:
    console.print_json(orjson.dumps(data, default=str).decode(), highlight=False)


def register(app: typer.Typer, out: Console, settings_factory: Any) -> None:
    @app.command()
    def timeline(
        customer: Annotated[
            str, typer.Argument(help="Customer id, or any identifier (e-mail, phone, kind:value).")
        ],
        limit: Annotated[int, typer.Option(help="Page size (1-1000).")] = 50,
        cursor: Annotated[
            str | None, typer.Option(help="next_cursor of the previous page.")
        ] = None,
        channel: Annotated[list[str] | None, typer.Option(help="Only these channels.")] = None,
        event_type: Annotated[
            list[str] | None, typer.Option("--type", help="Only these types.")
        ] = None,
        since: Annotated[str | None, typer.Option(help="From this event time (ISO 8601).")] = None,
        until: Annotated[str | None, typer.Option(help="Before this event time.")] = None,
        as_of: Annotated[
            str | None, typer.Option(help="History as it stood at event time T.")
        ] = None,
        newest_first: Annotated[bool, typer.Option(help="Newest first.")] = False,
        as_json: JsonFlag = False,
    ) -> None:
        """A customer's touchpoints in event-time order."""
        from infra import bootstrap
        from infra.render import timeline_table
        from projections.postgres.queries import customer_timeline

        settings = settings_factory()
        engine = bootstrap.engine(settings)
        with engine.connect() as conn:
            page = customer_timeline(
                conn,
                customer,
                rules=bootstrap.identity_rules(settings),
                limit=limit,
                cursor=cursor,
                channels=channel,
                types=event_type,
                since=parse_time(since, "since"),
                until=parse_time(until, "until"),
                as_of=parse_when(as_of),
                newest_first=newest_first,
            )
        if as_json:
            page_json = {
                "customer_id": page.customer_id,
                "events": page.rows,
                "next_cursor": page.next_cursor,
            }
            print_json(out, page_json)
            return
        out.print(timeline_table(page.customer_id, page.rows))
        if page.next_cursor:
            out.print(f"more: --cursor {page.next_cursor}")

    @app.command()
    def profile(
        customer: Annotated[
            str, typer.Argument(help="Customer id, or any identifier (e-mail, phone, kind:value).")
        ],
        as_json: JsonFlag = False,
    ) -> None:
        """Identifiers, traits, first/last seen, channels, preferences and consent."""
        from infra import bootstrap
        from infra.render import profile_tables
        from projections.postgres.queries import customer_profile

        settings = settings_factory()
        engine = bootstrap.engine(settings)
        with engine.connect() as conn:
            data = customer_profile(conn, customer, bootstrap.identity_rules(settings))
        if as_json:
            print_json(out, data)
            return
        for table in profile_tables(data):
            out.print(table)

    @app.command("can-contact")
    def can_contact(
        customer: Annotated[
            str, typer.Argument(help="Customer id, or any identifier (e-mail, phone, kind:value).")
        ],
        channel: Annotated[str, typer.Option(help="Channel of the contact, e.g. email.")],
        purpose: Annotated[str, typer.Option(help="e.g. marketing, service.")] = "marketing",
        topic: Annotated[
            str | None, typer.Option(help="What it is about (checked against unwanted topics).")
        ] = None,
        at: Annotated[
            str | None, typer.Option(help="When (ISO 8601); default now. Policy in event time.")
        ] = None,
        as_json: JsonFlag = False,
    ) -> None:
        """May we contact the customer? Allow or deny, with every rule's reason and the event
        it comes from. Exit status 0 when allowed, 3 when denied."""
        from infra import bootstrap
        from infra.render import decision_table
        from projections.postgres.contact_policy import contact_decision

        settings = settings_factory()
        engine = bootstrap.engine(settings)
        when = parse_time(at, "at") or datetime.now(UTC)
        with engine.connect() as conn:
            customer_id, decision = contact_decision(
                conn,
                customer,
                channel=channel,
                purpose=purpose,
                topic=topic,
                at=when,
                rules=bootstrap.contact_rules(settings),
                identity_rules=bootstrap.identity_rules(settings),
            )
        if as_json:
            print_json(out, {"customer_id": customer_id, **decision.to_json()})
        else:
            out.print(decision_table(customer_id, decision))
        if not decision.allowed:
            raise typer.Exit(DENIED)

    @app.command("contact-violations")
    def contact_violations(
        customer: Annotated[
            str | None, typer.Argument(help="Only this customer (any identifier).")
        ] = None,
        rule: Annotated[str | None, typer.Option(help="Only this rule.")] = None,
        limit: Annotated[int, typer.Option(help="Latest rows to show (1-1000).")] = 20,
        as_json: JsonFlag = False,
    ) -> None:
        """Outbound touchpoints that broke the contact policy in force when they happened."""
        from infra import bootstrap
        from infra.render import violations_table
        from projections.postgres import contact_policy

        settings = settings_factory()
        engine = bootstrap.engine(settings)
        with engine.connect() as conn:
            data = contact_policy.contact_violations(
                conn,
                customer=customer,
                rule=rule,
                limit=limit,
                identity_rules=bootstrap.identity_rules(settings),
            )
        if as_json:
            print_json(out, data)
        else:
            out.print(violations_table(data))

    @app.command()
    def scores(
        customer: Annotated[
            str, typer.Argument(help="Customer id, or any identifier (e-mail, phone, kind:value).")
        ],
        as_of: Annotated[
            str | None, typer.Option(help="Scores as of T; a bare date is the end of that day.")
        ] = None,
        explain: Annotated[bool, typer.Option(help="Show inputs and source events.")] = False,
        as_json: JsonFlag = False,
    ) -> None:
        """Recency, frequency, T, monetary value, P(Active), PCV, CLV, SoW, engagement."""
        from infra import bootstrap
        from infra.render import scores_table
        from projections.postgres.queries import customer_scores

        settings = settings_factory()
        engine = bootstrap.engine(settings)
        when = parse_when(as_of) or datetime.now(UTC)
        with engine.connect() as conn:
            data = customer_scores(
                conn,
                customer,
                as_of=when,
                explain=explain or as_json,
                params=bootstrap.score_parameters(settings),
                rules=bootstrap.identity_rules(settings),
            )
        if as_json:
            print_json(out, data)
            return
        out.print(scores_table(customer, data))
        if explain:
            print_json(out, {**data["lineage"], "base": data["base_lineage"]})

    @app.command("refresh-scores")
    def refresh_scores_cmd(
        as_of: Annotated[
            str | None,
            typer.Option(
                help="Score as of T (default: the worker's day, RAPPORT_SCORES_AS_OF or "
                "today); a date is its end."
            ),
        ] = None,
    ) -> None:
        """Rescore and rank every customer at once. The worker keeps the population
        current by itself; this is for a changed score parameter (RAPPORT_SCORE_*), a
        worker that runs with RAPPORT_SCORES_EVERY_S=0, or a look as of another day (a
        running worker moves the rows back to its own day, a few thousand a cycle)."""
        import time

        from infra import bootstrap
        from projections.postgres.population import population_as_of, score_population

        settings = settings_factory()
        engine = bootstrap.engine(settings)
        when = parse_when(as_of) or population_as_of(
            settings.scores_as_of or datetime.now(UTC).date()
        )
        began = time.monotonic()
        count = score_population(
            engine,
            settings.projection_schema,
            as_of=when,
            params=bootstrap.score_parameters(settings),
            contact_rules=bootstrap.contact_rules(settings),
        )
        out.print(
            f"scored {count} customers as of {when.isoformat()} in {time.monotonic() - began:.1f}s"
        )

    @app.command()
    def top(
        by: Annotated[
            str, typer.Option(help="clv, p_active, rfm, engagement or past_value")
        ] = "clv",
        n: Annotated[int, typer.Option("-n", help="How many (1-1000).")] = 20,
        as_json: JsonFlag = False,
    ) -> None:
        """The best customers by a score, as the worker keeps them (each row says its as-of)."""
        from infra import bootstrap
        from infra.render import top_table
        from projections.postgres.queries import top_customers

        engine = bootstrap.engine(settings_factory())
        with engine.connect() as conn:
            rows = top_customers(conn, by=by, n=n)
        if as_json:
            print_json(out, rows)
            return
        out.print(top_table(by, rows))

    @app.command("segments")
    def segments_cmd(as_json: JsonFlag = False) -> None:
        """Customers per value tier (MVC, MGC, BZ, other) and per RFM band."""
        from infra import bootstrap
        from infra.render import segment_tables
        from projections.postgres.queries import segments

        engine = bootstrap.engine(settings_factory())
        with engine.connect() as conn:
            data = segments(conn)
        if as_json:
            print_json(out, data)
            return
        for table in segment_tables(data):
            out.print(table)

    @app.command()
    def api(
        host: Annotated[str | None, typer.Option(help="Default: RAPPORT_API_HOST.")] = None,
        port: Annotated[int | None, typer.Option(help="Default: RAPPORT_API_PORT.")] = None,
    ) -> None:
        """Serve the HTTP read API (OpenAPI docs at /docs)."""
        import uvicorn

        from infra import bootstrap

        settings = settings_factory()
        app = bootstrap.read_api_app(settings)
        host, port = host or settings.api_host, port or settings.api_port
        # What start-up built lives as long as the server: kept out of the collector's
        # rescans, which otherwise add tens of ms to a request now and then (a historic
        # score of a 10k-event customer: p99 78 -> 28 ms).
        gc.collect()
        gc.freeze()
        from observability.logs import logging_config

        uvicorn.run(
            app,
            host=host,
            port=port,
            log_level="warning",
            log_config=logging_config(settings.log_format, "warning")
            or uvicorn.config.LOGGING_CONFIG,
        )
