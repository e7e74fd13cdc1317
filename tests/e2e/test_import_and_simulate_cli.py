"""`rapport import` and `rapport simulate` as a user runs them, against the real broker."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.settings import Settings
from tests.support import consume, rapport, topic_size

pytestmark = pytest.mark.integration

MAPPING = """
id_column = "order_id"
[columns]
"customer.customer_id" = "customer"
occurred_at = "ordered_at"
"payload.order_id" = "order_id"
"payload.amount" = "total"
"payload.currency" = "currency"
[values]
type = "commerce.purchased"
"source.system" = "legacy-shop"
"""


def test_csv_import_publishes_once_and_reports_rejects(
    rapport_settings: Settings, tmp_path: Path
) -> None:
    orders = tmp_path / "orders.csv"
    rows = [f"o-{n},c-{n % 7},2025-0{1 + n % 9}-01T10:00:00Z,{n}.5,EUR" for n in range(1, 301)]
    rows[41] = "o-42,c-0,2025-01-01T10:00:00Z,lots,EUR"
    orders.write_text("order_id,customer,ordered_at,total,currency\n" + "\n".join(rows) + "\n")
    mapping = str(tmp_path / "orders.toml")
    (tmp_path / "orders.toml").write_text(MAPPING)

    result = rapport(rapport_settings, "import", str(orders), "--mapping", mapping)
    assert result.returncode == 0, result.stderr
    assert "299 published, 1 rejected" in result.stdout
    assert "payload.amount: Input should be a valid decimal" in result.stdout
    assert '"line":43' in (tmp_path / "orders.csv.rejects.jsonl").read_text()
    records = consume(rapport_settings, 299)
    assert {r["source"]["system"] for _, r in records} == {"legacy-shop"}

    again = rapport(rapport_settings, "import", str(orders), "--mapping", mapping, "--restart")
    assert again.returncode == 0, again.stderr
    ids = {r["event_id"] for _, r in consume(rapport_settings, 598)}
    assert len(ids) == 299  # re-published rows carry the same event_ids: the worker dedupes

    resumed = rapport(rapport_settings, "import", str(orders), "--mapping", mapping)
    assert "resumed after line 301" in resumed.stdout and "0 published" in resumed.stdout
    assert topic_size(rapport_settings) == 598


def test_simulate_to_a_file_is_deterministic_and_to_kafka_publishes(
    rapport_settings: Settings, tmp_path: Path
) -> None:
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    for path in (a, b):
        result = rapport(
            rapport_settings, "simulate", "--customers", "20", "--events", "500",
            "--seed", "3", "--output", str(path),
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
    assert a.read_bytes() == b.read_bytes() and len(a.read_bytes().splitlines()) == 500

    result = rapport(
        rapport_settings, "simulate", "--customers", "20", "--events", "200", "--rate", "1000"
    )
    assert result.returncode == 0, result.stderr
    assert topic_size(rapport_settings) == 200

    imported = rapport(rapport_settings, "import", str(a))
    assert "500 published, 0 rejected" in imported.stdout
