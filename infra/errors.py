"""Errors of running the infrastructure: each names what failed and the remedy."""

from schemas.errors import RapportError


class InfraError(RapportError):
    """Kafka or PostgreSQL could not be provisioned, started, stopped or reached."""


class ServiceUnreachable(InfraError):
    """A configured broker or database does not answer."""
