"""Dead-letter records: a record that fails to decode or validate is parked, never dropped.

The parked record keeps the original key, value bytes and headers, plus `rapport.dlq.*`
headers saying why and where it came from, so `rapport dlq redrive` can re-publish it
(same bytes, hence the same event_id) once the cause is fixed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

HEADER_PREFIX = "rapport.dlq."
ERROR = HEADER_PREFIX + "error"
ERROR_TYPE = HEADER_PREFIX + "error_type"
FAILED_AT = HEADER_PREFIX + "failed_at"
SOURCE = HEADER_PREFIX + "source"  # "topic/partition/offset"
REDRIVEN_FROM = (
    "rapport.redriven_from"  # set on a re-published record: "dlq-topic/partition/offset"
)

Headers = Sequence[tuple[str, bytes]]


@dataclass(frozen=True)
class DeadLetter:
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]


def dead_letter(
    *,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    headers: Iterable[tuple[str, bytes]] | None,
    error: Exception,
    at: datetime | None = None,
) -> DeadLetter:
    """The record to park for a failed one: original bytes and headers, plus the reason."""
    original = [(k, v) for k, v in (headers or ()) if not k.startswith(HEADER_PREFIX)]
    reason = [
        (ERROR, str(error).encode()[:8000]),
        (ERROR_TYPE, type(error).__name__.encode()),
        (FAILED_AT, (at or datetime.now(UTC)).isoformat().encode()),
        (SOURCE, f"{topic}/{partition}/{offset}".encode()),
    ]
    return DeadLetter(key, value, original + reason)


def header(headers: Iterable[tuple[str, bytes]], name: str) -> str | None:
    for key, value in headers:
        if key == name:
            return value.decode(errors="replace")
    return None


def original_headers(headers: Iterable[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """The headers the record had before it was parked (for re-publishing)."""
    return [(k, v) for k, v in headers if not k.startswith(HEADER_PREFIX)]
