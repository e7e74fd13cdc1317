"""Whether an event is still as validation built it, so that its encoding needs no decode.

Every event is validated when built (`Envelope(...)`, `Envelope.new`, `decode_event`,
`build_event`), and the encoding of every validated event of every type decodes back to it
(property tests: tests/unit/test_wire_round_trip.py, tests/unit/test_publish_encoding.py).
A producer must still refuse what could have changed since, and this module says, in about
a microsecond (a decode costs ten or more), whether anything did:

- models built or changed without validation: `model_construct`, `model_copy(update=...)`,
  and copies or unpickled copies of those. `Frozen` records each such model for as long as
  it lives (`mark_unvalidated`); while the process holds any, no event is vouched for here,
  and the producer decodes each encoding as it did before (one such model anywhere may sit
  inside any event);
- a model of another class than the contract's where the contract names one (a subclass of
  a payload or of a nested model, which validation accepts as it is): checked by exact type;
- a dict field changed in place (a frozen model cannot stop that): such a field is
  validated again, alone, when it is not empty (its field validators included), and an
  empty one is refused if its field refuses empty; then the model's validators run. Its
  other fields hold immutable values, valid since the model was validated.

What is not detected: writing around a frozen model on purpose (`object.__setattr__`, its
`__dict__`, its fields set). The worker parks such a record when its decode fails, as it
parks any invalid record written by a client other than the SDK.
"""

from __future__ import annotations

import functools
import inspect
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import SchemaValidator

_unvalidated: dict[int, weakref.ref[Any]] = {}
"""id -> model, of every live model built or changed without validation."""

UNVALIDATED_STATE = "__rapport_unvalidated__"
"""Key in a pickled model's state: it was not validated (kept across processes)."""


def mark_unvalidated(model: object) -> None:
    """Record `model` as not validated, until it is garbage."""
    key = id(model)
    _unvalidated[key] = weakref.ref(model, functools.partial(_forget, key))


def _forget(key: int, _: weakref.ref[Any]) -> None:
    _unvalidated.pop(key, None)


def is_unvalidated(model: object) -> bool:
    return id(model) in _unvalidated


def unvalidated_models() -> int:
    """How many models built or changed without validation are alive in this process."""
    return len(_unvalidated)


Check = Callable[[Any], bool]


