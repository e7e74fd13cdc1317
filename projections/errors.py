"""Errors of the read side."""

from schemas.errors import RapportError


class ProjectionError(RapportError):
    """A projection could not be written or read."""


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


class MixedCurrencies(ScoringInputError):
    """Money in different currencies would be added up; convert before scoring."""

    def __init__(self, what: str, currencies: set[str]) -> None:
        self.currencies = sorted(currencies)
        super().__init__(
            f"{what} mix currencies {', '.join(self.currencies)}; "
            "scores add money up, so convert to one currency first"
        )
