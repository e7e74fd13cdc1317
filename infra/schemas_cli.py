"""`rapport schemas …`: the event contract as files, for other languages and for people."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from schemas.errors import RapportError

schemas_app = typer.Typer(
    no_args_is_help=True, help="The event contract: JSON Schema export and the catalogue."
)
out = Console(soft_wrap=True)

DEFAULT_CATALOGUE = Path("docs/events.md")


@schemas_app.command("export")
def export(
    directory: Annotated[Path, typer.Argument(help="Where to write the .json files.")],
) -> None:
    """Write the JSON Schema of every event type and version, and an index.json."""
    from schemas.json_schema import all_event_schemas

    directory.mkdir(parents=True, exist_ok=True)
    schemas = all_event_schemas()
    for name, schema in schemas.items():
        text = json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
        (directory / name).write_text(text, encoding="utf-8")
    out.print(f"wrote {len(schemas)} files to {directory}")


@schemas_app.command("catalogue")
def catalogue(
    path: Annotated[Path, typer.Argument(help="The Markdown file.")] = DEFAULT_CATALOGUE,
    check: Annotated[
        bool, typer.Option("--check", help="Only fail if the file is not up to date.")
    ] = False,
) -> None:
    """Write the event catalogue (Markdown) generated from the models."""
    from schemas.catalogue import render_catalogue

    text = render_catalogue()
    current = path.read_text(encoding="utf-8") if path.exists() else None
    if check:
        if current != text:
            raise RapportError(f"{path} is not up to date: run `make catalogue`")
        out.print(f"{path} is up to date")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    out.print(f"wrote {path}" if current != text else f"{path} was already up to date")
