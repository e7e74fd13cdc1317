"""Run an import: read, map, validate, publish; checkpoint what Kafka acknowledged.

Resumable twice over. Event ids are derived from the rows (an id column, or the dataset
name, line number and row content), so re-publishing a row gives the same event, which the
worker dedupes. And a checkpoint, written only after a flush succeeded, lets a re-run skip
straight to the first row not yet acknowledged (if the part before it is unchanged).
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import orjson

from producers.errors import ImportFailed
from producers.importer.checkpoint import Checkpoint
from producers.importer.mapping import ColumnMapping
from producers.importer.readers import (
    ByteCounter,
    RawRow,
    csv_header,
    csv_rows,
    hash_prefix,
    jsonl_rows,
    prefix_digest,
)
from schemas import Envelope
from schemas.errors import ContractError, EventValidationError, SubjectErased, UnknownEventType
from schemas.registry import REGISTRY
from schemas.validation import event_from_dict

_PREPARE_EVENTS = 1000  # events whose new data keys are made in one round trip
IMPORT_NAMESPACE = uuid.UUID("0b7a1f6e-5c4d-4e8a-9f2b-3d6c8e1a4b57")


class EventSink(Protocol):
    """Where imported events go (the SDK's Publisher, or a fake in tests)."""

    def publish(self, event: Envelope) -> object: ...

    def flush(self, timeout: float | None = None) -> None:
        """Return once everything published is acknowledged; raise if something was not."""
        ...


@dataclass(frozen=True)
class ImportOptions:
    file: Path
    format: Literal["csv", "jsonl"] | None = None  # None: from the file's suffix
    mapping: ColumnMapping | None = None  # required for CSV
    dataset: str | None = None  # the file's identity in derived event ids; default its name
    checkpoint: Path | None = None  # default: FILE.checkpoint.json
    rejects: Path | None = None  # default: FILE.rejects.jsonl
    resume: bool = True
    chunk_rows: int = 10_000  # rows between checkpoints
    system: str = "rapport-import"  # source.system of events that name none

    @property
    def dataset_name(self) -> str:
        return self.dataset or self.file.name

    @property
    def checkpoint_path(self) -> Path:
        return self.checkpoint or self.file.with_name(self.file.name + ".checkpoint.json")

    @property
    def rejects_path(self) -> Path:
        return self.rejects or self.file.with_name(self.file.name + ".rejects.jsonl")

    @property
    def file_format(self) -> str:
        if self.format:
            return self.format
        suffix = self.file.suffix.lower()
        if suffix in (".csv", ".tsv"):
            return "csv"
        if suffix in (".jsonl", ".ndjson", ".json"):
            return "jsonl"
        raise ImportFailed(f"cannot tell the format of {self.file.name}: pass --format csv|jsonl")


@dataclass(frozen=True)
class ImportProgress:
    bytes_done: int
    bytes_total: int
    rows: int
    published: int
    rejected: int


@dataclass
class ImportReport:
    rows: int = 0  # rows read in this run
    published: int = 0
    rejected: int = 0
    resumed_at_line: int = 0  # lines skipped thanks to the checkpoint
    seconds: float = 0.0
    reasons: Counter[str] = field(default_factory=Counter)  # rejection reason -> rows
    rejects_path: Path | None = None


def run_import(
    options: ImportOptions,
    sink: EventSink,
    on_progress: Callable[[ImportProgress], None] | None = None,
) -> ImportReport:
    """Import `options.file` into `sink`; raise ImportFailed if it cannot start or go on."""
    began = time.monotonic()
    fmt = options.file_format
    if fmt == "csv" and options.mapping is None:
        raise ImportFailed("a CSV import needs a column mapping (--mapping or --map)")
    try:
        file = open(options.file, "rb")  # noqa: SIM115 - closed in the finally below
    except OSError as exc:
        raise ImportFailed(f"cannot read {options.file}: {exc}") from None
    report = ImportReport(rejects_path=options.rejects_path)
    try:
        total = options.file.stat().st_size
        header: list[str] = []
        start_offset = 0
        if fmt == "csv":
            assert options.mapping is not None
            header, start_offset = csv_header(file)
            options.mapping.check(header)
        done = _resume_point(options, file) if options.resume else None
        counter = ByteCounter(file, offset=start_offset, line=1 if fmt == "csv" else 0)
        published, rejected = 0, 0
        if done is not None:
            counter = ByteCounter(file, offset=done.offset, line=done.line)
            report.resumed_at_line = done.line
            published, rejected = done.published, done.rejected
        hash_prefix(file, counter.offset, counter.sha256)  # the hash covers the whole prefix
        rows = csv_rows(counter, header) if fmt == "csv" else jsonl_rows(counter)
        mode = "ab" if done is not None else "wb"
        with open(options.rejects_path, mode) as rejects:
            since_checkpoint = 0
            pending: list[tuple[int, Envelope]] = []  # published before each checkpoint
            for row in rows:
                report.rows += 1
                try:
                    event = _event(row, options)
                except _Rejected as why:
                    report.rejected += 1
                    report.reasons[why.reason] += 1
                    rejects.write(
                        orjson.dumps({"line": row.line, "reason": why.detail, "row": _text(row)})
                        + b"\n"
                    )
                else:
                    pending.append((row.line, event))
                    if len(pending) >= _PREPARE_EVENTS:
                        _publish(sink, pending, rejects, report)
                since_checkpoint += 1
                if since_checkpoint >= options.chunk_rows:
                    since_checkpoint = 0
                    _publish(sink, pending, rejects, report)
                    _checkpoint(options, sink, rejects, counter, report, published, rejected)
                    if on_progress:
                        on_progress(
                            ImportProgress(
                                counter.offset,
                                total,
                                report.rows,
                                report.published,
                                report.rejected,
                            )
                        )
            _publish(sink, pending, rejects, report)
            _checkpoint(options, sink, rejects, counter, report, published, rejected)
            if on_progress:
                on_progress(
                    ImportProgress(total, total, report.rows, report.published, report.rejected)
                )
    finally:
        file.close()
    report.seconds = time.monotonic() - began
    return report


def _publish(
    sink: EventSink, pending: list[tuple[int, Envelope]], rejects: Any, report: ImportReport
) -> None:
    """Publish the events read since the last call (and empty `pending`); a sink that seals
    makes their customers' new keys in one round trip first."""
    prepare = getattr(sink, "prepare", None)
    if prepare is not None and pending:
        prepare([event for _, event in pending])
    for line, event in pending:
        try:
            sink.publish(event)
        except SubjectErased as why:
            # Not the row: it is personal data of someone who asked to be erased.
            report.rejected += 1
            report.reasons["erased"] += 1
            rejects.write(orjson.dumps({"line": line, "reason": str(why)}) + b"\n")
        else:
            report.published += 1
    pending.clear()


def _resume_point(options: ImportOptions, file: Any) -> Checkpoint | None:
    done = Checkpoint.load(options.checkpoint_path)
    if done is None or done.dataset != options.dataset_name:
        return None
    if prefix_digest(file, done.offset) != done.prefix_sha256:
        return None  # the file changed under the checkpoint: start over (ids dedupe)
    return done


def _checkpoint(
    options: ImportOptions,
    sink: EventSink,
    rejects: Any,
    counter: ByteCounter,
    report: ImportReport,
    published_before: int,
    rejected_before: int,
) -> None:
    sink.flush()  # raises if Kafka did not take everything: the checkpoint stays behind
    rejects.flush()
    Checkpoint(
        dataset=options.dataset_name,
        offset=counter.offset,
        line=counter.line,
        prefix_sha256=counter.sha256.hexdigest(),
        published=published_before + report.published,
        rejected=rejected_before + report.rejected,
    ).save(options.checkpoint_path)


class _Rejected(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason  # without values: rows with the same problem group together
        self.detail = detail


def _event(row: RawRow, options: ImportOptions) -> Envelope:
    if isinstance(row.content, bytes):
        try:
            raw = orjson.loads(row.content)
        except orjson.JSONDecodeError as exc:
            raise _Rejected("malformed JSON", f"malformed JSON: {exc}") from None
        if not isinstance(raw, dict):
            raise _Rejected("not a JSON object", "a line must hold one JSON object")
    else:
        assert options.mapping is not None
        raw = options.mapping.event(row.content)
    event_type = raw.get("type")
    try:
        model = REGISTRY.current_model(event_type)
    except UnknownEventType as exc:
        raise _Rejected(f"unknown event type {event_type!r}", str(exc)) from None
    raw.setdefault("schema_version", model.schema_version)
    source = raw.setdefault("source", {"system": options.system})
    if isinstance(source, dict):
        source.setdefault("system", options.system)
        source.setdefault("channel", model.channel.value)
    if "event_id" not in raw:
        raw["event_id"] = str(_derived_id(row, raw, options))
    try:
        return event_from_dict(raw)
    except EventValidationError as exc:
        reason = "; ".join(f"{path}: {rule}" for path, _, rule in exc.problems)
        detail = "; ".join(
            f"{path}: {rule}" if rule == "Field required" else f"{path}={value!r}: {rule}"
            for path, value, rule in exc.problems
        )
        raise _Rejected(reason, detail) from None
    except ContractError as exc:
        raise _Rejected(type(exc).__name__, str(exc)) from None


def _derived_id(row: RawRow, raw: dict[str, Any], options: ImportOptions) -> uuid.UUID:
    id_column = options.mapping.id_column if options.mapping else None
    if id_column and isinstance(row.content, dict) and row.content.get(id_column, "").strip():
        value = row.content[id_column].strip()
        try:
            return uuid.UUID(value)
        except ValueError:
            # Scoped by type, not by file: the same order exported twice is one event.
            return uuid.uuid5(IMPORT_NAMESPACE, f"{raw.get('type')}/{value}")
    content = row.content if isinstance(row.content, bytes) else orjson.dumps(row.content)
    digest = hashlib.sha256(content).hexdigest()
    return uuid.uuid5(IMPORT_NAMESPACE, f"{options.dataset_name}/{row.line}/{digest}")


def _text(row: RawRow) -> Any:
    if isinstance(row.content, bytes):
        return row.content.decode("utf-8", errors="replace").rstrip("\n")
    return row.content
