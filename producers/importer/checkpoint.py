"""How far an import got: written only after Kafka acknowledged everything before it."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class Checkpoint:
    dataset: str
    offset: int  # bytes of the file fully handled (published or rejected)
    line: int  # lines of the file fully handled
    prefix_sha256: str  # of those bytes: a resumed import checks they are unchanged
    published: int
    rejected: int

    @staticmethod
    def load(path: Path) -> Checkpoint | None:
        try:
            return Checkpoint(**json.loads(path.read_text()))
        except (FileNotFoundError, ValueError, TypeError):
            return None

    def save(self, path: Path) -> None:
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(json.dumps(asdict(self)))
        os.replace(temporary, path)  # atomic: a crash leaves the old or the new, never half
