"""JSON Schema (draft 2020-12) of every event type, at every version, for other languages.

One schema per (type, version) describes the whole event, envelope and payload, with `type`
and `schema_version` pinned; superseded versions are marked deprecated. The schemas
describe the input the decoder accepts, narrowed where the canonical encoding is narrower
(amounts are decimal strings).
"""

from __future__ import annotations

from typing import Any

from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from schemas.registry import REGISTRY

DIALECT = "https://json-schema.org/draft/2020-12/schema"


class ContractJsonSchema(GenerateJsonSchema):
    """pydantic's generator, with mappings whose keys have a pattern described exactly.

    pydantic writes `dict[Key, Value]` with a patterned key as patternProperties, which
    leaves keys that do not match unconstrained; the contract rejects them, so the pattern
    goes into propertyNames and the value schema applies to every key.
    """

    def dict_schema(self, schema: core_schema.DictSchema) -> JsonSchemaValue:
        json_schema = super().dict_schema(schema)
        patterned = json_schema.pop("patternProperties", None)
        if patterned:
            ((pattern, values),) = patterned.items()
            json_schema["additionalProperties"] = values
            json_schema["propertyNames"] = {
                **json_schema.get("propertyNames", {}),
                "pattern": pattern,
            }
        return json_schema


def schema_file_name(event_type: str, version: int) -> str:
    return f"{event_type}.v{version}.json"


def event_schema(event_type: str, version: int | None = None) -> dict[str, Any]:
    """The JSON Schema of an event of `event_type` at `version` (default: the current one)."""
    entry = REGISTRY.entry(event_type)
    version = version or entry.current_version
    model = REGISTRY.event_model(event_type, version)
    schema = model.model_json_schema(schema_generator=ContractJsonSchema)
    head: dict[str, Any] = {
        "$schema": DIALECT,
        "$id": schema_file_name(event_type, version),
        "title": f"{event_type} v{version}",
    }
    if version != entry.current_version:
        head["deprecated"] = True
        schema["description"] = (
            f"Superseded by version {entry.current_version}; decoders upcast it. "
            + schema.get("description", "")
        ).strip()
    return {**schema, **head}


def all_event_schemas() -> dict[str, dict[str, Any]]:
    """Every event schema by file name, and `index.json` mapping types to their files."""
    schemas: dict[str, dict[str, Any]] = {}
    index: dict[str, Any] = {}
    for entry in REGISTRY.types():
        files = {}
        for version in sorted(entry.models):
            name = schema_file_name(entry.name, version)
            schemas[name] = event_schema(entry.name, version)
            files[str(version)] = name
        index[entry.name] = {"current_version": entry.current_version, "versions": files}
    return {"index.json": {"event_types": index}, **schemas}
