"""Identity events an operator makes: link two identifiers, or undo a link, with why."""

from __future__ import annotations

from datetime import UTC, datetime

from schemas import CustomerRef, Envelope, Source
from schemas.errors import EventValidationError
from schemas.payloads.profile import IdentityLinked, IdentityUnlinked

OPERATOR_SYSTEM = "rapport-operator"


def ref_of(identifier: str) -> CustomerRef:
    """The customer reference of an event about `identifier` ('kind:value')."""
    kind, _, value = identifier.partition(":")
    fields: dict[str, object]
    if kind == "customer":
        fields = {"customer_id": value}
    elif kind in ("email", "phone"):
        fields = {kind: value}
    elif kind == "anon":
        fields = {"anonymous_id": value}
    elif kind in ("ext", "social"):
        system, _, rest = value.partition(":")
        fields = {"external_ids" if kind == "ext" else "social_handles": {system: rest}}
    else:
        rule = "kind is one of customer, email, phone, ext, social, anon"
        raise EventValidationError("identity.linked", [("identifier", identifier, rule)])
    return CustomerRef.model_validate(fields)


def link_event(
    identifier: str,
    linked_to: str,
    *,
    evidence: str | None = None,
    forced: bool = False,
    at: datetime | None = None,
) -> Envelope:
    payload = IdentityLinked(
        identifier=identifier, linked_to=linked_to, evidence=evidence, forced=forced
    )
    return _event(payload, identifier, at)


def unlink_event(
    identifier: str, unlinked_from: str, *, reason: str, at: datetime | None = None
) -> Envelope:
    payload = IdentityUnlinked(identifier=identifier, unlinked_from=unlinked_from, reason=reason)
    return _event(payload, identifier, at)


def _event(
    payload: IdentityLinked | IdentityUnlinked, identifier: str, at: datetime | None
) -> Envelope:
    return Envelope.new(
        payload,
        customer=ref_of(identifier),
        occurred_at=at or datetime.now(UTC),
        source=Source(system=OPERATOR_SYSTEM, channel=payload.channel),
    )
