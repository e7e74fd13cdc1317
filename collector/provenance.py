"""What an event may not say about itself: who sent it, when Rapport got it, a future time.

A write key belongs to one source, so the key, not the body, says which system an event
comes from: a body that names another system is refused (a leaked key must not let anyone
post as every source). `received_at` is when Rapport accepted the event, so the collector
stamps it and refuses a body that brings its own. An `occurred_at` further in the future
than the allowed clock skew is refused: it would sit at the head of every timeline and
window until that day comes. An erasure is recorded only by Rapport (`rapport erase`): a
source cannot post one.

Pure: the HTTP layer hands in the key's source name, the request's arrival time and the
allowed skew; each check returns problems (path, value, rule) for the request's 422.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from collector.errors import Problem
from schemas import REGISTRY
from schemas.errors import UnknownEventType

SKEW_SETTING = "RAPPORT_COLLECTOR_MAX_FUTURE_SKEW_S"
DEFAULT_MAX_FUTURE_SKEW = timedelta(minutes=5)
RECEIVED_AT_RULE = "received_at is set by Rapport when it accepts the event; do not send it"
RAPPORT_ONLY_TYPES = frozenset({"privacy.erased"})
RAPPORT_ONLY_RULE = "privacy.erased is recorded by Rapport (`rapport erase`), not by a source"


@dataclass(frozen=True)
class Provenance:
    """What the collector, not the request body, says about the events of one request."""

    source: str  # the write key's source name
    received_at: datetime  # when the collector got the request (timezone-aware)
    max_future_skew: timedelta = DEFAULT_MAX_FUTURE_SKEW

    def claim(
        self, raw: Mapping[str, Any], where: str = ""
    ) -> tuple[dict[str, Any], list[Problem]]:
        """An event in Rapport's schema, as the collector validates it, and what it may not say.

        The returned event has `source.system` from the write key (the body's
        `source.channel` kept; without any `source`, the channel of its type) and the
        collector's `received_at`. Problems: a `source.system` other than the key's source, a
        `received_at` in the body. `where` prefixes the paths (e.g. "[3].").
        """
        problems: list[Problem] = []
        event = dict(raw)
        if raw.get("type") in RAPPORT_ONLY_TYPES:
            problems.append(Problem(f"{where}type", raw["type"], RAPPORT_ONLY_RULE))
        if raw.get("received_at") is not None:
            problems.append(Problem(f"{where}received_at", raw["received_at"], RECEIVED_AT_RULE))
        event["received_at"] = self.received_at
        source = raw.get("source")
        if source is None:
            try:
                channel = REGISTRY.current_model(raw.get("type")).channel
            except UnknownEventType:
                pass  # validation names the unknown type; a source would not help it
            else:
                event["source"] = {"system": self.source, "channel": channel.value}
        elif isinstance(source, Mapping):
            system = source.get("system")
            stated = system.strip() if isinstance(system, str) else system
            if stated is None:
                event["source"] = {**source, "system": self.source}
            elif stated != self.source:
                problems.append(
                    Problem(
                        f"{where}source.system",
                        system,
                        f"source.system {stated!r} is not this write key's source "
                        f"{self.source!r}; the system is taken from the write key",
                    )
                )
        # any other `source` is left for validation to describe
        return event, problems

    def future(self, occurred_at: datetime, path: str, value: object) -> Problem | None:
        """A problem if `occurred_at` is more than the allowed skew after the request came.

        `path` and `value` are where the time came from in the body (for Segment, its
        `timestamp`).
        """
        ahead = occurred_at - self.received_at
        if ahead <= self.max_future_skew:
            return None
        return Problem(
            path,
            value,
            f"occurred_at {_iso(occurred_at)} is {span(ahead)} in the future; at most "
            f"{span(self.max_future_skew)} of clock skew is accepted ({SKEW_SETTING})",
        )


def span(delta: timedelta) -> str:
    """A duration as people say it, to its two largest units: '31d', '1h 5m', '300ms'."""
    total = delta.total_seconds()
    if total < 1:
        return f"{round(total * 1000)}ms"
    seconds = int(total)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return " ".join(parts[:2])


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
