"""Segment's message spec, translated into Rapport events.

So that existing analytics libraries work by changing only their host:

- `messageId` becomes `event_id` (a stable uuid5 when it is not a UUID, so a retried
  message is the same event); `userId` → `customer_id`, `anonymousId` → `anonymous_id`;
- clock skew: `occurred_at = receivedAt - (sentAt - timestamp)`, the device clock's error
  taken out; `received_at` is when the collector got the request (a `receivedAt` in the
  body is ignored, as Segment ignores it); an `occurred_at` more than the allowed skew in
  the future is refused at its `timestamp`;
- `source.system` is the write key's source name, `source.channel` the payload type's;
- track → the type a `TrackMapping` names for the event, else `custom.event`;
  identify → `profile.updated` (+ `identity.linked` when both ids are given);
  page → `web.page_viewed`; screen and group → `custom.event`; alias → `identity.linked`;
- `properties` and `traits` go into the payload, `context` (and properties a mapping did
  not use) into the envelope's context.

Problems are collected for the whole request, each with its path in the body.
"""

from __future__ import annotations

import hashlib
import tomllib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from collector.errors import CollectorError, Problem
from collector.provenance import DEFAULT_MAX_FUTURE_SKEW, Provenance
from schemas import REGISTRY, CustomerRef, Envelope, Source
from schemas.envelope import Payload
from schemas.errors import UnknownEventType
from schemas.payloads.profile import CustomEvent, IdentityLinked, ProfileUpdated
from schemas.payloads.web import PageViewed

# event_ids derived from a source's messageIds live in this namespace.
SEGMENT_NAMESPACE = uuid.UUID("6f1c3a52-2d1e-4f55-9c0b-5e3a7d2f8b14")
_MISSING: Any = object()
Origin = dict[tuple[str | int, ...], str]  # payload field location -> path in the request


class MappingError(CollectorError):
    """The track mapping file is not valid."""


# -- the configurable track mapping ----------------------------------------------------
@dataclass(frozen=True)
class FieldRule:
    """Where one payload field comes from: the first present path, else `default`."""

    paths: tuple[str, ...]
    default: Any = _MISSING
    items: dict[str, FieldRule] | None = None  # for a list of objects: rules per element


@dataclass(frozen=True)
class TrackRule:
    event_type: str
    fields: dict[str, FieldRule]

    @property
    def used_properties(self) -> frozenset[str]:
        return frozenset(
            path.split(".")[1]
            for rule in self.fields.values()
            for path in rule.paths
            if path.startswith("properties.")
        )


@dataclass(frozen=True)
class TrackMapping:
    """Track event name → the Rapport type and field rules it becomes."""

    rules: dict[str, TrackRule] = field(default_factory=dict)

    @classmethod
    def load(cls, extra: Path | None = None) -> TrackMapping:
        """The built-in mapping, extended and overridden by the TOML file `extra`."""
        builtin = resources.files("collector").joinpath("segment_mapping.toml").read_text()
        rules = cls.from_toml(tomllib.loads(builtin), "built-in mapping").rules
        if extra is not None:
            try:
                data = tomllib.loads(extra.read_text())
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise MappingError(f"cannot read track mapping {extra}: {exc}") from None
            rules = {**rules, **cls.from_toml(data, str(extra)).rules}
        return cls(rules)

    @classmethod
    def from_toml(cls, data: Mapping[str, Any], where: str) -> TrackMapping:
        rules = {}
        for name, spec in data.get("track", {}).items():
            at = f"{where}: track.{name!r}"
            event_type = spec.get("type")
            try:
                model = REGISTRY.current_model(event_type)
            except UnknownEventType as exc:
                raise MappingError(f"{at}: {exc}") from None
            fields = {
                k: _field_rule(v, f"{at}.fields.{k}") for k, v in spec.get("fields", {}).items()
            }
            unknown = set(fields) - set(model.model_fields)
            if unknown:
                raise MappingError(
                    f"{at}: {event_type} has no field(s) {', '.join(sorted(unknown))}"
                )
            rules[name] = TrackRule(event_type, fields)
        return cls(rules)


def _field_rule(spec: Any, where: str) -> FieldRule:
    if isinstance(spec, str):
        return FieldRule((spec,))
    if isinstance(spec, list) and spec and all(isinstance(p, str) for p in spec):
        return FieldRule(tuple(spec))
    if isinstance(spec, dict) and "from" in spec:
        paths = _field_rule(spec["from"], where).paths
        items = spec.get("fields")
        return FieldRule(
            paths,
            spec.get("default", _MISSING),
            {k: _field_rule(v, f"{where}.{k}") for k, v in items.items()} if items else None,
        )
    raise MappingError(f"{where}: expected a path, a list of paths or a table with `from`")


