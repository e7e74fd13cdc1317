"""`python -m bench.page_latency` on a small customer: it seeds, serves, times and drops its
scratch database (the figure itself is for 10,000 events; see the README)."""

from __future__ import annotations

import subprocess
import sys

import orjson
import pytest
import sqlalchemy as sa

from infra.settings import Settings
from infra.worker_process import child_env

pytestmark = pytest.mark.integration


def test_page_latency_runs_and_cleans_up(rapport_settings: Settings) -> None:
    def scratch_databases() -> set[str]:
        server = sa.create_engine(rapport_settings.db_url)
        try:
            with server.connect() as conn:
                names = conn.execute(sa.text("SELECT datname FROM pg_database")).scalars()
                return {n for n in names if n.startswith("bench_page_")}
        finally:
            server.dispose()

    before = scratch_databases()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.page_latency",
            "--events",
            "300",
            "--requests",
            "3",
            "--json",
        ],
        env=child_env(rapport_settings),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    figures = orjson.loads(result.stdout.strip().splitlines()[-1])
    assert figures["events"] == 300 and figures["requests"] == 3
    for measured in (figures, figures["explanation"]):
        assert 0 < measured["p50_ms"] <= measured["p95_ms"] <= measured["max_ms"]
    assert scratch_databases() == before
