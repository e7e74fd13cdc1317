"""Inspect the dead-letter topic and re-drive parked records into the touchpoint topic.

A re-driven record keeps its original bytes (so its event_id) unless the engineer supplies
a corrected event, which must carry the same event_id. It is validated before it is sent:
re-driving something that still fails would only park it again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

import orjson

from projections.store import ErasedRecord
from schemas import Envelope, decode_event
from schemas.errors import ContractError, RapportError
from streams.deadletter import (
    ERROR,
    ERROR_TYPE,
    FAILED_AT,
    REDRIVEN_FROM,
    SOURCE,
    STAGE,
    header,
    original_headers,
)
from streams.kafka_clients import TopicMissing, producer, read_topic
from streams.pipeline import Unsealer


class RedriveError(RapportError):
    """A parked record could not be re-driven; the message says which and why."""


@dataclass(frozen=True)
class ParkedRecord:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]

    @property
    def ref(self) -> str:
        """How the CLI names a parked record: PARTITION:OFFSET."""
        return f"{self.partition}:{self.offset}"

    @property
    def error(self) -> str:
        return header(self.headers, ERROR) or ""

    @property
    def error_type(self) -> str:
        return header(self.headers, ERROR_TYPE) or ""

    @property
    def failed_at(self) -> datetime | None:
        value = header(self.headers, FAILED_AT)
        return datetime.fromisoformat(value) if value else None

    @property
    def source(self) -> str:
        return header(self.headers, SOURCE) or ""

    @property
    def stage(self) -> str:
        """What refused the record: decode, fold or database (decode before stages existed)."""
        return header(self.headers, STAGE) or "decode"

    @property
    def event_id(self) -> str | None:
        """The event_id in the parked bytes, when they are a JSON object that has one."""
        try:
            raw = orjson.loads(self.value or b"")
        except orjson.JSONDecodeError:
            return None
        value = raw.get("event_id") if isinstance(raw, dict) else None
        return str(value) if value is not None else None


def parse_ref(ref: str) -> tuple[int, int]:
    partition, sep, offset = ref.partition(":")
    if not sep or not partition.isdigit() or not offset.isdigit():
        raise RedriveError(f"{ref!r} is not PARTITION:OFFSET (see `rapport dlq list`)")
    return int(partition), int(offset)


def read_parked(bootstrap: str, dlq_topic: str) -> Iterator[ParkedRecord]:
    """Every record in the dead-letter topic, from the beginning to the current end."""
    try:
        for record in read_topic(bootstrap, dlq_topic):
            yield ParkedRecord(
                record.partition,
                record.offset,
                record.key,
                record.value,
                list(record.headers or ()),
            )
    except TopicMissing as missing:
        raise RedriveError(str(missing)) from None


def find_parked(bootstrap: str, dlq_topic: str, refs: list[str]) -> list[ParkedRecord]:
    wanted = {parse_ref(ref) for ref in refs}
    found = [r for r in read_parked(bootstrap, dlq_topic) if (r.partition, r.offset) in wanted]
    missing = wanted - {(r.partition, r.offset) for r in found}
    if missing:
        names = ", ".join(f"{p}:{o}" for p, o in sorted(missing))
        raise RedriveError(f"no parked record at {names} in {dlq_topic}")
    return found


def redrive(
    bootstrap: str,
    dlq_topic: str,
    target_topic: str,
    records: list[ParkedRecord],
    *,
    replacement: bytes | None = None,
    unsealer: Unsealer | None = None,
    seal: Callable[[Envelope, bytes], tuple[bytes, bytes]] | None = None,
) -> list[str]:
    """Validate then re-publish each record to `target_topic`; return the event_ids sent.

    A sealed record is validated opened and re-published as it was, still sealed; a
    corrected event (in clear, from the operator) is sealed by `seal` before it goes."""
    if replacement is not None and len(records) != 1:
        raise RedriveError("a corrected event replaces exactly one parked record")
    outgoing = []
    for record in records:
        value = replacement if replacement is not None else record.value
        opened: bytes | ErasedRecord | RapportError = value or b""
        if unsealer is not None and replacement is None:
            opened = unsealer.open_all([value])[0]
        if isinstance(opened, ErasedRecord):
            raise RedriveError(f"{record.ref} is an event of an erased customer: not re-driven")
        if isinstance(opened, RapportError):
            raise RedriveError(f"{record.ref} cannot be opened: {opened}")
        try:
            event = decode_event(opened)
        except ContractError as exc:
            raise RedriveError(f"{record.ref} still fails validation: {exc}") from None
        if record.event_id is not None and str(event.event_id) != record.event_id:
            raise RedriveError(
                f"{record.ref}: the corrected event has event_id {event.event_id}, "
                f"the parked one {record.event_id}; keep the original event_id"
            )
        headers = [
            *original_headers(record.headers),
            (REDRIVEN_FROM, f"{dlq_topic}/{record.partition}/{record.offset}".encode()),
        ]
        key = record.key or event.customer.partition_key.encode()
        if replacement is not None and seal is not None:
            key, value = seal(event, replacement)
        outgoing.append((key, value, headers, str(event.event_id)))
    sender = producer(bootstrap, enable_idempotence=True)
    try:
        futures = [sender.send(target_topic, key=k, value=v, headers=h) for k, v, h, _ in outgoing]
        sender.flush()
        for future in futures:
            future.get(timeout=30)  # raises if Kafka did not take it
    finally:
        sender.close()
    return [event_id for *_, event_id in outgoing]
