"""`rapport identity show|link|unlink`: the identity graph, and an operator's corrections."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from infra.cli_query import print_json

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def register(app: typer.Typer, out: Console, settings_factory: Any) -> None:
    identity = typer.Typer(
        no_args_is_help=True, help="The identity graph: show a customer's, link, unlink."
    )
    app.add_typer(identity, name="identity")

    @identity.command("show")
    def show(
        customer: Annotated[str, typer.Argument(help="Customer id or any identifier.")],
        as_json: JsonFlag = False,
    ) -> None:
        """A customer's identifiers and every link touching them, with evidence and state."""
        from infra import bootstrap
        from projections.postgres.identity import identity_of
        from projections.postgres.queries import resolve_customer

        settings = settings_factory()
        with bootstrap.engine(settings).connect() as conn:
            data = identity_of(
                conn, resolve_customer(conn, customer, bootstrap.identity_rules(settings))
            )
        if as_json:
            print_json(out, data)
            return
        out.print(Text(f"customer {data['customer_id']}, known by:"))
        for node in data["identifiers"]:
            shared = node["shared_by_customers"]
            note = f"  (shared by {shared} customers: merges nobody)" if shared else ""
            out.print(Text(f"  {node['identifier']}{note}"))
        table = Table(title="links", title_justify="left")
        for column in ("between", "and", "state", "why", "first evidence"):
            table.add_column(column)
        for link in data["links"]:
            first = (
                f"{link['first_at']:%Y-%m-%d %H:%M} {link['first_source']} {link['first_event_id']}"
                if link["first_at"]
                else "—"
            )
            why = link["reason"] or link["unlink_reason"] or ""
            cells = (link["a"], link["b"], link["state"], why, first)
            table.add_row(*(Text(str(c)) for c in cells))
        out.print(table)

    @identity.command("link")
    def link(
        identifier: Annotated[str, typer.Argument(help="'kind:value', e.g. email:an@x.com")],
        linked_to: Annotated[str, typer.Argument(help="'kind:value' of the same customer.")],
        evidence: Annotated[str | None, typer.Option(help="Why they are one person.")] = None,
        force: Annotated[bool, typer.Option(help="Join even two different customer ids.")] = False,
    ) -> None:
        """Publish an identity.linked event (the worker applies it)."""
        from infra import bootstrap
        from producers.identity import link_event

        event = link_event(identifier, linked_to, evidence=evidence, forced=force)
        with bootstrap.publisher(settings_factory()) as publisher:
            publisher.publish_and_wait(event)
        out.print(f"linked {identifier} to {linked_to} (event {event.event_id})")

    @identity.command("unlink")
    def unlink(
        identifier: Annotated[str, typer.Argument(help="'kind:value'.")],
        unlinked_from: Annotated[str, typer.Argument(help="'kind:value' it was linked to.")],
        reason: Annotated[str, typer.Option(help="Why the link was wrong.")],
    ) -> None:
        """Publish an identity.unlinked event: reads return what they would without the link."""
        from infra import bootstrap
        from producers.identity import unlink_event

        event = unlink_event(identifier, unlinked_from, reason=reason)
        with bootstrap.publisher(settings_factory()) as publisher:
            publisher.publish_and_wait(event)
        out.print(f"unlinked {identifier} from {unlinked_from} (event {event.event_id})")
