"""Errors of the read side."""

from schemas.errors import RapportError


def describe(error: BaseException) -> str:
    """'ErrorType: first line of the message', for logs and dead-letter headers."""
    message = str(error).strip().splitlines()
    return f"{type(error).__name__}: {message[0]}" if message else type(error).__name__


class ProjectionError(RapportError):
    """A projection could not be written or read."""


class ProfileTooLarge(ProjectionError):
    """An event would push a customer's profile past one of its bounds."""

    def __init__(self, customer_id: str, what: str, limit: int) -> None:
        self.customer_id = customer_id
        super().__init__(
            f"customer {customer_id!r} would have more than {limit:,} {what}: "
            "the profile's bound (projections/profile.py) refuses this event"
        )


class RecordRefused(ProjectionError):
    """A projection refused one event; the rest of its batch can be stored without it.

    `stage` says which step refused it ('fold': the pure projection code; 'database'),
    `cause` is the original error.
    """

    def __init__(self, event_id: object, stage: str, cause: BaseException) -> None:
        self.event_id = event_id
        self.stage = stage
        self.cause = cause
        # (topic, partition, offset) of the record that carried the event, set by the store.
        self.position: tuple[str, int, int] | None = None
        super().__init__(f"event {event_id} refused by the {stage}: {describe(cause)}")


class PositionGap(ProjectionError):
    """A batch starts past a partition's stored position: storing it would skip records.

    `gaps` maps (topic, partition) to (the stored next offset, the batch's first offset).
    The log is read again from the stored position; only records that are gone from the
    log (deleted by retention) may be stepped over, and only by saying so.
    """

    def __init__(self, gaps: dict[tuple[str, int], tuple[int, int]]) -> None:
        self.gaps = gaps
        where = ", ".join(
            f"{topic}/{partition}: stored {stored}, got {first}"
            for (topic, partition), (stored, first) in sorted(gaps.items())
        )
        super().__init__(f"the batch would skip records the projection has not seen ({where})")


class NoActiveVersion(ProjectionError):
    """The version registry names no active projection version to write to."""


class CustomerNotFound(ProjectionError):
    def __init__(self, customer_id: str) -> None:
        self.customer_id = customer_id
        super().__init__(f"customer {customer_id!r} not found")


class InvalidQuery(ProjectionError):
    """A query parameter is invalid; the message names it."""

    def __init__(self, parameter: str, problem: str) -> None:
        self.parameter = parameter
        super().__init__(f"invalid {parameter}: {problem}")


class ScoringInputError(ProjectionError, ValueError):
    """A score was asked for with inputs it cannot be computed from; the message names them."""


class AsOfOutOfRange(ScoringInputError):
    """The as-of time lies so far from the events that a score cannot be computed."""


class MixedCurrencies(ScoringInputError):
    """Money in different currencies would be added up; convert before scoring."""

    def __init__(self, what: str, currencies: set[str]) -> None:
        self.currencies = sorted(currencies)
        super().__init__(
            f"{what} mix currencies {', '.join(self.currencies)}; "
            "scores add money up, so convert to one currency first"
        )
