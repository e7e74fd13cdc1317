"""Stream the rows of a file in constant memory, with line numbers and byte offsets.

Offsets let an import resume by seeking; the running SHA-256 of the bytes read lets it
check, on resume, that the part already imported is unchanged.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class RawRow:
    """One record: the line it starts on, the offset just past it, and its content."""

    line: int
    end_offset: int
    content: bytes | dict[str, str]  # a JSON line, or a CSV record by column name


class ByteCounter:
    """Reads lines from a binary file, counting lines and bytes and hashing what it read."""

    def __init__(self, file: BinaryIO, *, offset: int = 0, line: int = 0) -> None:
        self.file = file
        self.offset = offset
        self.line = line
        self.sha256 = hashlib.sha256()

    def lines(self) -> Iterator[bytes]:
        for raw in self.file:
            self.offset += len(raw)
            self.line += 1
            self.sha256.update(raw)
            yield raw


def prefix_digest(file: BinaryIO, length: int) -> str:
    """SHA-256 of the first `length` bytes (to recognise an import's already-done part)."""
    return str(hash_prefix(file, length, hashlib.sha256()).hexdigest())


def hash_prefix(file: BinaryIO, length: int, digest: Any) -> Any:
    """Feed the first `length` bytes to `digest`, 1 MiB at a time; leaves the file there."""
    file.seek(0)
    left = length
    while left > 0:
        chunk = file.read(min(left, 1 << 20))
        if not chunk:
            break
        digest.update(chunk)
        left -= len(chunk)
    return digest


def jsonl_rows(counter: ByteCounter) -> Iterator[RawRow]:
    for raw in counter.lines():
        if raw.strip():
            yield RawRow(counter.line, counter.offset, raw)


def csv_header(file: BinaryIO) -> tuple[list[str], int]:
    """The column names and the offset where the records start."""
    file.seek(0)
    first = file.readline()
    header = next(csv.reader([first.removeprefix(_BOM).decode("utf-8")]), [])
    return [name.strip() for name in header], len(first)


def csv_rows(counter: ByteCounter, header: list[str]) -> Iterator[RawRow]:
    # csv.reader pulls exactly the lines of one record (several when a quoted field holds a
    # newline), so after each record the counter's offset is just past it.
    text = (raw.decode("utf-8", errors="replace") for raw in counter.lines())
    for record in csv.reader(text):
        first_line = counter.line - _newlines(record)
        if not record or all(not cell for cell in record):
            continue
        yield RawRow(first_line, counter.offset, dict(zip(header, record, strict=False)))


def _newlines(record: list[str]) -> int:
    return sum(cell.count("\n") for cell in record)