def _lookup(data: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(data, dict) or part not in data:
            return _MISSING
        data = data[part]
    return data


def _apply(rules: dict[str, FieldRule], data: Any, prefix: str) -> tuple[dict[str, Any], Origin]:
    """The payload dict the rules build from `data`, and where each field came from."""
    built: dict[str, Any] = {}
    origin: Origin = {}
    for name, rule in rules.items():
        value, used = _MISSING, rule.paths[0]
        for path in rule.paths:
            value = _lookup(data, path)
            if value is not _MISSING and value is not None:
                used = path
                break
        origin[(name,)] = prefix + used
        if value is _MISSING or value is None:
            if rule.default is _MISSING:
                continue
            value = rule.default
        if rule.items is not None and isinstance(value, list):
            elements = []
            for i, element in enumerate(value):
                sub, sub_origin = _apply(rule.items, element, f"{prefix}{used}[{i}].")
                elements.append(sub)
                origin.update({(name, i, *loc): where for loc, where in sub_origin.items()})
            value = elements
        built[name] = value
    return built, origin


# -- translation ------------------------------------------------------------------------
@dataclass
class SegmentTranslator:
    """Translates the messages of one request; `problems` collects what is wrong."""

    source: str  # the write key's source name: every event's source.system
    received_at: datetime
    mapping: TrackMapping
    max_future_skew: timedelta = DEFAULT_MAX_FUTURE_SKEW
    problems: list[Problem] = field(default_factory=list)

    def batch(self, body: Any) -> list[Envelope]:
        """POST /v1/batch: {"batch": [messages], "sentAt"?, "context"?}."""
        if not isinstance(body, dict) or not isinstance(body.get("batch"), list):
            self.problems.append(Problem("batch", _kind(body), 'expected {"batch": [...]}'))
            return []
        events: list[Envelope] = []
        shared_context = body.get("context") if isinstance(body.get("context"), dict) else {}
        for i, message in enumerate(body["batch"]):
            events += self.message(
                message, f"batch[{i}].", sent_at=body.get("sentAt"), context=shared_context
            )
        return events

    def message(
        self,
        msg: Any,
        where: str = "",
        *,
        kind: str | None = None,
        sent_at: Any = None,
        context: Mapping[str, Any] | None = None,
    ) -> list[Envelope]:
        """One Segment message (kind from the endpoint, else its `type` field)."""
        if not isinstance(msg, dict):
            self.problems.append(Problem(where or "<body>", _kind(msg), "expected a JSON object"))
            return []
        kind = msg.get("type") or kind
        handler = _HANDLERS.get(kind) if isinstance(kind, str) else None
        if handler is None:
            rule = f"one of {', '.join(sorted(_HANDLERS))}"
            self.problems.append(Problem(f"{where}type", kind, rule))
            return []
        before = len(self.problems)
        traits = self._traits(msg, where) if kind == "identify" else {}
        customer = self._customer(msg, where, traits)
        occurred_at = self._occurred_at(msg, where, msg.get("sentAt", sent_at))
        event_id = self._event_id(msg)
        ctx = msg.get("context", {})
        if not isinstance(ctx, dict):
            self.problems.append(Problem(f"{where}context", _kind(ctx), "expected a JSON object"))
            ctx = {}
        ctx = {**(context or {}), **ctx}
        payloads = handler(self, msg, where, ctx)
        if len(self.problems) > before or customer is None or occurred_at is None:
            return []
        events = []
        for n, (payload, extra_context) in enumerate(payloads):
            merged = {**ctx, **extra_context} or None
            events.append(
                Envelope.new(
                    payload,
                    customer=customer,
                    occurred_at=occurred_at,
                    received_at=self.received_at,
                    source=Source(system=self.source, channel=payload.channel),
                    event_id=event_id if n == 0 else uuid.uuid5(event_id, payload.event_type),
                    context=merged,
                )
            )
        return events

    # -- the envelope fields ------------------------------------------------------------
    def _customer(
        self, msg: dict[str, Any], where: str, traits: Mapping[str, Any]
    ) -> CustomerRef | None:
        user_id, anonymous_id = _id(msg.get("userId")), _id(msg.get("anonymousId"))
        if user_id is None and anonymous_id is None:
            self.problems.append(
                Problem(f"{where}userId", None, "userId or anonymousId is required")
            )
            return None
        # An identify's e-mail and phone traits are identifiers too: the event carries them
        # with the ids, so the identity graph joins them (a malformed one stays a trait).
        extra = {n: traits[n] for n in ("email", "phone") if _valid_identifier(n, traits.get(n))}
        try:
            return CustomerRef(customer_id=user_id, anonymous_id=anonymous_id, **extra)
        except ValidationError as exc:
            names = {"customer_id": "userId", "anonymous_id": "anonymousId"}
            self._add(exc, lambda loc: where + names.get(str(loc[0]), str(loc[0])))
            return None

    def _occurred_at(self, msg: dict[str, Any], where: str, sent_at: Any) -> datetime | None:
        stamp_field = "originalTimestamp" if "originalTimestamp" in msg else "timestamp"
        timestamp = self._time(msg.get(stamp_field), f"{where}{stamp_field}")
        sent = self._time(sent_at, f"{where}sentAt")
        if timestamp is _MISSING or sent is _MISSING:
            return None
        if timestamp is None:
            return self.received_at
        happened: datetime = timestamp
        if sent is not None:
            # The device's clock may be off; its error is the same in both of its stamps.
            skew: timedelta = sent - happened
            happened = self.received_at - skew
        provenance = Provenance(self.source, self.received_at, self.max_future_skew)
        too_late = provenance.future(happened, f"{where}{stamp_field}", msg.get(stamp_field))
        if too_late is not None:
            self.problems.append(too_late)
            return None
        return happened

    def _time(self, value: Any, path: str) -> Any:
        if value is None:
            return None
        try:
            parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
        except ValueError:
            parsed = None
        if parsed is None:
            self.problems.append(Problem(path, value, "expected an ISO-8601 date-time"))
            return _MISSING
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)

    def _event_id(self, msg: dict[str, Any]) -> uuid.UUID:
        message_id = msg.get("messageId")
        if isinstance(message_id, str):
            try:
                return uuid.UUID(message_id)
            except ValueError:
                return uuid.uuid5(SEGMENT_NAMESPACE, f"{self.source}/{message_id}")
        # No messageId: the content itself identifies the message, so a retry dedupes.
        digest = hashlib.sha256(orjson.dumps(msg, option=orjson.OPT_SORT_KEYS)).hexdigest()
        return uuid.uuid5(SEGMENT_NAMESPACE, f"{self.source}/content/{digest}")

    # -- payloads per message type ------------------------------------------------------
    def _track(self, msg: dict[str, Any], where: str, ctx: dict[str, Any]) -> list[_Built]:
        name = msg.get("event")
        if not isinstance(name, str) or not name.strip():
            self.problems.append(Problem(f"{where}event", name, "a track needs an event name"))
            return []
        properties = self._object(msg, "properties", where)
        rule = self.mapping.rules.get(name)
        if rule is None:
            data = {"name": name, "properties": properties}
            origin: Origin = {("name",): where + "event", ("properties",): where + "properties"}
            return self._payload(CustomEvent, data, origin, where)
        built, origin = _apply(rule.fields, msg, where)
        leftover = {k: v for k, v in properties.items() if k not in rule.used_properties}
        model = REGISTRY.current_model(rule.event_type)
        payloads = self._payload(model, built, origin, where)
        return [(p, {"properties": leftover} if leftover else {}) for p, _ in payloads]

    def _traits(self, msg: dict[str, Any], where: str) -> dict[str, Any]:
        """An identify's traits: in `traits`, or in `context.traits` where several
        Segment-compatible libraries put them (both: `traits` wins)."""
        context = msg.get("context")
        in_context = context.get("traits") if isinstance(context, dict) else None
        merged = dict(in_context) if isinstance(in_context, dict) else {}
        merged.update(self._object(msg, "traits", where))
        return merged

    def _identify(self, msg: dict[str, Any], where: str, ctx: dict[str, Any]) -> list[_Built]:
        traits = _flatten(self._traits(msg, where))
        out: list[_Built] = []
        if traits:
            origin: Origin = {("traits",): where + "traits"}
            out += self._payload(ProfileUpdated, {"traits": traits}, origin, where)
        out += self._link(msg, where, "anon", msg.get("anonymousId"), msg.get("userId"))
        return out

    def _alias(self, msg: dict[str, Any], where: str, ctx: dict[str, Any]) -> list[_Built]:
        previous = _id(msg.get("previousId"))
        if previous is None or _id(msg.get("userId")) is None:
            self.problems.append(
                Problem(f"{where}previousId", previous, "alias needs previousId and userId")
            )
            return []
        kind = "anon" if previous == _id(msg.get("anonymousId")) else "customer"
        return self._link(msg, where, kind, previous, msg.get("userId"))

    def _link(
        self, msg: dict[str, Any], where: str, kind: str, other: Any, user: Any
    ) -> list[_Built]:
        other, user = _id(other), _id(user)
        if other is None or user is None or other == user:
            return []
        data = {
            "identifier": f"{kind}:{other}",
            "linked_to": f"customer:{user}",
            "evidence": f"segment {msg.get('type', 'identify')}",
        }
        origin: Origin = {("identifier",): where + "anonymousId", ("linked_to",): where + "userId"}
        return self._payload(IdentityLinked, data, origin, where)

    def _page(self, msg: dict[str, Any], where: str, ctx: dict[str, Any]) -> list[_Built]:
        properties = self._object(msg, "properties", where)
        rules = {
            "url": FieldRule(("properties.url", "context.page.url")),
            "title": FieldRule(("properties.title", "name", "context.page.title")),
            "referrer": FieldRule(("properties.referrer", "context.page.referrer")),
        }
        built, origin = _apply(rules, {**msg, "context": ctx, "properties": properties}, where)
        built = {k: v for k, v in built.items() if v != ""}
        return self._payload(PageViewed, built, origin, where)

    def _screen(self, msg: dict[str, Any], where: str, ctx: dict[str, Any]) -> list[_Built]:
        properties = {"screen": msg.get("name"), **self._object(msg, "properties", where)}
        data = {"name": "Screen Viewed", "properties": properties}
        origin: Origin = {("properties",): where + "properties"}
        return self._payload(CustomEvent, data, origin, where)

    def _group(self, msg: dict[str, Any], where: str, ctx: dict[str, Any]) -> list[_Built]:
        properties = {
            "group_id": _id(msg.get("groupId")),
            **_flatten(self._object(msg, "traits", where)),
        }
        data = {"name": "Group Joined", "properties": properties}
        origin: Origin = {("properties",): where + "traits"}
        return self._payload(CustomEvent, data, origin, where)

    # -- helpers --------------------------------------------------------------------------
    def _object(self, msg: dict[str, Any], name: str, where: str) -> dict[str, Any]:
        value = msg.get(name)
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.problems.append(Problem(f"{where}{name}", _kind(value), "expected a JSON object"))
            return {}
        return value

    def _payload(
        self,
        model: type[Payload],
        data: dict[str, Any],
        origin: Origin,
        where: str,
    ) -> list[_Built]:
        try:
            return [(model.model_validate(data), {})]
        except ValidationError as exc:

            def path(loc: tuple[str | int, ...]) -> str:
                for cut in range(len(loc), -1, -1):  # the longest prefix whose origin is known
                    if loc[:cut] in origin:
                        return origin[loc[:cut]] + "".join(_step(part) for part in loc[cut:])
                return where + "".join(_step(part) for part in loc).lstrip(".")

            self._add(exc, path)
            return []

    def _add(self, exc: ValidationError, path: Any) -> None:
        for err in exc.errors():
            self.problems.append(Problem(path(tuple(err["loc"])), err.get("input"), err["msg"]))


_Built = tuple[Payload, dict[str, Any]]  # a payload, and what to add to the event's context

_HANDLERS = {
    "track": SegmentTranslator._track,
    "identify": SegmentTranslator._identify,
    "page": SegmentTranslator._page,
    "screen": SegmentTranslator._screen,
    "group": SegmentTranslator._group,
    "alias": SegmentTranslator._alias,
}


def _valid_identifier(field: str, value: Any) -> bool:
    if not isinstance(value, str) or not value.strip():
        return False
    try:
        CustomerRef.model_validate({field: value})
    except ValidationError:
        return False
    return True


def _step(part: str | int) -> str:
    return f"[{part}]" if isinstance(part, int) else f".{part}"


def _id(value: Any) -> str | None:
    """Segment ids may be strings or numbers; empty means absent."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _flatten(traits: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested traits (address.city…) as dotted keys; lists as JSON text: traits are scalars."""
    flat: dict[str, Any] = {}
    for key, value in traits.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        elif isinstance(value, list):
            flat[prefix + key] = orjson.dumps(value).decode()
        else:
            flat[prefix + key] = value
    return flat


def _kind(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", type(None): "null"}.get(
        type(value), type(value).__name__
    )
