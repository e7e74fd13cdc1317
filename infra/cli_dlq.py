"""`rapport dlq list|show|redrive`: inspect parked records and re-drive them after a fix."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from infra.cli_query import print_json


def register(app: typer.Typer, out: Console, settings_factory: Any) -> None:
    dlq = typer.Typer(no_args_is_help=True, help="The dead-letter topic: list, show, redrive.")
    app.add_typer(dlq, name="dlq")

    @dlq.command("list")
    def list_parked(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
        """Every parked record with its reason."""
        from streams.redrive import read_parked

        settings = settings_factory()
        records = list(read_parked(settings.bootstrap, settings.dlq_topic))
        if as_json:
            print_json(out, [_summary(r) for r in records])
            return
        table = Table(title=f"{settings.dlq_topic}: {len(records)} parked", title_justify="left")
        for column in ("ref", "failed at", "from", "stage", "event_id", "error"):
            table.add_column(column)
        for r in records:
            failed = r.failed_at.strftime("%Y-%m-%d %H:%M:%S") if r.failed_at else ""
            cells = (r.ref, failed, r.source, r.stage, r.event_id or "—", r.error[:120])
            table.add_row(*(Text(cell) for cell in cells))  # data, not rich markup
        out.print(table)

    @dlq.command("show")
    def show(
        ref: Annotated[str, typer.Argument(help="PARTITION:OFFSET from `rapport dlq list`.")],
        raw: Annotated[bool, typer.Option(help="Print only the original bytes (to edit).")] = False,
    ) -> None:
        """One parked record: reason, headers and the original bytes."""
        from streams.redrive import find_parked

        settings = settings_factory()
        (record,) = find_parked(settings.bootstrap, settings.dlq_topic, [ref])
        if raw:
            out.print((record.value or b"").decode(errors="replace"), markup=False, highlight=False)
            return
        print_json(
            out,
            {
                **_summary(record),
                "value": (record.value or b"").decode(errors="replace"),
                "headers": {k: v.decode(errors="replace") for k, v in record.headers},
            },
        )

    @dlq.command("redrive")
    def redrive_cmd(
        refs: Annotated[list[str] | None, typer.Argument(help="PARTITION:OFFSET ...")] = None,
        all_: Annotated[bool, typer.Option("--all", help="Every parked record.")] = False,
        from_file: Annotated[
            Path | None, typer.Option(help="A corrected event (same event_id) for one ref.")
        ] = None,
    ) -> None:
        """Validate and re-publish parked records to the touchpoint topic."""
        from streams.redrive import RedriveError, find_parked, read_parked, redrive

        settings = settings_factory()
        if all_ == bool(refs):
            raise RedriveError("name the records to re-drive (PARTITION:OFFSET ...) or pass --all")
        records = (
            list(read_parked(settings.bootstrap, settings.dlq_topic))
            if all_
            else find_parked(settings.bootstrap, settings.dlq_topic, refs or [])
        )
        from infra import bootstrap

        replacement = from_file.read_bytes() if from_file else None
        sent = redrive(
            settings.bootstrap,
            settings.dlq_topic,
            settings.topic,
            records,
            replacement=replacement,
            unsealer=bootstrap.unsealers(settings)(),
            seal=bootstrap.sealer(settings).seal,
        )
        out.print(f"re-drove {len(sent)} record(s) to {settings.topic}: {', '.join(sent)}")


def _summary(record: Any) -> dict[str, Any]:
    return {
        "ref": record.ref,
        "failed_at": record.failed_at,
        "source": record.source,
        "event_id": record.event_id,
        "stage": record.stage,
        "error_type": record.error_type,
        "error": record.error,
    }
