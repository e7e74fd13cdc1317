"""The bulk importer with a fake sink: mapping, rejects, stable ids and resuming."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from producers.errors import DeliveryFailed
from producers.importer import ColumnMapping, ImportOptions, run_import
from schemas import Envelope
from schemas.errors import SubjectErased

CSV = """order_id,customer,ordered_at,total,note
o-1,c-1,2025-03-01T10:00:00Z,12.50,"two
lines"
o-2,c-2,2025-03-02T10:00:00Z,abc,
o-3,,2025-03-03T10:00:00Z,5,
o-4,c-3,2025-03-04T10:00:00Z,7,
"""
MAPPING = ColumnMapping(
    columns={
        "customer.customer_id": "customer",
        "occurred_at": "ordered_at",
        "payload.order_id": "order_id",
        "payload.amount": "total",
    },
    values={"type": "commerce.purchased", "payload.currency": "EUR"},
)


class FakeSink:
    """Implements the EventSink protocol; can fail on a given flush."""

    def __init__(self, fail_on_flush: int | None = None) -> None:
        self.pending: list[Envelope] = []
        self.stored: list[Envelope] = []
        self.flushes = 0
        self.fail_on_flush = fail_on_flush

    def publish(self, event: Envelope) -> None:
        self.pending.append(event)

    def flush(self, timeout: float | None = None) -> None:
        self.flushes += 1
        if self.flushes == self.fail_on_flush:
            self.pending.clear()
            raise DeliveryFailed("broker went away")
        self.stored += self.pending
        self.pending.clear()


def test_csv_rows_become_events_and_bad_rows_go_to_rejects(tmp_path: Path) -> None:
    file = tmp_path / "orders.csv"
    file.write_text(CSV)
    sink = FakeSink()
    report = run_import(ImportOptions(file, mapping=MAPPING), sink)
    assert (report.published, report.rejected) == (2, 2)
    assert [e.payload.order_id for e in sink.stored] == ["o-1", "o-4"]  # type: ignore[attr-defined]
    rejects = [
        orjson.loads(line)
        for line in (tmp_path / "orders.csv.rejects.jsonl").read_bytes().splitlines()
    ]
    assert [r["line"] for r in rejects] == [4, 5]  # o-1 spans lines 2 and 3
    assert "payload.amount='abc'" in rejects[0]["reason"] and rejects[1]["row"]["order_id"] == "o-3"
    assert report.reasons["customer: Field required"] == 1


def test_ids_are_stable_and_a_rerun_resumes_after_the_checkpoint(tmp_path: Path) -> None:
    file = tmp_path / "events.csv"
    file.write_text(CSV)
    first, second = FakeSink(), FakeSink()
    run_import(ImportOptions(file, mapping=MAPPING), first)
    again = run_import(ImportOptions(file, mapping=MAPPING, resume=False), second)
    assert [e.event_id for e in first.stored] == [e.event_id for e in second.stored]
    assert again.published == 2

    with file.open("a") as f:
        f.write("o-5,c-4,2025-03-05T10:00:00Z,3,\n")
    third = FakeSink()
    report = run_import(ImportOptions(file, mapping=MAPPING), third)
    assert report.resumed_at_line == 6 and [e.payload.order_id for e in third.stored] == ["o-5"]  # type: ignore[attr-defined]


def test_a_failed_flush_leaves_the_checkpoint_behind(tmp_path: Path) -> None:
    file = tmp_path / "sim.jsonl"
    lines = [
        orjson.dumps(
            {
                "type": "custom.event",
                "occurred_at": "2025-01-01T00:00:00Z",
                "customer": {"customer_id": f"c{i}"},
                "payload": {"name": "n"},
            }
        )
        for i in range(25)
    ]
    file.write_bytes(b"\n".join(lines) + b"\n")
    with pytest.raises(DeliveryFailed):
        run_import(ImportOptions(file, chunk_rows=10), FakeSink(fail_on_flush=2))
    sink = FakeSink()
    report = run_import(ImportOptions(file, chunk_rows=10), sink)
    assert report.resumed_at_line == 10 and len(sink.stored) == 15


def test_changed_file_is_imported_from_the_start(tmp_path: Path) -> None:
    file = tmp_path / "orders.csv"
    file.write_text(CSV)
    run_import(ImportOptions(file, mapping=MAPPING), FakeSink())
    file.write_text(CSV.replace("12.50", "13.50"))
    sink = FakeSink()
    report = run_import(ImportOptions(file, mapping=MAPPING), sink)
    assert report.resumed_at_line == 0 and len(sink.stored) == 2


class ErasingSink(FakeSink):
    """A sink that seals: it prepares keys per batch and refuses an erased customer."""

    def __init__(self, erased: str) -> None:
        super().__init__()
        self.erased = erased
        self.prepared: list[int] = []

    def prepare(self, events: list[Envelope]) -> None:
        self.prepared.append(len(events))

    def publish(self, event: Envelope) -> None:
        if event.customer.customer_id == self.erased:
            raise SubjectErased("customer: this event's customer was erased")
        super().publish(event)


def test_an_erased_customers_rows_are_rejected_without_their_content(tmp_path: Path) -> None:
    file = tmp_path / "orders.csv"
    file.write_text(CSV)
    sink = ErasingSink("c-3")
    report = run_import(ImportOptions(file, mapping=MAPPING), sink)
    assert (report.published, report.rejected) == (1, 3) and report.reasons["erased"] == 1
    assert sink.prepared == [2]  # both valid rows' keys in one round trip
    lines = [
        orjson.loads(x) for x in (tmp_path / "orders.csv.rejects.jsonl").read_bytes().splitlines()
    ]
    erased = [x for x in lines if "erased" in x["reason"]]
    assert erased == [{"line": 6, "reason": "customer: this event's customer was erased"}]
