"""docs/events.md is generated from the models and must be regenerated when they change."""

from __future__ import annotations

import difflib
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from infra.cli import app
from schemas import REGISTRY, decode_event
from schemas.catalogue import example_event, render_catalogue

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "events.md"


def test_the_committed_catalogue_is_up_to_date() -> None:
    committed = COMMITTED.read_text(encoding="utf-8")
    fresh = render_catalogue()
    if committed != fresh:
        diff = difflib.unified_diff(
            committed.splitlines(), fresh.splitlines(), "committed", "generated", lineterm=""
        )
        excerpt = "\n".join(list(diff)[:30])
        pytest.fail(f"docs/events.md is stale: run `make catalogue` and commit it\n{excerpt}")


def test_every_type_and_version_has_a_section_with_a_decodable_example() -> None:
    catalogue = render_catalogue()
    for entry in REGISTRY.types():
        assert f"\n## {entry.name}\n" in catalogue
        for version in entry.models:
            example = example_event(entry.name, version)
            assert json.dumps(example, indent=2, ensure_ascii=False) in catalogue
            decoded = decode_event(json.dumps(example))
            assert decoded.schema_version == entry.current_version


def test_the_cli_checks_and_writes_the_catalogue(tmp_path: Path) -> None:
    target = tmp_path / "events.md"
    runner = CliRunner()
    stale = runner.invoke(app, ["schemas", "catalogue", str(target), "--check"])
    assert stale.exit_code != 0
    written = runner.invoke(app, ["schemas", "catalogue", str(target)])
    assert written.exit_code == 0, written.output
    assert target.read_text(encoding="utf-8") == render_catalogue()
    assert runner.invoke(app, ["schemas", "catalogue", str(target), "--check"]).exit_code == 0


def test_the_cli_exports_every_schema(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["schemas", "export", str(tmp_path / "json")])
    assert result.exit_code == 0, result.output
    names = {path.name for path in (tmp_path / "json").iterdir()}
    assert {"index.json", "call_center.call.v1.json", "call_center.call.v2.json"} <= names
    index = json.loads((tmp_path / "json" / "index.json").read_text())
    assert set(index["event_types"]) == set(REGISTRY.known_types())
