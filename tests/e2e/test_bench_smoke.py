"""`rapport bench` on a tiny workload: every figure A–I and P measured, saved and printed.

The numbers of so small a run mean nothing; this proves the harness runs end to end on
the real services and cleans up after itself.
"""

from __future__ import annotations

from numbers import Real
from pathlib import Path

import orjson
import pytest
from kafka.admin import KafkaAdminClient

from infra.settings import Settings
from tests.support import rapport

pytestmark = pytest.mark.integration

RATE_FIGURES = "ABCDEGI"
QUERIES = ("timeline", "profile", "scores", "top100", "contact_policy")


def _number(value: object) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and value >= 0


def test_bench_smoke_run_reports_every_figure(rapport_settings: Settings, tmp_path: Path) -> None:
    out = tmp_path / "tmp"
    result = rapport(
        rapport_settings,
        "bench", "--events", "2000", "--customers", "200", "--repeats", "1", "--out", str(out),
        "--population", "2000",
        timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    results = orjson.loads(out.read_bytes())
    figures = results["figures"]
    assert sorted(figures) == sorted([*"ABCDEFGHIP", "B_sealed", "E_sealed", "E_2proc"])
    for name in (*RATE_FIGURES, "B_sealed", "E_sealed", "E_2proc"):
        assert all(_number(figures[name][k]) for k in ("min", "median", "max")), name
        assert figures[name]["median"] > 0, name
    assert _number(figures["F"]["p50_ms"]) and _number(figures["F"]["p99_ms"])
    for phase in ("idle", "under_load"):
        for query in QUERIES:
            latency = figures["H"][phase][query]
            assert _number(latency["p50_ms"]) and _number(latency["p99_ms"]), (phase, query)
    assert figures["E"]["lag"]["verdict"] == "drained"
    assert figures["E_2proc"]["lag"]["verdict"] == "drained"
    assert figures["I"]["largest_process"]["max"] <= figures["I"]["two_processes"]["max"]
    identity = figures["H"]["identity"]
    assert identity["resolved"]["customers"] == identity["truth"]["customers"] > 0
    assert identity["resolved"]["visitors"] == identity["truth"]["visitors"]
    population = figures["P"]
    assert population["customers"] == 2000 and _number(population["rank_all_s"])
    assert set(population["queries"]) == {"top100_clv", "top100_rfm", "top100_p_active", "segments"}
    assert all(_number(q["p99_ms"]) for q in population["queries"].values())
    assert set(results["ratios"]) == {
        "B/A",
        "E/min(C,D)",
        "G/min(C,D)",
        "G/E",
        "B_sealed/B",
        "E_sealed/E",
        "E_2proc/E",
    }
    assert all(isinstance(t["met"], bool) for t in results["targets"])
    machine = results["machine"]
    assert machine["cores"] >= 1 and machine["python"] and machine["postgresql"]
    assert machine["kafka"]["version"] and machine["kafka"]["broker_api"]
    assert Path(f"{out}.worker-profile.html").stat().st_size > 0
    assert "Top frames" in Path(f"{out}.worker-profile.txt").read_text()

    printed = result.stdout
    assert "rapport bench: 2,000 events, 200 customers" in printed
    labels = ("B/A =", "B sealed/B =", "E sealed/E =", "E 2 processes/E =", "freshness")
    labels += ("replay", "peak RSS")
    for label in labels:
        assert label in printed, label
    verdicts = printed.count(" met ") + printed.count(" missed ")
    assert verdicts == len(results["targets"]), printed

    admin = KafkaAdminClient(bootstrap_servers=rapport_settings.bootstrap)
    try:
        run_id = results["run_id"]
        assert not [t for t in admin.list_topics() if t.startswith(f"bench.{run_id}.")]
        assert not [g for g in admin.list_groups() if g["group_id"].startswith(f"bench-{run_id}")]
    finally:
        admin.close()
