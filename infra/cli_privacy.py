"""`rapport erase` and `rapport export-subject`: the data subject's rights (docs/privacy.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.text import Text

from infra.cli_query import print_json

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def register(app: typer.Typer, out: Console, settings_factory: Any) -> None:
    @app.command("erase")
    def erase(
        customer: Annotated[str, typer.Argument(help="Customer id or any identifier.")],
        reason: Annotated[
            str, typer.Option(help="Why: the request's reference (no personal data).")
        ],
        as_json: JsonFlag = False,
    ) -> None:
        """Erase a customer: destroy their data keys, suppress their identifiers, remove
        their rows from every projection version, and record privacy.erased in the log."""
        from infra import bootstrap

        report = bootstrap.erase(settings_factory(), customer, reason)
        data = report.to_json()
        if as_json:
            print_json(out, data)
            return
        removed = ", ".join(f"{v}: {n}" for v, n in report.rows_removed.items()) or "none"
        out.print(
            Text(
                f"erased {data['customer']} (erasure {data['erasure_id']}): "
                f"{data['identifiers_suppressed']} identifiers suppressed, "
                f"{data['keys_destroyed']} data keys destroyed, timeline rows removed: {removed}"
            )
        )

    @app.command("export-subject")
    def export_subject(
        customer: Annotated[str, typer.Argument(help="Customer id or any identifier.")],
        out_file: Annotated[
            Path | None, typer.Option("--out", help="Write here (default: standard output).")
        ] = None,
    ) -> None:
        """Everything Rapport holds about a person, as JSON (a subject access request)."""
        from infra import bootstrap
        from privacy.subject import export_subject as export

        settings = settings_factory()
        with bootstrap.engine(settings).connect() as conn:
            data = export(
                conn,
                bootstrap.key_store(settings),
                bootstrap.master_secrets(settings).pepper,
                customer,
                rules=bootstrap.identity_rules(settings),
                params=bootstrap.score_parameters(settings),
            )
        encoded = orjson.dumps(data, default=str, option=orjson.OPT_INDENT_2)
        if out_file is None:
            out.file.write(encoded.decode() + "\n")
            return
        out_file.write_bytes(encoded + b"\n")
        out.print(
            f"wrote {len(data['timeline'])} touchpoints of {data['customer_id']} to {out_file}"
        )
