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


def profile_tables(profile: dict[str, Any]) -> list[Table]:
    head = Table(
        title=f"Profile of {profile['customer_id']}", title_justify="left", show_header=False
    )
    head.add_column("field", style="bold")
    head.add_column("value")
    head.add_row("identifiers", ", ".join(profile["identifiers"]))
    head.add_row("first seen", _when(profile["first_seen"]))
    head.add_row("last seen", _when(profile["last_seen"]))
    head.add_row("events", str(profile["events"]))
    for key, value in profile["traits"].items():
        head.add_row(f"trait: {key}", str(value))
    if profile["preferences"]:
        prefs = profile["preferences"]
        head.add_row("allowed channels", ", ".join(prefs.get("allowed_channels") or []) or "none")
        if prefs.get("max_contacts_per_week") is not None:
            head.add_row("max contacts/week", str(prefs["max_contacts_per_week"]))
        if prefs.get("quiet_hours"):
            q = prefs["quiet_hours"]
            head.add_row("quiet hours", f"{q['start']}–{q['end']} {q['timezone']}")
    channels = Table(title="Channels", title_justify="left")
    channels.add_column("channel")
    channels.add_column("events", justify="right")
    channels.add_column("last contact (UTC)")
    for channel, count in sorted(profile["channel_counts"].items(), key=lambda kv: -kv[1]):
        channels.add_row(channel, str(count), profile["last_contact"].get(channel, "")[:16])
    tables = [head, channels]
    if profile["consent"]:
        consent = Table(title="Consent", title_justify="left")
        consent.add_column("channel:purpose")
        consent.add_column("state")
        consent.add_column("since")
        for key, state in sorted(profile["consent"].items()):
            consent.add_row(key, "opted in" if state["opted_in"] else "opted out", state["at"][:16])
        tables.append(consent)
    return tables


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value is not None else "—"
