"""Errors of the write side, under Rapport's root error.

`retriable` tells a caller (the collector, the importer) whether the same events may be
sent again later with a chance of success: the event_ids make a re-send harmless.
"""

from __future__ import annotations

from uuid import UUID

from schemas.errors import RapportError


class ProducerError(RapportError):
    """Root of the errors raised by producers/ (publishing, importing, simulating)."""


class PublishError(ProducerError):
    """An event could not be delivered to Kafka."""

    retriable: bool = True


class BrokerUnavailable(PublishError):
    """Kafka cannot be reached (no connection, no metadata, buffer full) within the limit."""


class DeliveryFailed(PublishError):
    """Kafka did not acknowledge one or more events, after the producer's own retries."""

    def __init__(
        self, message: str, *, event_ids: list[UUID] | None = None, retriable: bool = True
    ) -> None:
        super().__init__(message)
        self.event_ids = event_ids or []
        self.retriable = retriable


class EventTooLarge(PublishError):
    """One encoded event is larger than Kafka accepts; sending it again cannot help."""

    retriable = False


class PublisherClosed(PublishError):
    """`publish` was called after `close`."""

    retriable = False


class ImportFailed(ProducerError):
    """A bulk import cannot start or go on (unreadable file, bad column mapping)."""
