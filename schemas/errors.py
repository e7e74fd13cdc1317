"""Errors of the event contract, under the one root error of Rapport."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final, NamedTuple

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from schemas.text import PATTERN_RULES


class RapportError(Exception):
    """Root of every error Rapport raises on purpose; the CLI prints these as one line."""


class ContractError(RapportError):
    """An event does not satisfy the contract."""


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


MISSING: Final = _Missing()
"""The value of a problem whose field is absent."""


class Problem(NamedTuple):
    """One thing wrong with an event or a request: where (a field path), what value, which
    rule; e.g. ('payload.items[0].quantity', 0, 'Input should be greater than 0')."""

    path: str
    value: object
    rule: str

    def __str__(self) -> str:
        return f"{self.path}={short_repr(self.value)}: {self.rule}"


class EventValidationError(ContractError):
    """An event failed validation; `problems` lists (field path, value, rule)."""

    def __init__(
        self,
        event_type: str | None,
        problems: Iterable[tuple[str, object, str]],
        *,
        version: int | None = None,
    ):
        self.event_type = event_type
        self.version = version
        self.problems = [Problem(*problem) for problem in problems]
        what = "invalid event"
        if event_type:
            what = f"invalid {event_type} event" + (f" (v{version})" if version else "")
        details = "; ".join(map(str, self.problems))
        super().__init__(f"{what}: {details}")

    @classmethod
    def from_pydantic(
        cls,
        event_type: str | None,
        exc: ValidationError,
        *,
        under: str = "",
        version: int | None = None,
    ) -> EventValidationError:
        """Translate pydantic's errors; `under` prefixes the paths (e.g. 'payload')."""
        prefix = (under,) if under else ()
        return cls(
            event_type,
            [
                (
                    field_path((*prefix, *err["loc"])),
                    MISSING if err["type"] == "missing" else err.get("input"),
                    _rule(err),
                )
                for err in exc.errors(include_url=False)
            ],
            version=version,
        )


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


class RegistryError(ContractError):
    """The registry itself is inconsistent (a programming error, found at import)."""


def field_path(loc: Sequence[int | str]) -> str:
    """'payload.items[0].quantity' from pydantic's ('payload', 'items', 0, 'quantity')."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "<event>"


def _rule(err: ErrorDetails) -> str:
    if err["type"] == "string_pattern_mismatch":
        pattern = (err.get("ctx") or {}).get("pattern")
        if pattern in PATTERN_RULES:
            return PATTERN_RULES[pattern]
    return err["msg"].removeprefix("Value error, ")


def short_repr(value: object, limit: int = 60) -> str:
    """repr(value), cut to `limit` characters for a one-line message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class SubjectErased(ContractError):
    """The event names an identifier of an erased customer; Rapport refuses new events
    about them (suppression, docs/privacy.md)."""

    def __init__(self, message: str, erasure_id: object = None) -> None:
        super().__init__(message)
        self.erasure_id = erasure_id
