"""Which CSV column fills which event field, and which fields are constants.

A mapping file (TOML):

    id_column = "order_id"            # optional: event ids derived from this column
    [columns]                         # event field path = CSV column
    "customer.customer_id" = "customer"
    occurred_at = "ordered_at"
    "payload.order_id" = "order_id"
    "payload.amount" = "total"
    [values]                          # event field path = constant
    type = "commerce.purchased"
    "payload.currency" = "EUR"

or the same on the command line: `--map payload.amount=total --set type=commerce.purchased`.
Empty cells leave their field out; text is converted by the contract's own validation.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from producers.errors import ImportFailed


@dataclass(frozen=True)
class ColumnMapping:
    columns: dict[str, str] = field(default_factory=dict)  # field path -> column
    values: dict[str, Any] = field(default_factory=dict)  # field path -> constant
    id_column: str | None = None

    @classmethod
    def load(cls, path: Path) -> ColumnMapping:
        try:
            data = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ImportFailed(f"cannot read column mapping {path}: {exc}") from None
        unknown = set(data) - {"columns", "values", "id_column"}
        if unknown:
            raise ImportFailed(f"{path}: unknown key(s) {', '.join(sorted(unknown))}")
        return cls(
            dict(data.get("columns", {})), dict(data.get("values", {})), data.get("id_column")
        )

    def with_options(
        self, maps: Iterable[str], sets: Iterable[str], id_column: str | None
    ) -> ColumnMapping:
        """This mapping plus `path=column` (maps) and `path=value` (sets) options."""
        return ColumnMapping(
            {**self.columns, **dict(_pair(m, "--map") for m in maps)},
            {**self.values, **dict(_pair(s, "--set") for s in sets)},
            id_column or self.id_column,
        )

    def check(self, header: Iterable[str]) -> None:
        """Fail before the first row if a mapped column is not in the file."""
        present = set(header)
        missing = sorted(
            {c for c in self.columns.values() if c not in present}
            | ({self.id_column} - present if self.id_column else set())
        )
        if missing:
            has = ", ".join(sorted(present))
            raise ImportFailed(f"column(s) {', '.join(missing)} not in the file; it has {has}")
        if not self.columns:
            raise ImportFailed("a CSV import needs a column mapping (--mapping or --map)")

    def event(self, row: Mapping[str, str]) -> dict[str, Any]:
        """The event dict one CSV row describes (not yet validated)."""
        event: dict[str, Any] = {}
        for path, value in self.values.items():
            _put(event, path, value)
        for path, column in self.columns.items():
            cell = row.get(column)
            if cell is not None and cell.strip() != "":
                _put(event, path, cell.strip())
        return event


def _pair(option: str, name: str) -> tuple[str, str]:
    path, sep, value = option.partition("=")
    if not sep or not path.strip():
        raise ImportFailed(f"{name} expects field.path=value, got {option!r}")
    return path.strip(), value.strip()


def _put(target: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    for part in parents:
        target = target.setdefault(part, {})
    target[leaf] = value
