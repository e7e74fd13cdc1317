"""Which parts of an event are personal data, and how they travel sealed.

Personal data is what identifies or describes a person: their e-mail address, phone
number, ids in other systems and social handles (`PERSONAL_REF_FIELDS`), and the payload
fields each type declares in `Payload.personal_fields` (notes, free text, subjects,
traits, form fields, identifiers named in identity events). Rapport's own customer id and
a device's anonymous id are pseudonyms: they stay readable, so events can be routed,
deduplicated and counted without any key.

On the wire a producer moves the personal fields of an event into one sealed box,
encrypted with the customer's data key (`producers.sealing`):

    {"event_id": ..., "type": ..., "customer": {"customer_id": "C1"},
     "payload": {"direction": "inbound", ...},
     "sealed": {"key": "<data key id>", "box": "<base64 nonce + AES-GCM ciphertext>"}}

The box holds `{"customer": {...}, "payload": {...}}`, the fields taken out; the event id
is the associated data, so a box cannot be moved to another event. Destroying the key
(erasure) leaves the rest of the event readable and the box unreadable forever: that is
crypto-shredding. This module is the pure part: taking the fields out, putting them back,
and masking them for readers who may not see them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from schemas.registry import REGISTRY

PERSONAL_REF_FIELDS = ("email", "phone", "external_ids", "social_handles")
"""Fields of the customer reference that identify a person; the rest are pseudonyms."""

PSEUDONYMOUS_KINDS = frozenset({"customer", "anon"})
"""Identifier kinds that are Rapport's own pseudonyms, shown to every reader."""

SEALED = "sealed"
MASK = "[personal]"

Secret = dict[str, dict[str, Any]]


@functools.cache
def personal_fields(event_type: str, version: int | None = None) -> frozenset[str]:
    """The payload fields of `event_type` (its current version unless named) that are
    personal; empty for a type the registry does not know."""
    try:
        model = REGISTRY.event_model(event_type, version).model_fields["payload"].annotation
    except Exception:
        return frozenset()
    return getattr(model, "personal_fields", frozenset())


def split_personal(wire: dict[str, Any]) -> Secret:
    """Take the personal fields out of `wire` (an event in wire form, changed in place);
    return them as the secret to seal (empty when the event holds none)."""
    secret: Secret = {}
    customer = wire.get("customer")
    if isinstance(customer, dict):
        taken = {f: customer.pop(f) for f in PERSONAL_REF_FIELDS if customer.get(f)}
        if taken:
            secret["customer"] = taken
    payload = wire.get("payload")
    if isinstance(payload, dict):
        fields = _sorted_personal_fields(str(wire.get("type")), _version(wire))
        taken = {f: payload.pop(f) for f in fields if payload.get(f) not in _EMPTY}
        if taken:
            secret["payload"] = taken
    return secret


_EMPTY: tuple[object, ...] = (None, {}, [])
"""Values of a personal field that hold nothing to seal (they travel as they are)."""


@functools.cache
def _sorted_personal_fields(event_type: str, version: int | None) -> tuple[str, ...]:
    return tuple(sorted(personal_fields(event_type, version)))


def merge_personal(wire: dict[str, Any], secret: Mapping[str, Mapping[str, Any]]) -> None:
    """Put the fields of an opened box back into `wire` (changed in place)."""
    for part in ("customer", "payload"):
        if fields := secret.get(part):
            target = wire.setdefault(part, {})
            if not isinstance(target, dict):
                raise ValueError(f"sealed event: {part} is not an object")
            target.update(fields)


def mask_payload(event_type: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    """`payload` with its personal fields replaced by MASK (for pseudonymous readers)."""
    fields = personal_fields(event_type)
    return {k: (MASK if k in fields and v is not None else v) for k, v in payload.items()}


def has_personal_summary(event_type: str) -> bool:
    """Whether the type's one-line summary may quote its personal fields."""
    return bool(personal_fields(event_type))


def mask_identifier(identifier: str, pseudonym: Callable[[str], str]) -> str:
    """'kind:value' with a personal value replaced by a stable pseudonym of it, so that a
    pseudonymous reader can still count and join on it but not read it."""
    kind, _, _ = identifier.partition(":")
    if kind in PSEUDONYMOUS_KINDS:
        return identifier
    return f"{kind}:~{pseudonym(identifier)}"


def _version(wire: Mapping[str, Any]) -> int | None:
    version = wire.get("schema_version")
    return version if isinstance(version, int) else None
