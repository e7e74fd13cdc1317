"""What an analyst's key sees of the read API's answers: personal data masked. Pure.

Identifiers of a personal kind (e-mail, phone, ids in other systems, social handles) keep
their kind and get a stable pseudonym for their value (`schemas.privacy.mask_identifier`),
so an analyst can still count and join on them; Rapport's own customer ids and anonymous
ids stay readable. Personal payload fields and trait values become `MASK`, and a type's
summary (which may quote them) becomes the type's name.

Every function returns a new document and leaves its argument alone.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from schemas.privacy import (
    MASK,
    has_personal_summary,
    mask_identifier,
    mask_payload,
)
from schemas.registry import REGISTRY

Pseudonym = Callable[[str], str]

PERSONAL_KINDS = frozenset({"email", "phone", "ext", "social"})
"""Identifier kinds whose value names a person: `schemas.privacy.PERSONAL_REF_FIELDS` as
they appear in 'kind:value' identifiers."""


def mask_key(value: str | None, pseudonym: Pseudonym) -> str | None:
    """A customer id or partition key: masked only when it is a personal identifier (a
    customer known by no id is filed under e.g. 'email:an@example.com')."""
    if value is None:
        return None
    kind, colon, _ = value.partition(":")
    if not colon or kind not in PERSONAL_KINDS:
        return value
    return mask_identifier(value, pseudonym)


@functools.cache
def _older_personal_fields(event_type: str) -> frozenset[str]:
    """Personal fields of the type's earlier versions (a row projected from one keeps
    them), beyond those `mask_payload` masks."""
    try:
        models = REGISTRY.entry(event_type).models.values()
    except Exception:
        return frozenset()
    return frozenset(f for m in models for f in getattr(m, "personal_fields", frozenset()))


def payload(event_type: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """A payload with the personal fields of every version of its type MASK."""
    masked = mask_payload(event_type, values)
    for name in _older_personal_fields(event_type):
        if masked.get(name) is not None:
            masked[name] = MASK
    return masked


def _keys(values: Any, pseudonym: Pseudonym) -> Any:
    return [mask_key(v, pseudonym) for v in values] if isinstance(values, list) else values


def _mask_values(values: Any) -> Any:
    if not isinstance(values, Mapping):
        return values
    return {k: (MASK if v is not None else None) for k, v in values.items()}


def timeline_event(row: Mapping[str, Any], pseudonym: Pseudonym) -> dict[str, Any]:
    """One timeline row: keys masked, personal payload fields and summary replaced."""
    masked = dict(row)
    kind = str(row.get("type"))
    for name in ("customer_id", "key"):
        if name in masked:
            masked[name] = mask_key(masked[name], pseudonym)
    if isinstance(row.get("payload"), Mapping):
        masked["payload"] = payload(kind, row["payload"])
    if "summary" in masked and has_personal_summary(kind):
        masked["summary"] = kind
    return masked


def timeline_page(page: Mapping[str, Any], pseudonym: Pseudonym) -> dict[str, Any]:
    return {
        **page,
        "customer_id": mask_key(page.get("customer_id"), pseudonym),
        "events": [timeline_event(e, pseudonym) for e in page.get("events", [])],
    }


def profile(doc: Mapping[str, Any], pseudonym: Pseudonym) -> dict[str, Any]:
    """A profile: identifiers and keys pseudonymized, every trait value MASK."""
    masked = dict(doc)
    masked["customer_id"] = mask_key(doc.get("customer_id"), pseudonym)
    masked["identifiers"] = [mask_identifier(i, pseudonym) for i in doc.get("identifiers", [])]
    masked["keys"] = _keys(doc.get("keys"), pseudonym)
    masked["traits"] = _mask_values(doc.get("traits"))
    if isinstance(doc.get("survey"), Mapping):
        masked["survey"] = payload("survey.responded", doc["survey"])
    return masked


def identity(doc: Mapping[str, Any], pseudonym: Pseudonym) -> dict[str, Any]:
    """The identity graph of a customer: identifiers pseudonymized; the reasons links were
    undone (written by people, may name anyone) MASK."""
    links = []
    for link in doc.get("links", []):
        masked = dict(link)
        for end in ("a", "b"):
            if isinstance(masked.get(end), str):
                masked[end] = mask_identifier(masked[end], pseudonym)
        for free_text in ("reason", "unlink_reason"):
            if masked.get(free_text) is not None:
                masked[free_text] = MASK
        links.append(masked)
    return {
        **doc,
        "customer_id": mask_key(doc.get("customer_id"), pseudonym),
        "identifiers": [
            {**i, "identifier": mask_identifier(i["identifier"], pseudonym)}
            for i in doc.get("identifiers", [])
        ],
        "keys": _keys(doc.get("keys"), pseudonym),
        "links": links,
    }


def customer_document(doc: Mapping[str, Any], pseudonym: Pseudonym) -> dict[str, Any]:
    """Any answer about one customer that names it only by id (scores, contact policy)."""
    return {**doc, "customer_id": mask_key(doc.get("customer_id"), pseudonym)}


def violations(doc: Mapping[str, Any], pseudonym: Pseudonym) -> dict[str, Any]:
    return {
        **doc,
        "customer_id": mask_key(doc.get("customer_id"), pseudonym),
        "violations": [
            {**v, "customer_id": mask_key(v.get("customer_id"), pseudonym)}
            for v in doc.get("violations", [])
        ],
    }


def ranked(rows: list[dict[str, Any]], pseudonym: Pseudonym) -> list[dict[str, Any]]:
    """Rows of the population (top customers)."""
    return [customer_document(r, pseudonym) for r in rows]
