"""Errors of the event contract, under the one root error of Rapport."""

from __future__ import annotations

from collections.abc import Iterable


class RapportError(Exception):
    """Root of every error Rapport raises on purpose; the CLI prints these as one line."""


class ContractError(RapportError):
    """An event does not satisfy the contract."""


class EventValidationError(ContractError):
    """An event failed validation; `problems` lists (field path, value, rule)."""

    def __init__(self, event_type: str | None, problems: Iterable[tuple[str, object, str]]):
        self.event_type = event_type
        self.problems = list(problems)
        what = f"invalid {event_type} event" if event_type else "invalid event"
        details = "; ".join(
            f"{path}={_short(value)}: {rule}" for path, value, rule in self.problems
        )
        super().__init__(f"{what}: {details}")


class UnknownEventType(ContractError):
    """The event's type (or version) is not in the registry."""

    def __init__(self, event_type: object, known: Iterable[str], version: object = None):
        self.event_type = event_type
        self.known = sorted(known)
        if version is None:
            msg = f"unknown event type {event_type!r}; known types: {', '.join(self.known)}"
        else:
            msg = (
                f"unknown schema_version {version!r} for event type {event_type!r}; "
                f"known versions: {', '.join(self.known)}"
            )
        super().__init__(msg)


class DecodeError(ContractError):
    """The bytes are not a JSON object."""


def _short(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
