"""Access commands: `rapport api-keys add|list|revoke` (the read API's keys and roles)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

ROLE_HELP = (
    "agent: one customer in full; analyst: customers and aggregates, personal data masked; "
    "admin: manages keys, reads no customer."
)


def register(app: typer.Typer, out: Console, settings_factory: Any) -> None:
    keys_app = typer.Typer(no_args_is_help=True, help="Manage the read API's keys and roles.")
    app.add_typer(keys_app, name="api-keys")
    err = Console(stderr=True, soft_wrap=True)

    @keys_app.command("add")
    def add(
        name: Annotated[str, typer.Argument(help="Who or what holds the key, e.g. crm-agents.")],
        role: Annotated[str, typer.Option(help=ROLE_HELP)],
    ) -> None:
        """Add a key and print it (shown this once; only its hash is stored)."""
        from infra import bootstrap
        from readapi.keys import parse_role

        key = bootstrap.api_keys(settings_factory()).add(name, parse_role(role))
        err.print(f"API key {name!r} ({role}) added; the key (shown once):")
        out.print(key, highlight=False)

    @keys_app.command("list")
    def list_keys() -> None:
        """List the keys (names, roles and prefixes; never a key)."""
        from infra import bootstrap

        table = Table(title="API keys", title_justify="left")
        for column in ("name", "role", "key", "created", "revoked"):
            table.add_column(column)
        for k in bootstrap.api_keys(settings_factory()).list():
            table.add_row(
                k.name,
                k.role.value,
                k.key_prefix + "…",
                f"{k.created_at:%Y-%m-%d %H:%M}",
                f"{k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "",
            )
        out.print(table)

    @keys_app.command("revoke")
    def revoke(name: Annotated[str, typer.Argument()]) -> None:
        """Revoke a key: the read API refuses it (401) within RAPPORT_API_KEY_CACHE_S."""
        from infra import bootstrap

        bootstrap.api_keys(settings_factory()).revoke(name)
        out.print(f"revoked API key {name!r}")
