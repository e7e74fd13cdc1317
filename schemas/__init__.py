"""The event contract: every touchpoint as a typed, versioned, immutable event.

This package imports nothing else of Rapport's; every other package imports it.
"""

from schemas.codec import decode_event, encode_event
from schemas.envelope import Channel, CustomerRef, Envelope, Payload, Source
from schemas.errors import ContractError, EventValidationError, RapportError, UnknownEventType
from schemas.registry import REGISTRY
from schemas.validation import build_event, event_from_dict

__all__ = [
    "REGISTRY",
    "Channel",
    "ContractError",
    "CustomerRef",
    "Envelope",
    "EventValidationError",
    "Payload",
    "RapportError",
    "Source",
    "UnknownEventType",
    "build_event",
    "decode_event",
    "encode_event",
    "event_from_dict",
]
