"""Errors of the collector; the HTTP layer alone turns them into status codes."""

from __future__ import annotations

from collections.abc import Iterable

from schemas.errors import Problem, RapportError

__all__ = [
    "CollectorError",
    "InvalidEvents",
    "MalformedRequest",
    "Problem",
    "RateLimited",
    "RequestTooLarge",
    "Unauthenticated",
    "Unavailable",
]


class CollectorError(RapportError):
    """Root of the errors a collector request can end with."""


class Unauthenticated(CollectorError):
    """No write key, or one that is unknown or revoked."""


class RequestTooLarge(CollectorError):
    """The body, the batch or one event exceeds its limit."""


class MalformedRequest(CollectorError):
    """The body is not the JSON the endpoint expects (syntax or shape)."""


class InvalidEvents(CollectorError):
    """Well-formed JSON whose events break the contract; `problems` says where and why."""

    def __init__(self, problems: Iterable[Problem], *, limit: int = 20) -> None:
        self.problems = list(problems)
        shown = "; ".join(str(p) for p in self.problems[:limit])
        more = f" (and {len(self.problems) - limit} more)" if len(self.problems) > limit else ""
        super().__init__(f"{len(self.problems)} invalid field(s): {shown}{more}")


class RateLimited(CollectorError):
    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Unavailable(CollectorError):
    """Kafka did not acknowledge in time, or cannot be reached: retry the same events later."""

    def __init__(self, message: str, retry_after_s: int = 5) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
