"""Untrusted data to a valid event, upcast to the current version, or a contract error.

The codec calls `event_from_dict` for whatever its fast path did not accept; producers that
hold a payload as a dict (importers, webhooks) call `build_event`. Both raise
EventValidationError naming each field path, value and rule, UnknownEventType listing the
known types, never a bare pydantic error.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from schemas.envelope import CustomerRef, Envelope, Source
from schemas.errors import EventValidationError, UnknownEventType
from schemas.registry import REGISTRY


def event_from_dict(raw: Mapping[str, Any]) -> Envelope:
    """Validate a decoded event of any known version; return it at the current version."""
    entry = REGISTRY.entry(raw.get("type"))  # unknown type: raise with the list of known ones
    version = raw.get("schema_version")
    if isinstance(version, int) and not isinstance(version, bool):
        if version not in entry.models:
            raise UnknownEventType(entry.name, [str(v) for v in entry.models], version)
        if version != entry.current_version:
            raw = {
                **raw,
                "schema_version": entry.current_version,
                "payload": _upcast_payload(entry.name, version, raw.get("payload")),
            }
    try:
        return entry.event_models[entry.current_version].model_validate(raw)
    except ValidationError as exc:
        raise EventValidationError.from_pydantic(entry.name, exc) from None


def _upcast_payload(event_type: str, version: int, payload: object) -> dict[str, Any]:
    # Validate against the version it was written under, so that problems are reported in
    # that version's terms and the upcasters only ever see valid input.
    try:
        old = REGISTRY.model(event_type, version).model_validate(payload)
    except ValidationError as exc:
        raise EventValidationError.from_pydantic(
            event_type, exc, under="payload", version=version
        ) from None
    wire = old.model_dump(mode="json", exclude_none=True)
    return REGISTRY.upcast(event_type, version, wire)


def build_event(
    event_type: str,
    payload: Mapping[str, Any],
    *,
    customer: CustomerRef | Mapping[str, Any],
    occurred_at: datetime | str,
    source: Source | Mapping[str, Any] | None = None,
    event_id: uuid.UUID | str | None = None,
    campaign_id: str | None = None,
    correlation_id: str | None = None,
    received_at: datetime | str | None = None,
    schema_version: int | None = None,
) -> Envelope:
    """Build a current-version event from plain data, validating all of it at once.

    `schema_version` defaults to the current one; an older version is validated as such and
    upcast. Without `source`, the source is Rapport itself on the type's channel.
    """
    entry = REGISTRY.entry(event_type)
    raw: dict[str, Any] = {
        "event_id": event_id if event_id is not None else uuid.uuid4(),
        "type": event_type,
        "schema_version": entry.current_version if schema_version is None else schema_version,
        "occurred_at": occurred_at,
        "source": source or Source(system="rapport", channel=entry.current_model.channel),
        "customer": customer,
        "payload": payload,
    }
    optional = {
        "campaign_id": campaign_id,
        "correlation_id": correlation_id,
        "received_at": received_at,
    }
    raw.update({key: value for key, value in optional.items() if value is not None})
    return event_from_dict(raw)
