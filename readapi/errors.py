"""Errors of the read API; the HTTP layer alone turns them into status codes."""

from __future__ import annotations

from schemas.errors import RapportError


class ReadApiError(RapportError):
    """Root of the read API's own errors (key management, access)."""


class Unauthenticated(ReadApiError):
    """No API key, or one that is unknown or revoked (401)."""


class Forbidden(ReadApiError):
    """A valid key whose role may not use the route (403); the message names the roles."""
