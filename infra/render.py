"""Rich tables for the command line."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.table import Table
from rich.text import Text

from projections.contact_policy import Decision


def timeline_table(customer_id: str, rows: Sequence[dict[str, Any]]) -> Table:
    table = Table(
        title=Text(f"Timeline of {customer_id} ({len(rows)} touchpoints)"), title_justify="left"
    )
    table.add_column("occurred at (UTC)", no_wrap=True)
    table.add_column("channel")
    table.add_column("type")
    table.add_column("summary")
    for row in rows:
        table.add_row(
            *_cells(
                row["occurred_at"].strftime("%Y-%m-%d %H:%M"),
                row["channel"],
                row["type"],
                row["summary"],
            )
        )
    return table


def profile_tables(profile: dict[str, Any]) -> list[Table]:
    head = Table(
        title=Text(f"Profile of {profile['customer_id']}"), title_justify="left", show_header=False
    )
    head.add_column("field", style="bold")
    head.add_column("value")
    head.add_row(*_cells("identifiers", ", ".join(profile["identifiers"])))
    head.add_row(*_cells("first seen", _when(profile["first_seen"])))
    head.add_row(*_cells("last seen", _when(profile["last_seen"])))
    head.add_row(*_cells("events", str(profile["events"])))
    for key, value in profile["traits"].items():
        head.add_row(*_cells(f"trait: {key}", str(value)))
    prefs = profile["preferences"]  # only what the customer stated
    if "allowed_channels" in prefs:
        allowed = ", ".join(prefs["allowed_channels"]) or "none (no contact)"
        head.add_row(*_cells("allowed channels", allowed))
    if "max_contacts_per_week" in prefs:
        head.add_row(*_cells("max contacts/week", str(prefs["max_contacts_per_week"])))
    if "quiet_hours" in prefs:
        q = prefs["quiet_hours"]
        head.add_row(*_cells("quiet hours", f"{q['start']}–{q['end']} {q['timezone']}"))
    for field, label in (("topics", "wanted topics"), ("unwanted_topics", "unwanted topics")):
        if field in prefs:
            head.add_row(*_cells(label, ", ".join(prefs[field]) or "none"))
    channels = Table(title="Channels", title_justify="left")
    channels.add_column("channel")
    channels.add_column("events", justify="right")
    channels.add_column("last contact (UTC)")
    for channel, count in sorted(profile["channel_counts"].items(), key=lambda kv: -kv[1]):
        channels.add_row(
            *_cells(channel, str(count), profile["last_contact"].get(channel, "")[:16])
        )
    tables = [head, channels]
    if profile["consent"]:
        consent = Table(title="Consent", title_justify="left")
        consent.add_column("channel:purpose")
        consent.add_column("state")
        consent.add_column("since")
        for key, state in sorted(profile["consent"].items()):
            consent.add_row(
                *_cells(key, "opted in" if state["opted_in"] else "opted out", state["at"][:16])
            )
        tables.append(consent)
    return tables


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value is not None else "—"


def _num(value: Any, digits: int = 2) -> str:
    if value is None:
        return "—"
    if isinstance(value, int):
        return str(value)
    return f"{float(value):,.{digits}f}"


def scores_table(customer_id: str, data: dict[str, Any]) -> Table:
    table = Table(
        title=Text(f"Scores of {customer_id} as of {data['as_of']:%Y-%m-%d %H:%M} UTC"),
        title_justify="left",
        show_header=False,
    )
    table.add_column("score", style="bold")
    table.add_column("value", justify="right")
    for label, key, digits in (
        ("frequency (repeat periods)", "frequency", 0),
        ("recency (days)", "recency", 0),
        ("T (days)", "t", 0),
        ("monetary value", "monetary_value", 2),
        ("P(Active)", "p_active", 4),
        ("past customer value", "past_value", 2),
        ("CLV", "clv", 2),
        ("net contribution", "net_contribution", 2),
        ("share of wallet", "share_of_wallet", 3),
        ("engagement", "engagement", 3),
    ):
        table.add_row(*_cells(label, _num(data.get(key), digits)))
    if data.get("currency"):
        table.add_row(*_cells("money in", data["currency"]))
    if source := data.get("computed_from"):
        shown = {"score_state": "score state (live)"}.get(source, source)
        table.add_row(*_cells("computed from", shown))
    for other in data.get("other_currencies") or ():
        table.add_row(
            *_cells(
                f"in {other['currency']} ({other['purchases']} purchases)",
                f"past {_num(other['past_value'], 2)} · CLV {_num(other['clv'], 2)}",
            )
        )
    base = data.get("base")
    if base:
        table.add_row(
            *_cells(
                "RFM (R/F/M)",
                f"{base['rfm_recency']}/{base['rfm_frequency']}/"
                f"{base['rfm_monetary']} = {_num(base['rfm_score'], 1)}",
            )
        )
        table.add_row(*_cells("value tier", f"{base['tier']} (as of {base['as_of']:%Y-%m-%d})"))
    else:
        table.add_row(*_cells("RFM, tier", "not ranked yet (the worker ranks within seconds)"))
    return table


def top_table(by: str, rows: Sequence[dict[str, Any]]) -> Table:
    as_of = rows[0]["as_of"].strftime("%Y-%m-%d %H:%M") if rows else "—"
    table = Table(
        title=Text(f"Top {len(rows)} by {by} (scores as of {as_of})"), title_justify="left"
    )
    for column in ("#", "customer", "CLV", "P(Active)", "RFM", "engagement", "past value", "tier"):
        table.add_column(column, justify="left" if column in ("customer", "tier") else "right")
    for rank, r in enumerate(rows, 1):
        table.add_row(
            *_cells(
                str(rank),
                r["customer_id"],
                _num(r["clv"]),
                _num(r["p_active"], 3),
                _num(r["rfm_score"], 1),
                _num(r["engagement"], 2),
                _num(r["past_value"]),
                r["tier"] or "—",
            )
        )
    return table


def segment_tables(data: dict[str, Any]) -> list[Table]:
    as_of = data["as_of"].strftime("%Y-%m-%d %H:%M") if data["as_of"] else "not ranked yet"
    tiers = Table(title=Text(f"Value tiers (as of {as_of})"), title_justify="left")
    for column in (
        "tier",
        "customers",
        "avg CLV",
        "avg P(Active)",
        "total past value",
        "avg engagement",
    ):
        tiers.add_column(column, justify="left" if column == "tier" else "right")
    for r in data["tiers"]:
        tiers.add_row(
            *_cells(
                r["tier"] or "—",
                str(r["customers"]),
                _num(r["avg_clv"]),
                _num(r["avg_p_active"], 3),
                _num(r["total_past_value"]),
                _num(r["avg_engagement"]),
            )
        )
    bands = Table(title="RFM bands", title_justify="left")
    for column in ("RFM score", "customers", "avg CLV"):
        bands.add_column(column, justify="right")
    for r in data["rfm_bands"]:
        bands.add_row(*_cells(f"{int(r['rfm_band'])}+", str(r["customers"]), _num(r["avg_clv"])))
    return [tiers, bands]


def _cells(*values: object) -> list[Text]:
    """Cells as plain text: customer data must not be read as rich markup or emoji codes."""
    return [value if isinstance(value, Text) else Text(str(value)) for value in values]


def decision_table(customer_id: str, decision: Decision) -> Table:
    r = decision.request
    verdict = "ALLOW" if decision.allowed else "DENY"
    about = f" about {r.topic!r}" if r.topic else ""
    table = Table(
        title=Text(
            f"{verdict}: {r.purpose} via {r.channel}{about} to {customer_id} "
            f"at {r.at.isoformat(timespec='minutes')}"
        ),
        title_justify="left",
    )
    table.add_column("rule")
    table.add_column("verdict")
    table.add_column("reason")
    table.add_column("from event (event time)")
    for check in decision.checks:
        source = f"{check.event_id} ({_when(check.at)})" if check.event_id else ""
        table.add_row(
            *_cells(check.rule, "allow" if check.allowed else "DENY", check.reason, source)
        )
    return table


def violations_table(data: dict[str, Any]) -> Table:
    whose = f" of {data['customer_id']}" if data["customer_id"] else ""
    counts = ", ".join(f"{rule} {n:,}" for rule, n in data["by_rule"].items()) or "none"
    table = Table(title=Text(f"Contact-policy violations{whose}: {counts}"), title_justify="left")
    for column in ("occurred at (UTC)", "customer", "touchpoint", "rule", "reason"):
        table.add_column(column)
    for v in data["violations"]:
        touchpoint = f"{v['type']} ({v['purpose']}{', ' + v['topic'] if v['topic'] else ''})"
        table.add_row(
            *_cells(_when(v["occurred_at"]), v["customer_id"], touchpoint, v["rule"], v["reason"])
        )
    return table
