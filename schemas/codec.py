"""The one canonical wire encoding: compact UTF-8 JSON, as pydantic-core writes it.

Field order is the model's, absent optional fields are omitted (every optional field
defaults to None, so omitting is lossless), decimals are strings, datetimes ISO 8601.
"""

from __future__ import annotations

from pydantic import ValidationError
from pydantic_core import PydanticSerializationError, from_json

from schemas.envelope import Envelope
from schemas.errors import ContractError, DecodeError, EventValidationError
from schemas.provenance import as_validated
from schemas.registry import REGISTRY
from schemas.validation import event_from_dict


def encode_event(event: Envelope) -> bytes:
    return event.__pydantic_serializer__.to_json(event, exclude_none=True)


def encode_verified(event: Envelope) -> bytes:
    """Encode `event` only if the consumers' decoder accepts the result; else raise.

    Events are validated when built, and the encoding of a validated event decodes (the
    property tests prove it for every type). `model_construct`, `model_copy(update=...)` and
    a dict changed in place skip validation: `schemas.provenance` tells, in about a
    microsecond, whether the event is still as validation built it; when it cannot tell,
    the encoding is decoded (tens of microseconds), which raises naming the problem.
    """
    if not isinstance(event, Envelope):
        raise ContractError(f"only events (Envelope) can be published, not {type(event).__name__}")
    try:
        data = event.__pydantic_serializer__.to_json(event, exclude_none=True)  # encode_event
    except PydanticSerializationError as exc:
        problem = ("<event>", event, str(exc))
        raise EventValidationError(getattr(event, "type", None), [problem]) from None
    if not as_validated(event):
        decode_event(data)  # raises EventValidationError / UnknownEventType naming the problem
    return data


def decode_event(data: bytes | str) -> Envelope:
    """Parse, upcast and validate one event; raise a ContractError naming what is wrong."""
    try:
        # The hot path: a current-version event, parsed and validated by pydantic-core alone.
        return REGISTRY.current_events.validate_json(data)
    except ValidationError:
        pass  # an older version, or invalid: the general path upcasts or names the problems
    try:
        # pydantic-core's parser keeps integers of any size (orjson turns them into floats,
        # which would hide an out-of-range integer from the contract instead of naming it).
        raw = from_json(data)
    except ValueError as exc:
        raise DecodeError(f"not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise DecodeError(f"an event must be a JSON object, got {type(raw).__name__}")
    return event_from_dict(raw)
