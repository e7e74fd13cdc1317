"""The one canonical wire encoding: compact UTF-8 JSON."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import ValidationError

from schemas.envelope import Envelope
from schemas.errors import DecodeError, EventValidationError
from schemas.registry import REGISTRY


def encode_event(event: Envelope) -> bytes:
    return event.__pydantic_serializer__.to_json(event, exclude_none=True)


def decode_event(data: bytes | str) -> Envelope:
    """Parse, upcast and validate one event; raise a ContractError naming what is wrong."""
    try:
        raw = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise DecodeError(f"an event must be a JSON object, got {type(raw).__name__}")
    return event_from_dict(raw)


def event_from_dict(raw: dict[str, Any]) -> Envelope:
    event_type = raw.get("type")
    REGISTRY.current_model(event_type)  # unknown type: raise with the list of known ones
    version = raw.get("schema_version", 1)
    payload = raw.get("payload")
    if isinstance(version, int) and isinstance(payload, dict):
        current = REGISTRY.current_version(event_type)
        if version != current:
            raw = {
                **raw,
                "schema_version": current,
                "payload": REGISTRY.upcast(str(event_type), version, payload),
            }
    try:
        return Envelope.model_validate(raw)
    except ValidationError as exc:
        raise EventValidationError(
            event_type if isinstance(event_type, str) else None, problems_of(exc)
        ) from None


def problems_of(exc: ValidationError) -> list[tuple[str, object, str]]:
    """(field path, offending value, rule) for each error pydantic found."""
    return [
        (".".join(str(part) for part in err["loc"]) or "<event>", err.get("input"), err["msg"])
        for err in exc.errors()
    ]
