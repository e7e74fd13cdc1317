"""The event contract: every touchpoint as a typed, versioned, immutable event.

This package imports nothing else of Rapport's; every other package imports it.
"""

from schemas.codec import decode_event, encode_event
from schemas.envelope import Channel, CustomerRef, Envelope, Source
from schemas.errors import EventValidationError, RapportError, UnknownEventType
from schemas.registry import REGISTRY

__all__ = [
    "REGISTRY",
    "Channel",
    "CustomerRef",
    "Envelope",
    "EventValidationError",
    "RapportError",
    "Source",
    "UnknownEventType",
    "decode_event",
    "encode_event",
]
