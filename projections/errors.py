"""Errors of the read side."""

from schemas.errors import RapportError


class ProjectionError(RapportError):
    """A projection could not be written or read."""


class CustomerNotFound(ProjectionError):
    def __init__(self, customer_id: str) -> None:
        self.customer_id = customer_id
        super().__init__(f"customer {customer_id!r} not found")


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
