"""The catalogue of event types, docs/events.md, generated from the models.

Everything in it comes from the registry, the models' docstrings and field descriptions, and
their JSON Schema, so it cannot drift from the code: a unit test fails when the committed
file differs from `render_catalogue()`, and `make catalogue` rewrites it.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.codec import encode_event
from schemas.envelope import Channel, CustomerRef, Envelope, Source
from schemas.json_schema import ContractJsonSchema, event_schema, schema_file_name
from schemas.registry import REGISTRY, EventType
from schemas.text import NO_NUL

_EXAMPLE_TIME = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
_EXAMPLE_IDS = uuid.UUID("5f0c6a4e-0000-4000-8000-000000000000")
_EXAMPLE_SYSTEMS = {
    Channel.CALL_CENTER: "genesys-cloud",
    Channel.EMAIL: "mailchimp",
    Channel.SOCIAL: "brandwatch",
    Channel.COMMUNITY: "brandwatch",
    Channel.COMMERCE: "shopify",
    Channel.SALES: "salesforce",
    Channel.SUPPORT: "zendesk",
    Channel.SURVEY: "qualtrics",
    Channel.WEB: "segment",
}
_LONGEST_ENUM_SHOWN = 15


def example_event(event_type: str, version: int | None = None) -> dict[str, Any]:
    """The documented example of `event_type` at `version`, as a whole event in wire form."""
    entry = REGISTRY.entry(event_type)
    version = version or entry.current_version
    payload = entry.models[version]
    event = REGISTRY.event_model(event_type, version)(
        event_id=uuid.uuid5(_EXAMPLE_IDS, f"{event_type}.v{version}"),
        type=event_type,
        schema_version=version,
        occurred_at=_EXAMPLE_TIME,
        received_at=_EXAMPLE_TIME + timedelta(seconds=2),
        source=Source(system=_EXAMPLE_SYSTEMS.get(payload.channel, "crm"), channel=payload.channel),
        customer=CustomerRef(customer_id="cust-001"),
        payload=payload.model_validate(payload.examples()[0]),
    )
    parsed: dict[str, Any] = json.loads(encode_event(event))
    return parsed


def render_catalogue() -> str:
    """The whole of docs/events.md."""
    types = REGISTRY.types()
    envelope = Envelope.model_json_schema(schema_generator=ContractJsonSchema)
    envelope["properties"]["payload"] = {
        "type": "object",
        "description": "What is specific to the type: see the type below.",
    }
    lines = [
        "# Event catalogue",
        "",
        "<!-- Generated from schemas/ by `make catalogue`; edit the models, not this file. -->",
        "",
        "Every touchpoint is one event: an envelope that every consumer reads the same way,",
        "and a payload whose shape depends on `type`. On the wire an event is one compact",
        "UTF-8 JSON object (`schemas.codec`): fields in the order below, absent optional",
        "fields omitted, amounts as decimal strings, timestamps as ISO 8601 with an offset.",
        "Every string is bounded and may not contain NUL. Each type carries a",
        "`schema_version`; decoders upcast older versions, so the log replays from the start.",
        "The JSON Schema of each type and version comes from `rapport schemas export DIR`.",
        "",
        "## Envelope",
        "",
        *_fields_table(envelope, envelope["$defs"]),
        "",
    ]
    for nested in ("Source", "CustomerRef"):
        lines += _nested_section(nested, envelope["$defs"], level=3)
    lines += [
        "## Event types",
        "",
        "| type | version | channel | what it records |",
        "| --- | --- | --- | --- |",
    ]
    for entry in types:
        model = entry.current_model
        lines.append(
            f"| [`{entry.name}`](#{_anchor(entry.name)}) | {entry.current_version} "
            f"| `{model.channel.value}` | {_first_line(model.__doc__)} |"
        )
    lines.append("")
    for entry in types:
        lines += _type_section(entry)
    return "\n".join(lines).rstrip() + "\n"


def _type_section(entry: EventType) -> list[str]:
    lines = [f"## {entry.name}", ""]
    lines += _version_section(entry, entry.current_version)
    for version in sorted(entry.models, reverse=True)[1:]:
        upcaster = entry.upcasters[version]
        lines += [
            f"### {entry.name}, version {version} (superseded)",
            "",
            f"Decoders upcast it to version {version + 1} with `{upcaster.__name__}`: "
            + " ".join((upcaster.__doc__ or "").split()),
            "",
        ]
        lines += _version_section(entry, version)
    return lines


def _version_section(entry: EventType, version: int) -> list[str]:
    model = entry.models[version]
    schema = event_schema(entry.name, version)
    defs = schema["$defs"]
    payload = defs[schema["properties"]["payload"]["$ref"].rsplit("/", 1)[-1]]
    lines = [
        " ".join((model.__doc__ or "").split()),
        "",
        f"Channel `{model.channel.value}` · version {version} · "
        f"JSON Schema `{schema_file_name(entry.name, version)}`",
        "",
        "Payload:",
        "",
        *_fields_table(payload, defs),
        "",
    ]
    for nested in _nested_models(payload, defs):
        lines += _nested_section(nested, defs, level=4)
    example = json.dumps(example_event(entry.name, version), indent=2, ensure_ascii=False)
    return [*lines, "Example:", "", "```json", example, "```", ""]


def _nested_section(name: str, defs: dict[str, Any], *, level: int) -> list[str]:
    schema = defs[name]
    return [
        f"{'#' * level} {name}",
        "",
        " ".join(schema.get("description", "").split()),
        "",
        *_fields_table(schema, defs),
        "",
    ]


def _nested_models(schema: dict[str, Any], defs: dict[str, Any]) -> list[str]:
    """Names of the object types a schema refers to (not enums), in order of first use."""
    found: list[str] = []

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if ref:
                name = ref.rsplit("/", 1)[-1]
                if "properties" in defs[name] and name not in found:
                    found.append(name)
                    visit(defs[name])
            for key, value in node.items():
                if key != "examples":
                    visit(value)
        elif isinstance(node, list):
            for item in node:
                visit(item)

    visit(schema.get("properties", {}))
    return found


def _fields_table(schema: dict[str, Any], defs: dict[str, Any]) -> list[str]:
    required = set(schema.get("required", []))
    rows = [
        "| field | type | required | constraints | description |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, prop in schema["properties"].items():
        kind, rules = _describe(prop, defs)
        if prop.get("default") not in (None, [], {}):
            rules.append(f"default `{json.dumps(prop['default'])}`")
        description = prop.get("description") or _ref_description(prop, defs)
        rows.append(
            f"| `{name}` | {kind} | {'yes' if name in required else 'no'} "
            f"| {_cell('; '.join(rules))} | {_cell(description)} |"
        )
    return rows


def _describe(prop: dict[str, Any] | bool, defs: dict[str, Any]) -> tuple[str, list[str]]:
    """(type, constraints) of one property, in words."""
    if isinstance(prop, bool):  # JSON Schema's `true`: any JSON value
        return "any JSON", []
    if "$ref" in prop:
        name = prop["$ref"].rsplit("/", 1)[-1]
        target = defs[name]
        if "enum" in target:
            return f"`{name}`", [_one_of(target["enum"])]
        return f"`{name}`", []
    if "anyOf" in prop:
        kinds, rules = [], []
        for member in prop["anyOf"]:
            if member.get("type") == "null":
                continue
            kind, member_rules = _describe(member, defs)
            kinds.append(kind)
            rules += member_rules
        return " or ".join(kinds) + (" or null" if _nullable(prop) else ""), rules
    if "const" in prop:
        return f"`{json.dumps(prop['const'])}`", []
    kind = prop.get("type", "any")
    rules = _rules(prop)
    if "enum" in prop:
        rules.insert(0, _one_of(prop["enum"]))
    if kind == "string" and "format" in prop:
        return f"string ({prop['format']})", rules
    if kind == "array":
        item, item_rules = _describe(prop.get("items", {}), defs)
        return f"array of {item}", rules + [f"each: {rule}" for rule in item_rules]
    if kind == "object" and "additionalProperties" in prop:
        value, value_rules = _describe(prop["additionalProperties"], defs)
        key_rules = _rules(prop.get("propertyNames", {}))
        return (
            f"map of string to {value}",
            rules + [f"keys: {r}" for r in key_rules] + [f"values: {r}" for r in value_rules],
        )
    return kind, rules


def _rules(prop: dict[str, Any]) -> list[str]:
    rules = []
    low, high = prop.get("minLength"), prop.get("maxLength")
    if high is not None:
        rules.append(f"length {low} to {high}" if low else f"length ≤ {high}")
    if prop.get("pattern") not in (None, NO_NUL):
        rules.append(f"pattern `{prop['pattern']}`")
    low, high = prop.get("minimum"), prop.get("maximum")
    if low is not None and high is not None:
        rules.append(f"{low} ≤ value ≤ {high}")
    elif low is not None:
        rules.append(f"≥ {low}")
    elif high is not None:
        rules.append(f"≤ {high}")
    if prop.get("minItems") == 1 or prop.get("minProperties") == 1:
        rules.append("not empty")
    for key, words in (("maxItems", "at most {} items"), ("maxProperties", "at most {} entries")):
        if key in prop:
            rules.append(words.format(prop[key]))
    return rules


def _one_of(values: list[Any]) -> str:
    if len(values) > _LONGEST_ENUM_SHOWN:
        return f"one of {len(values)} values (see the JSON Schema)"
    return "one of " + ", ".join(f"`{value}`" for value in values)


def _nullable(prop: dict[str, Any]) -> bool:
    return any(member.get("type") == "null" for member in prop.get("anyOf", []))


def _ref_description(prop: dict[str, Any], defs: dict[str, Any]) -> str:
    for member in [prop, *prop.get("anyOf", [])]:
        if "$ref" in member:
            return _first_line(defs[member["$ref"].rsplit("/", 1)[-1]].get("description"))
        if member.get("description"):
            return str(member["description"])
    return ""


def _first_line(text: str | None) -> str:
    return (text or "").strip().split("\n", 1)[0]


def _anchor(heading: str) -> str:
    return "".join(c for c in heading.lower() if c.isalnum() or c in "-_ ").replace(" ", "-")


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")
