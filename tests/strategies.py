"""Hypothesis strategies built from the contract's own models.

An event of a registered type is drawn as: its payload's hand-written example, or a
variation of it in which each field keeps the example's value or takes one generated from
the field's pydantic-core schema (lengths, bounds, patterns, enums, decimal places), inside
an envelope generated the same way. A payload without an example, or a schema construct
this module does not know, raises when the strategy is built, so a newly registered type
cannot go untested: extend `_values_for` and the tests pick it up.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta, timezone
from decimal import Decimal
from functools import cache
from typing import Any, TypeVar

from hypothesis import reject
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from schemas import REGISTRY, Envelope, Payload
from schemas.money import ISO_4217, known_currency
from schemas.payloads.profile import IANA_ZONES, known_zone
from schemas.text import NO_NUL

SearchStrategy = st.SearchStrategy
M = TypeVar("M", bound=BaseModel)

# Validators whose accepted values are a small set the schema cannot express.
_VALUES_OF_CHECKS: dict[Callable[..., Any], SearchStrategy[Any]] = {
    known_currency: st.sampled_from(sorted(ISO_4217)),
    known_zone: st.sampled_from(sorted(IANA_ZONES)),
}

# Any character JSON, UTF-8 and PostgreSQL can carry: no NUL, no lone surrogates.
_TEXT = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")
_LONGEST_GENERATED = 40  # longer strings test nothing more, and cost generation time
_LARGEST_COLLECTION = 4

# Fixed offsets as producers send them; zone rules would only add historic LMT oddities.
_OFFSETS = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)


@cache
def payload_inputs(model: type[Payload]) -> SearchStrategy[dict[str, Any]]:
    """Input dicts for `model`: its first example, and variations of it field by field."""
    examples = model.examples()
    if not examples:
        raise LookupError(
            f"{model.__name__} ({model.event_type} v{model.schema_version}) has no example: "
            "add one to its model_config json_schema_extra"
        )
    return st.one_of(
        st.just(examples[0]), _model_inputs(model.__pydantic_core_schema__, examples[0])
    )


@cache
def payloads(model: type[Payload]) -> SearchStrategy[Payload]:
    """Valid payloads of `model` (of any version)."""
    return payload_inputs(model).map(lambda raw: _valid_or_reject(model, raw))


@cache
def events(event_type: str) -> SearchStrategy[Envelope]:
    """Valid current-version events of `event_type`."""
    model = REGISTRY.event_model(event_type)
    payload = payload_inputs(REGISTRY.current_model(event_type))
    inputs = _model_inputs(model.__pydantic_core_schema__, overrides={"payload": payload})
    return inputs.map(lambda raw: _valid_or_reject(model, raw))


def _valid_or_reject(model: type[M], raw: Mapping[str, Any]) -> M:
    try:
        return model.model_validate(raw)
    except ValidationError:
        reject()  # a cross-field rule (e.g. margin <= amount) the field strategies missed


def _model_inputs(
    schema: Mapping[str, Any],
    seed: Mapping[str, Any] | None = None,
    overrides: Mapping[str, SearchStrategy[Any]] | None = None,
) -> SearchStrategy[dict[str, Any]]:
    while schema["type"] in ("function-after", "function-before", "model"):  # rules come later
        schema = schema["schema"]
    if schema["type"] != "model-fields":
        raise NotImplementedError(f"not a model schema: {schema['type']}")
    seed, overrides = seed or {}, overrides or {}
    required: dict[str, SearchStrategy[Any]] = {}
    optional: dict[str, SearchStrategy[Any]] = {}
    for name, field in schema["fields"].items():
        value_schema = field["schema"]
        has_default = value_schema["type"] == "default"
        if name in overrides:
            generated = overrides[name]
        else:
            generated = _values_for(value_schema["schema"] if has_default else value_schema)
        if name in seed:
            required[name] = st.one_of(st.just(seed[name]), generated)
        elif has_default:
            optional[name] = generated
        else:
            required[name] = generated
    return st.fixed_dictionaries(required, optional=optional)


def _values_for(schema: Mapping[str, Any]) -> SearchStrategy[Any]:
    kind = schema["type"]
    if kind == "str":
        return _strings(schema)
    if kind == "int":
        return st.integers(min_value=schema.get("ge"), max_value=schema.get("le"))
    if kind == "float":
        return st.floats(
            min_value=schema.get("ge"),
            max_value=schema.get("le"),
            allow_nan=False,
            allow_infinity=False,
        )
    if kind == "bool":
        return st.booleans()
    if kind == "decimal":
        return _decimals(schema)
    if kind == "datetime":
        aware = schema.get("tz_constraint") == "aware"
        return st.datetimes(timezones=_OFFSETS if aware else st.none())
    if kind == "time":
        return st.times()
    if kind == "uuid":
        return st.uuids()
    if kind == "enum":
        return st.sampled_from(schema["members"])
    if kind == "literal":
        return st.sampled_from(schema["expected"])
    if kind == "nullable":
        return st.one_of(st.none(), _values_for(schema["schema"]))
    if kind == "default":
        return _values_for(schema["schema"])
    if kind == "union":
        choices = [c[0] if isinstance(c, tuple) else c for c in schema["choices"]]
        return st.one_of([_values_for(choice) for choice in choices])
    if kind == "tuple" and schema.get("variadic_item_index") == 0:
        (item,) = schema["items_schema"]
        return st.lists(
            _values_for(item),
            min_size=schema.get("min_length", 0),
            max_size=min(schema.get("max_length", _LARGEST_COLLECTION), _LARGEST_COLLECTION),
        ).map(tuple)
    if kind == "dict":
        return st.dictionaries(
            _values_for(schema["keys_schema"]),
            _values_for(schema["values_schema"]),
            min_size=schema.get("min_length", 0),
            max_size=min(schema.get("max_length", _LARGEST_COLLECTION), _LARGEST_COLLECTION),
        )
    if kind in ("function-after", "function-before"):
        check = schema["function"]["function"]
        if check in _VALUES_OF_CHECKS:
            return _VALUES_OF_CHECKS[check]
        return _values_for(schema["schema"])
    if kind == "model":
        return _model_inputs(schema)
    if kind == "any":  # free-form JSON, e.g. an emitter's context
        text = st.text(
            st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20
        )
        scalars = st.none() | st.booleans() | st.integers(-(10**9), 10**9) | text
        return st.recursive(
            scalars,
            lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
            max_leaves=6,
        )
    raise NotImplementedError(
        f"tests/strategies.py cannot generate values for a {kind!r} schema yet: {schema}"
    )


def _strings(schema: Mapping[str, Any]) -> SearchStrategy[str]:
    low = schema.get("min_length", 0)
    high = min(schema.get("max_length", _LONGEST_GENERATED), _LONGEST_GENERATED)
    pattern = schema.get("pattern")
    if pattern in (None, NO_NUL):
        drawn = st.text(_TEXT, min_size=low, max_size=high)
    else:
        drawn = st.from_regex(pattern, fullmatch=True, alphabet=_TEXT)
    # Strings are stripped before their length is checked (Frozen's str_strip_whitespace).
    longest = schema.get("max_length", 10**9)
    return drawn.filter(lambda text: low <= len(text.strip()) <= longest)


def _decimals(schema: Mapping[str, Any]) -> SearchStrategy[Decimal]:
    places = schema["decimal_places"]
    largest = Decimal(10) ** (schema["max_digits"] - places) - Decimal(1).scaleb(-places)
    return st.decimals(
        min_value=schema.get("ge", -largest),
        max_value=schema.get("le", largest),
        places=places,
        allow_nan=False,
        allow_infinity=False,
    )
