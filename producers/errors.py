"""Errors of publishing."""

from schemas.errors import RapportError


class PublishError(RapportError):
    """An event could not be delivered to Kafka."""
