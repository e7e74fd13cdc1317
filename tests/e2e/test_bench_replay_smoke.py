"""`rapport bench-replay` on a tiny workload: streams it, measures C, G, D and E in one
run, saves and prints them, and removes what it made. The numbers mean nothing here."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa
from kafka.admin import KafkaAdminClient

from infra.settings import Settings
from tests.support import rapport

pytestmark = pytest.mark.integration


def test_bench_replay_smoke_run(rapport_settings: Settings, tmp_path: Path) -> None:
    out = tmp_path / "replay.json"
    result = rapport(
        rapport_settings,
        "bench-replay", "--events", "3000", "--customers", "300", "--live-records", "1000",
        "--jobs", "2", "--out", str(out),
        timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    results = orjson.loads(out.read_bytes())
    assert results["fill"]["events"] == 3000 and results["fill"]["bytes"] > 3000 * 100
    figures = results["figures"]
    assert sorted(figures) == list("CDEG")
    for name in "CDEG":
        assert 0 < figures[name]["min"] <= figures[name]["median"] <= figures[name]["max"], name
    assert len(figures["C"]["runs"]) == len(figures["D"]["runs"]) == 3
    assert figures["G"]["jobs"] == 2
    # D copied exactly what G projected: one timeline row per simulated event.
    assert figures["D"]["rows"]["timeline"] == 3000
    assert figures["E"]["records"] == 1000
    ratios = results["ratios"]
    assert ratios["G/E"] == pytest.approx(figures["G"]["median"] / figures["E"]["median"])
    assert ratios["target"]["met"] == (figures["G"]["median"] >= 2 * figures["E"]["median"])
    assert "rapport bench-replay: 3,000 events" in result.stdout and "G/E =" in result.stdout

    run_id = results["run_id"]
    admin = KafkaAdminClient(bootstrap_servers=rapport_settings.bootstrap)
    try:
        assert not [t for t in admin.list_topics() if t.startswith(f"bench.{run_id}.")]
    finally:
        admin.close()
    engine = sa.create_engine(rapport_settings.db_url)
    with engine.connect() as conn:
        left = conn.execute(
            sa.text("SELECT datname FROM pg_database WHERE datname LIKE :p"),
            {"p": f"bench_{run_id}_%"},
        ).all()
    engine.dispose()
    assert left == []
