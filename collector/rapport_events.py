"""POST /v1/events: events in Rapport's own schema, one (a JSON object) or a batch (an array)."""

from __future__ import annotations

from typing import Any

from collector.errors import MalformedRequest, Problem
from schemas import Envelope
from schemas.errors import EventValidationError, UnknownEventType
from schemas.validation import event_from_dict


def parse_events(body: Any, problems: list[Problem]) -> list[Envelope]:
    """Validate (and upcast) each event; collect what is wrong into `problems`."""
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
        try:
            events.append(event_from_dict(raw))
        except UnknownEventType as exc:
            problems.append(Problem(f"{where}type", raw.get("type"), str(exc)))
        except EventValidationError as exc:
            problems += [
                # a missing field's "value" is the enclosing object: say nothing rather than that
                Problem(where + path, None if rule == "Field required" else value, rule)
                for path, value, rule in exc.problems
            ]
    return events