# -- the checks of one model class ---------------------------------------------------------
class _ModelCheck:
    """What can change in a validated model of one class, and how to check that it did not."""

    def __init__(self, cls: type[BaseModel]) -> None:
        self.cls = cls
        fields = _fields_of(cls)
        config = _model_schema(cls.__pydantic_core_schema__).get("config")
        self.field_names = tuple(fields)
        # Constrained dicts: name, the validator of the field alone (its field validators
        # included), whether an empty one is valid.
        self.containers: list[tuple[str, SchemaValidator, bool]] = []
        self.nested: list[tuple[str, frozenset[type]]] = []  # fields holding models
        self.always_revalidate = False  # validate the whole model whenever it is checked
        self.sound = True  # False: some field is read here in no way that proves anything
        for name, field in fields.items():
            kinds = _kinds(field["schema"])
            self.sound &= not kinds.unknown
            if kinds.models:
                self.nested.append((name, frozenset(kinds.models)))
            if kinds.containers:
                if kinds.with_info:  # a validator reading other fields: not alone
                    self.always_revalidate = True
                validator = SchemaValidator(field["schema"], config)
                self.containers.append((name, validator, _accepts(validator, kinds.empty)))
        self.after_validators: list[Check] = []
        for d in cls.__pydantic_decorators__.model_validators.values():
            if d.info.mode == "after" and _takes_self_only(d.func):
                self.after_validators.append(d.func)
            else:
                self.always_revalidate = True

    def compile(self, seen: frozenset[type] = frozenset()) -> Check | None:
        """The check of a validated `cls` instance (its class aside), nested models
        included; None when there is nothing to check beyond its class. Raises Unsound when
        some field is read here in no way that proves anything."""
        if not self.sound or self.cls in seen:  # a recursive model: not in the contract
            raise Unsound(self.cls)
        inner = seen | {self.cls}
        steps: list[Check] = []
        single = [(n, next(iter(cs))) for n, cs in self.nested if len(cs) == 1]
        for name, cls in single:
            check = _check_of(cls).compile(inner)
            steps.append(_one_model(name, cls, check))
        for name, classes in self.nested:
            if len(classes) > 1:
                checks = {cls: _check_of(cls).compile(inner) for cls in classes}
                steps.append(_any_models(name, checks))
        if self.containers:
            steps.append(self._revalidated if self.always_revalidate else self._dicts_unchanged)
        if len(steps) <= 1:
            return steps[0] if steps else None
        run = tuple(steps)

        def unchanged(model: Any) -> bool:
            for step in run:  # noqa: SIM110 (a generator costs a microsecond here)
                if not step(model):
                    return False
            return True

        return unchanged

    def _revalidated(self, model: Any) -> bool:
        try:
            self.cls.__pydantic_validator__.validate_python(
                {name: getattr(model, name) for name in self.field_names}
            )
        except ValidationError:
            return False
        return True

    def _dicts_unchanged(self, model: Any) -> bool:
        """The model's other fields hold immutable values, valid since it was validated: a
        dict that is not empty is validated again (alone), an empty one was found valid
        (or not) once; then the model validators run, which may read any field."""
        try:
            for name, validator, empty_is_valid in self.containers:
                value = getattr(model, name)
                if value:
                    validator.validate_python(value)
                elif not empty_is_valid:
                    return False
            for model_validator in self.after_validators:
                model_validator(model)
        except Exception:
            return False
        return True


class Unsound(TypeError):
    """A model has a field whose changes `as_validated` could not see."""


def _one_model(name: str, cls: type, check: Check | None) -> Check:
    """The check of a field holding one model of class `cls`, or None, or a tuple of them."""

    def unchanged(model: Any) -> bool:
        value = getattr(model, name)
        if type(value) is cls:
            return check is None or check(value)
        if value is None:
            return True
        if type(value) is tuple:
            for item in value:
                if type(item) is not cls or (check is not None and not check(item)):
                    return False
            return True
        return False

    return unchanged


def _any_models(name: str, checks: Mapping[type, Check | None]) -> Check:
    """The check of a field holding models of several classes (or None, or tuples)."""

    def unchanged(model: Any) -> bool:
        value = getattr(model, name)
        if value is None:
            return True
        for item in value if type(value) is tuple else (value,):
            if type(item) not in checks:
                return False
            check = checks[type(item)]
            if check is not None and not check(item):
                return False
        return True

    return unchanged


_checks: dict[type, _ModelCheck] = {}


def _check_of(cls: type[BaseModel]) -> _ModelCheck:
    check = _checks.get(cls)
    if check is None:
        check = _checks[cls] = _ModelCheck(cls)
    return check


Part = tuple[str, type, Check | None]
_event_parts: dict[type, tuple[Part, ...]] = {}
"""By current event model: its fields holding models (source, customer, payload), each with
the one class it must hold and the check of that model (None: nothing beyond its class)."""


def register_event_models(models: Iterable[type[BaseModel]]) -> list[type[BaseModel]]:
    """Let `as_validated` vouch for instances of `models` (the current event models); the
    models it cannot vouch for, having a field it cannot check (their events are decoded)."""
    refused = []
    for model in models:
        envelope = _check_of(model)
        try:
            if envelope.containers or any(len(classes) != 1 for _, classes in envelope.nested):
                raise Unsound(model)
            envelope.compile()  # raises Unsound for any field of any part
        except Unsound:
            refused.append(model)
            continue
        _event_parts[model] = tuple(
            (name, cls, _check_of(cls).compile())
            for name, (cls,) in ((name, tuple(classes)) for name, classes in envelope.nested)
        )
    return refused


