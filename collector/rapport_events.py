"""POST /v1/events: events in Rapport's own schema, one (a JSON object) or a batch (an array).

Each event's source system and received_at come from the collector, not the body, and its
occurred_at may not be far in the future (`collector.provenance`).
"""

from __future__ import annotations

from typing import Any

from collector.errors import MalformedRequest, Problem
from collector.provenance import Provenance
from schemas import Envelope
from schemas.errors import EventValidationError, UnknownEventType
from schemas.validation import event_from_dict


def parse_events(body: Any, problems: list[Problem], provenance: Provenance) -> list[Envelope]:
    """Validate (and upcast) each event; collect what is wrong into `problems`.

    `provenance` fills in each event's source system and received_at and refuses what the
    body may not say about them, and an occurred_at too far in the future.
    """
    if isinstance(body, dict):
        items, prefix = [body], None
    elif isinstance(body, list):
        items, prefix = body, ""
    else:
        raise MalformedRequest(
            f"expected an event (a JSON object) or a batch (an array), got {type(body).__name__}"
        )
    events = []
    for i, raw in enumerate(items):
        where = "" if prefix is None else f"[{i}]."
        if not isinstance(raw, dict):
            problems.append(Problem(where.rstrip(".") or "<body>", raw, "expected a JSON object"))
            continue
        claimed, refused = provenance.claim(raw, where)
        problems += refused
        try:
            event = event_from_dict(claimed)
        except UnknownEventType as exc:
            problems.append(Problem(f"{where}type", raw.get("type"), str(exc)))
            continue
        except EventValidationError as exc:
            problems += [
                # a missing field's "value" is the enclosing object: say nothing rather than that
                Problem(where + path, None if rule == "Field required" else value, rule)
                for path, value, rule in exc.problems
            ]
            continue
        too_late = provenance.future(event.occurred_at, f"{where}occurred_at", raw["occurred_at"])
        if too_late is not None:
            problems.append(too_late)
        elif not refused:
            events.append(event)
    return events
