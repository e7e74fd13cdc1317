"""`rapport status` on screen: what an operator reads off it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rich.console import Console

from infra.cli_status import render
from infra.status import DeadLetters, PartitionLag, Service, Status, Worker


def _screen(status: Status) -> str:
    console = Console(record=True, width=160)
    console.print(render(status))
    return console.export_text()


def test_the_screen_names_lag_per_partition_dead_letters_and_the_last_error() -> None:
    now = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
    status = Status(
        checked_at=now,
        topic="rapport.touchpoints",
        services=[Service("kafka", "up"), Service("postgres", "down", "connection refused")],
        active_version="core_v2",
        partitions=[
            PartitionLag(0, 1_500, 1_200, 300, now - timedelta(seconds=4)),
            PartitionLag(1, 900, 900, 0, None),
        ],
        freshness_s=42.0,
        last_received_at=now - timedelta(seconds=42),
        dead_letters=DeadLetters(
            30_000, {"decode: DecodeError": 9_000, "database: DataError": 1_000}, [], 10_000
        ),
        workers=[Worker("faust-1", "127.0.0.1:6066", [0, 1], True, None)],
        last_error="PostgreSQL: the database system is starting up",
    )
    screen = _screen(status)
    assert status.lag == 300
    assert "Lag: 300" in screen
    assert "connection refused" in screen
    assert "Freshness: 42.0 s" in screen
    # A long dead-letter topic: its total from the offsets, the reasons of the newest read.
    assert (
        "Dead letters: 30000 (decode: DecodeError: 9000, database: DataError: 1000; "
        "of the newest 10,000)" in screen
    )
    assert "Active projection version: core_v2" in screen
    assert "Last error: PostgreSQL: the database system is starting up" in screen
    assert "0,1" in screen
    assert status.to_json()["lag"] == 300


def test_unknown_parts_say_so_rather_than_zero() -> None:
    status = Status(checked_at=datetime.now(UTC), topic="t", services=[Service("kafka", "down")])
    screen = _screen(status)
    assert status.lag is None
    assert "Lag: unknown" in screen
    assert "Dead letters: unknown" in screen
    assert "no event projected yet" in screen
