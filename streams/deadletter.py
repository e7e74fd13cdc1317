"""Dead-letter records: a record that cannot be projected is parked, never dropped.

The parked record keeps the original key, value bytes and headers, plus `rapport.dlq.*`
headers saying why, at which stage (decode, fold, database) and where it came from, so
`rapport dlq redrive` can re-publish it (same bytes, hence the same event_id) once the
cause is fixed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from schemas.errors import RapportError
from streams.kafka_clients import TopicMissing, producer, read_topic

log = logging.getLogger("rapport.deadletter")

HEADER_PREFIX = "rapport.dlq."
ERROR = HEADER_PREFIX + "error"
ERROR_TYPE = HEADER_PREFIX + "error_type"
FAILED_AT = HEADER_PREFIX + "failed_at"
SOURCE = HEADER_PREFIX + "source"  # "topic/partition/offset"
STAGE = HEADER_PREFIX + "stage"  # decode, fold or database: what refused the record
REDRIVEN_FROM = (
    "rapport.redriven_from"  # set on a re-published record: "dlq-topic/partition/offset"
)


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
    error: BaseException | str,
    error_type: str | None = None,
    stage: str = "decode",
    at: datetime | None = None,
) -> DeadLetter:
    """The record to park for a failed one: original bytes and headers, plus the reason."""
    original = [(k, v) for k, v in (headers or ()) if not k.startswith(HEADER_PREFIX)]
    reason = [
        (ERROR, str(error).encode()[:8000]),
        (ERROR_TYPE, (error_type or type(error).__name__).encode()),
        (STAGE, stage.encode()),
        (FAILED_AT, (at or datetime.now(UTC)).isoformat().encode()),
        (SOURCE, source_of(topic, partition, offset).encode()),
    ]
    return DeadLetter(key, value, original + reason)


def source_of(topic: str, partition: int, offset: int) -> str:
    return f"{topic}/{partition}/{offset}"


def header(headers: Iterable[tuple[str, bytes]], name: str) -> str | None:
    for key, value in headers:
        if key == name:
            return value.decode(errors="replace")
    return None


def original_headers(headers: Iterable[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """The headers the record had before it was parked (for re-publishing)."""
    return [(k, v) for k, v in headers if not k.startswith(HEADER_PREFIX)]


class DeadLetterFailed(RapportError):
    """A record could not be written to the dead-letter topic; it must not be skipped."""


class DeadLetterWriter:
    """Parks records in the dead-letter topic and waits for Kafka's acknowledgement.

    A record whose source position is already parked is not parked twice: a worker that
    crashed between parking a record and storing its batch, or a replay meeting a record
    the live worker parked, finds it there. The parked positions are read from the topic
    on the first park, then kept up to date by this writer.
    """

    def __init__(self, bootstrap: str, dlq_topic: str, *, timeout_s: float = 15.0) -> None:
        self.bootstrap = bootstrap
        self.dlq_topic = dlq_topic
        self.timeout_s = timeout_s
        self._producer: Any = None
        self._parked: set[str] | None = None
        self._lock = threading.Lock()

    def park(
        self,
        *,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        headers: Iterable[tuple[str, bytes]] | None,
        error: BaseException | str,
        error_type: str | None = None,
        stage: str,
    ) -> bool:
        """Park one record; False if it was parked before. Raises DeadLetterFailed."""
        source = source_of(topic, partition, offset)
        with self._lock:
            if source in self._already_parked():
                return False
            letter = dead_letter(
                topic=topic,
                partition=partition,
                offset=offset,
                key=key,
                value=value,
                headers=headers,
                error=error,
                error_type=error_type,
                stage=stage,
            )
            self._send(letter)
            self._already_parked().add(source)
        log.warning("parked %s in %s (%s): %s", source, self.dlq_topic, stage, error)
        return True

    def _already_parked(self) -> set[str]:
        if self._parked is None:
            self._parked = self._read_sources()
        return self._parked

    def _read_sources(self) -> set[str]:
        try:
            return {
                source
                for record in read_topic(self.bootstrap, self.dlq_topic)
                if (source := header(record.headers or (), SOURCE)) is not None
            }
        except TopicMissing as missing:
            raise DeadLetterFailed(f"the dead-letter {missing}") from None
        except Exception as exc:
            raise DeadLetterFailed(f"cannot read {self.dlq_topic}: {exc!r}") from None

    def _send(self, letter: DeadLetter) -> None:
        try:
            if self._producer is None:
                self._producer = producer(
                    self.bootstrap,
                    max_block_ms=int(self.timeout_s * 1000),
                    request_timeout_ms=int(self.timeout_s * 1000),
                    retries=3,
                )
            future = self._producer.send(
                self.dlq_topic, key=letter.key, value=letter.value, headers=letter.headers
            )
            future.get(timeout=self.timeout_s)
        except Exception as exc:
            self._discard_producer()  # a producer that failed a send may keep failing it
            raise DeadLetterFailed(
                f"cannot write to the dead-letter topic {self.dlq_topic}: {exc!r}"
            ) from None

    def _discard_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            try:
                producer.close(timeout=0)
            except Exception as exc:  # it failed already; closing is best effort
                log.debug("closing a failed dead-letter producer: %r", exc)

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=5)
            self._producer = None