def as_validated(event: object) -> bool:
    """True when `event` is an instance of a current event model that validation built,
    unchanged since; False when it may not be (the caller then decodes it)."""
    if _unvalidated:
        return False
    parts = _event_parts.get(type(event))
    if parts is None:
        return False
    # The hot path of every publish: the loop of _one_model, inlined.
    for name, cls, check in parts:
        part = getattr(event, name)
        if type(part) is not cls or (check is not None and not check(part)):
            return False
    return True


# -- reading pydantic-core schemas ----------------------------------------------------------
class _Kinds:
    def __init__(self) -> None:
        self.models: set[type] = set()
        self.containers = False  # holds a dict, list or set whose content has rules
        self.empty: object = None  # an empty container of its kind
        self.with_info = False  # a validator of it reads other fields (ValidationInfo)
        self.unknown = False  # holds something not read here


_LEAVES = frozenset(
    {
        "any", "none", "bool", "int", "float", "decimal", "str", "bytes", "date", "time",
        "datetime", "timedelta", "uuid", "literal", "enum", "url", "multi-host-url",
    }
)  # fmt: skip
"""Immutable values: a validated one stays valid."""
_WRAPPERS = frozenset({"default", "nullable", "function-after", "function-before", "function-wrap"})
_CONTAINERS = frozenset({"dict", "list", "set"})


def _model_schema(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    """The `model` schema of a model class (pydantic wraps it in its model validators)."""
    while schema["type"] in _WRAPPERS:
        schema = schema["schema"]
    if schema["type"] != "model":
        raise TypeError(f"not a model schema: {schema['type']}")
    return schema


def _fields_of(cls: type[BaseModel]) -> Mapping[str, Any]:
    """The field schemas of a model class, by name."""
    inner = _model_schema(cls.__pydantic_core_schema__)["schema"]
    while inner["type"] in _WRAPPERS:  # model validators in mode before / wrap
        inner = inner["schema"]
    fields: Mapping[str, Any] = inner["fields"]
    return fields


def _kinds(schema: Mapping[str, Any], found: _Kinds | None = None) -> _Kinds:
    """The models and constrained containers a value of `schema` can hold."""
    found = found or _Kinds()
    kind = schema["type"]
    if kind == "model":
        found.models.add(schema["cls"])
    elif kind in _WRAPPERS:
        if schema.get("function", {}).get("type", "no-info") != "no-info":
            found.with_info = True
        _kinds(schema["schema"], found)
    elif kind == "union":
        for choice in schema["choices"]:
            _kinds(choice[0] if isinstance(choice, tuple) else choice, found)
    elif kind == "tuple":
        for item in schema["items_schema"]:
            _kinds(item, found)
    elif kind in _CONTAINERS:
        if _constrained(schema):
            found.containers = True
            found.empty = {"dict": {}, "list": [], "set": set()}[kind]
        for part in ("keys_schema", "values_schema", "items_schema"):
            if part in schema:
                inner = _kinds(schema[part])
                # A model or a container inside a container: not walked here.
                found.unknown |= inner.unknown or bool(inner.models) or inner.containers
    elif kind not in _LEAVES:
        found.unknown = True
    return found


def _constrained(schema: Mapping[str, Any]) -> bool:
    """Whether a container's content has rules (dict[str, Any] has none)."""
    if "min_length" in schema or "max_length" in schema:
        return True
    for part in ("keys_schema", "values_schema", "items_schema"):
        inner = schema.get(part)
        if inner is not None and inner not in ({"type": "any"}, {"type": "str"}):
            return True
    return False


def _accepts(validator: SchemaValidator, value: object) -> bool:
    try:
        validator.validate_python(value)
    except ValidationError:
        return False
    return True


def _takes_self_only(function: Callable[..., Any]) -> bool:
    try:
        return len(inspect.signature(function).parameters) == 1
    except (TypeError, ValueError):
        return False
