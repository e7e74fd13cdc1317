"""Rich tables for the command line."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.table import Table


def timeline_table(customer_id: str, rows: Sequence[dict[str, Any]]) -> Table:
    table = Table(
        title=f"Timeline of {customer_id} ({len(rows)} touchpoints)", title_justify="left"
    )
    table.add_column("occurred at (UTC)", no_wrap=True)
    table.add_column("channel")
    table.add_column("type")
    table.add_column("summary")
    for row in rows:
        table.add_row(
            row["occurred_at"].strftime("%Y-%m-%d %H:%M"),
            row["channel"],
            row["type"],
            row["summary"],
        )
    return table
